package session

import (
	"bytes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/crypto"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json from the reference encoder")

const vectorsFile = "testdata/vectors.json"

type vectorFile struct {
	Comment string   `json:"comment"`
	Vectors []vector `json:"vectors"`
}

// vector is one v2 cookie with everything that went into it.
type vector struct {
	Name    string `json:"name"`
	Key     string `json:"key"`     // hex, the sealing key: a TEST KEY
	Purpose string `json:"purpose"` // cookie-name suffix: login, at, auth, id, csrf
	// PurposeByte is the purpose's number, as it appears in the associated data.
	PurposeByte    int    `json:"purposeByte"`
	Chunks         int    `json:"chunks"`
	AssociatedData string `json:"associatedData"` // hex
	Nonce          string `json:"nonce"`          // hex, 12 bytes
	Value          string `json:"value"`
	Envelope       vecEnv `json:"envelope"`
	// Issuer, SIDClaim and SubClaim are what the envelope's digests were
	// made of (HashSID(Issuer, SIDClaim), HashSub(Issuer, SubClaim)); empty
	// when the digest is zero.
	Issuer   string `json:"issuer,omitempty"`
	SIDClaim string `json:"sidClaim,omitempty"`
	SubClaim string `json:"subClaim,omitempty"`
	Plain    string `json:"plaintext"` // hex: value ‖ trailer
	Cookie   string `json:"cookie"`
}

type vecEnv struct {
	ID      string `json:"id"` // hex
	Started int64  `json:"started"`
	Expires int64  `json:"expires"`
	SID     string `json:"sid"` // hex
	Sub     string `json:"sub"` // hex
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

func (v vector) refEnvelope(t testing.TB) refEnvelope {
	return refEnvelope{
		id:      [16]byte(unhex(t, v.Envelope.ID)),
		started: v.Envelope.Started,
		expires: v.Envelope.Expires,
		sid:     [16]byte(unhex(t, v.Envelope.SID)),
		sub:     [16]byte(unhex(t, v.Envelope.Sub)),
	}
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	data, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) == 0 || !strings.Contains(f.Comment, "TEST KEY") {
		t.Fatal("no vectors, or the file does not say its keys are test keys")
	}
	return f.Vectors
}

// TestKnownAnswer checks each vector three ways: the reference encoder
// makes exactly its cookie from its inputs (so the file and FORMAT.md
// agree), the package's associated data and digests are the vector's, and
// Codec.Open gives its value and envelope under its purpose and chunk count
// only, with its key first or second in the ring.
func TestKnownAnswer(t *testing.T) {
	if *update {
		writeVectors(t)
	}
	vectors := loadVectors(t)
	purposes := map[Purpose]bool{}
	var chunked, withSID, withoutSID bool
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			p, err := ParsePurpose(v.Purpose)
			if err != nil || int(p) != v.PurposeByte {
				t.Fatalf("purpose %q is %d (%v), the vector says %d", v.Purpose, p, err, v.PurposeByte)
			}
			purposes[p] = true
			chunked = chunked || v.Chunks > 0
			env := v.refEnvelope(t)
			if env.sid == ([16]byte{}) {
				withoutSID = true
			} else {
				withSID = true
			}

			if got := hex.EncodeToString(associatedData("", p, v.Chunks)); got != v.AssociatedData {
				t.Errorf("AssociatedData = %s, the vector says %s", got, v.AssociatedData)
			}
			if got := hex.EncodeToString(refAD(byte(p), byte(v.Chunks))); got != v.AssociatedData {
				t.Errorf("reference associated data = %s, the vector says %s", got, v.AssociatedData)
			}
			if v.SIDClaim != "" && HashSID(v.Issuer, v.SIDClaim) != Digest(env.sid) {
				t.Errorf("HashSID(%q, %q) is not the envelope's sid", v.Issuer, v.SIDClaim)
			}
			if v.SubClaim != "" && HashSub(v.Issuer, v.SubClaim) != Digest(env.sub) {
				t.Errorf("HashSub(%q, %q) is not the envelope's sub", v.Issuer, v.SubClaim)
			}
			if got := hex.EncodeToString(append([]byte(v.Value), env.trailer()...)); got != v.Plain {
				t.Errorf("value ‖ trailer = %s, the vector says %s", got, v.Plain)
			}
			raw := refSealRaw(refGCM(t, v.Key), unhex(t, v.Nonce), byte(p), byte(v.Chunks), env, []byte(v.Value))
			if got := refEncode(raw); got != v.Cookie {
				t.Fatalf("the reference encoder makes %s, the vector says %s", got, v.Cookie)
			}

			for name, keys := range map[string][]string{"first": {v.Key}, "second": {otherKey(v.Key), v.Key}} {
				var got Envelope
				out, f, err := vectorCodec(t, keys...).Open([]byte("dst:"), []byte(v.Cookie), p, v.Chunks, &got)
				if err != nil || f != crypto.FormatV2 || string(out) != "dst:"+v.Value || got != env.envelope() {
					t.Fatalf("key %s in the ring: Open = %q, %v, %v, %+v", name, out, f, err, got)
				}
			}
			c := vectorCodec(t, v.Key)
			for q := Purpose(0); q <= purposeEnd; q++ {
				for n := -1; n <= MaxChunks+1; n++ {
					if q == p && n == v.Chunks {
						continue
					}
					var got Envelope
					if out, _, err := c.Open([]byte("dst:"), []byte(v.Cookie), q, n, &got); err != crypto.ErrOpen || string(out) != "dst:" || got != (Envelope{}) {
						t.Errorf("opened as %s/%d: %q, %v, %+v", q, n, out, err, got)
					}
				}
			}
			if _, _, err := vectorCodec(t, otherKey(v.Key)).Open(nil, []byte(v.Cookie), p, v.Chunks, new(Envelope)); err != crypto.ErrOpen {
				t.Errorf("opened with another key: %v", err)
			}
		})
	}
	if len(purposes) != int(purposeEnd)-1 || !chunked || !withSID || !withoutSID {
		t.Errorf("the vectors cover purposes %v, chunked %v, with sid %v, without %v: want all", purposes, chunked, withSID, withoutSID)
	}
}

func otherKey(k string) string {
	if k == testKeyA {
		return testKeyB
	}
	return testKeyA
}

func vectorCodec(t testing.TB, keys ...string) *Codec {
	t.Helper()
	ring, err := crypto.ParseKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCodec(ring, crypto.FormatV2)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeVectors makes the vectors with the reference encoder and fixed
// nonces, so that -update rewrites the same file unless the format changed.
func writeVectors(t *testing.T) {
	const iss = "https://login.example.com/"
	const jwt = "eyJhbGciOiJFUzI1NiIsImtpZCI6InRlc3QifQ.eyJpc3MiOiJodHRwczovL2xvZ2luLmV4YW1wbGUuY29tLyIsInN1YiI6ImFsaWNlIiwiYXVkIjoic3BhIn0.c2lnbmF0dXJl"
	id := func(b byte) (out [16]byte) {
		for i := range out {
			out[i] = b + byte(i)
		}
		return out
	}
	full := refEnvelope{
		id: id(0x10), started: 1767225600, expires: 1767268800, // 2026-01-01 00:00 UTC, +12 h
		sid: refDigest("sid", iss, "op-session-7"), sub: refDigest("sub", iss, "alice"),
	}
	noSID := full
	noSID.sid = [16]byte{}
	login := refEnvelope{id: id(0x40), started: 1767225000, expires: 1767225600} // before login: no sub yet
	tests := []struct {
		name, key, purpose, value string
		chunks                    int
		env                       refEnvelope
		sid, sub                  string
	}{
		{"login-state", testKeyA, "login", `{"state":"s-123","codeVerifier":"v-456","pageUrl":"https://www.example.com/"}`, 0, login, "", ""},
		{"access-token", testKeyA, "at", jwt, 0, full, "op-session-7", "alice"},
		{"refresh-token", testKeyA, "auth", "rt-9f8e7d6c5b4a", 0, full, "op-session-7", "alice"},
		{"id-token-without-sid", testKeyB, "id", jwt, 0, noSID, "", "alice"},
		{"csrf", testKeyB, "csrf", "Kq3vX9bT0mW2yR5uE8pL1sA4dF7gH6jZ", 0, full, "op-session-7", "alice"},
		{"access-token-in-3-chunks", testKeyA, "at", jwt, 3, full, "op-session-7", "alice"},
		{"empty-value", testKeyB, "csrf", "", 0, noSID, "", "alice"},
	}
	f := vectorFile{Comment: "Cookie format v2 known-answer vectors (crypto/FORMAT.md), made by session/reference_test.go with fixed nonces. " +
		"Every key here is a TEST KEY, public on purpose: never use one in a deployment."}
	for i, tc := range tests {
		p, err := ParsePurpose(tc.purpose)
		if err != nil {
			t.Fatal(err)
		}
		nonce := bytes.Repeat([]byte{byte(0xc0 + i)}, 12)
		raw := refSealRaw(refGCM(t, tc.key), nonce, byte(p), byte(tc.chunks), tc.env, []byte(tc.value))
		v := vector{
			Name: tc.name, Key: tc.key, Purpose: tc.purpose, PurposeByte: int(p), Chunks: tc.chunks,
			AssociatedData: hex.EncodeToString(refAD(byte(p), byte(tc.chunks))), Nonce: hex.EncodeToString(nonce),
			Value: tc.value,
			Envelope: vecEnv{
				ID: hex.EncodeToString(tc.env.id[:]), Started: tc.env.started, Expires: tc.env.expires,
				SID: hex.EncodeToString(tc.env.sid[:]), Sub: hex.EncodeToString(tc.env.sub[:]),
			},
			SIDClaim: tc.sid, SubClaim: tc.sub,
			Plain:  hex.EncodeToString(append([]byte(tc.value), tc.env.trailer()...)),
			Cookie: refEncode(raw),
		}
		if tc.sid != "" || tc.sub != "" {
			v.Issuer = iss
		}
		f.Vectors = append(f.Vectors, v)
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vectorsFile, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// refGCMs returns the AEADs of keys, for the reference opener.
func refGCMs(t testing.TB, keys ...string) []cipher.AEAD {
	var out []cipher.AEAD
	for _, k := range keys {
		out = append(out, refGCM(t, k))
	}
	return out
}
