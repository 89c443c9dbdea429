package session

import (
	"bytes"
	"encoding/hex"
	"math"
	"strconv"
	"testing"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/nodetest"
)

// jsonEnv is an envelope as testdata/interop.mjs reads and writes it; the
// times are decimal strings, since a JSON number loses int64 precision in
// JavaScript.
type jsonEnv struct {
	ID      string `json:"id"`
	Started string `json:"started"`
	Expires string `json:"expires"`
	SID     string `json:"sid"`
	Sub     string `json:"sub"`
}

func toJSONEnv(e Envelope) jsonEnv {
	return jsonEnv{
		ID: hex.EncodeToString(e.ID[:]), SID: hex.EncodeToString(e.SID[:]), Sub: hex.EncodeToString(e.Sub[:]),
		Started: strconv.FormatInt(e.Started, 10), Expires: strconv.FormatInt(e.Expires, 10),
	}
}

type jsonCookie struct {
	Cookie  string  `json:"cookie"`
	Purpose Purpose `json:"purpose"`
	Chunks  int     `json:"chunks"`
}

type jsonSeal struct {
	Value    []byte  `json:"value"`
	Purpose  Purpose `json:"purpose"`
	Chunks   int     `json:"chunks"`
	Envelope jsonEnv `json:"envelope"`
}

type jsonDigest struct {
	Kind   string `json:"kind"`
	Issuer string `json:"issuer"`
	V      string `json:"v"`
}

// TestNodeInterop implements format v2 a second time in JavaScript, from
// FORMAT.md, with Node's crypto module: Node opens cookies sealed here (and
// refuses them under every other purpose or chunk count), Go opens cookies
// Node sealed, and both compute the same sid and sub digests. Like crypto's
// v1 interop test, it skips without node locally and fails without it in CI.
func TestNodeInterop(t *testing.T) {
	c := vectorCodec(t, testKeyA)
	type item struct {
		value  []byte
		p      Purpose
		chunks int
		env    Envelope
	}
	var items []item
	for i, n := range []int{0, 1, 2, 3, 36, 1000, 4096, 70_000} {
		v := make([]byte, n)
		for j := range v {
			v[j] = byte(j*31 + n)
		}
		p := Purpose(1 + i%int(purposeEnd-1))
		env := Envelope{ID: NewID(), Started: 1_767_225_600 + int64(i), Expires: 1_767_268_800 + int64(i), Sub: HashSub("https://op/", "u"+strconv.Itoa(i))}
		if i%2 == 0 {
			env.SID = HashSID("https://op/", "s"+strconv.Itoa(i))
		}
		items = append(items, item{v, p, i % (MaxChunks + 1), env})
	}
	// Times at the edges of int64, and a value that is not ASCII.
	items = append(items,
		item{[]byte("jeton signé ✓"), CSRF, 0, Envelope{ID: NewID(), Started: -1, Expires: math.MaxInt64}},
		item{[]byte("x"), IDToken, MaxChunks, Envelope{ID: NewID(), Started: math.MinInt64, Expires: 1<<53 + 1}},
	)

	var req struct {
		Key     string       `json:"key"`
		Open    []jsonCookie `json:"open"`
		Refuse  []jsonCookie `json:"refuse"`
		Seal    []jsonSeal   `json:"seal"`
		Digests []jsonDigest `json:"digests"`
	}
	req.Key = testKeyA
	req.Open, req.Refuse, req.Seal, req.Digests = []jsonCookie{}, []jsonCookie{}, []jsonSeal{}, []jsonDigest{}
	for _, it := range items {
		cookie, err := c.Seal(nil, it.p, it.chunks, &it.env, it.value)
		if err != nil {
			t.Fatal(err)
		}
		req.Open = append(req.Open, jsonCookie{string(cookie), it.p, it.chunks})
		for q := Login; q < purposeEnd; q++ {
			for n := range MaxChunks + 1 {
				if q != it.p || n != it.chunks {
					req.Refuse = append(req.Refuse, jsonCookie{string(cookie), q, n})
				}
			}
		}
		req.Seal = append(req.Seal, jsonSeal{it.value, it.p, it.chunks, toJSONEnv(it.env)})
	}
	req.Digests = append(req.Digests, jsonDigest{"sid", "https://op/", "s0"}, jsonDigest{"sub", "https://op/", "alice"},
		jsonDigest{"sub", "", ""}, jsonDigest{"sid", "https://ôp/", "sé"})
	var resp struct {
		Opened []struct {
			Value    []byte  `json:"value"`
			Envelope jsonEnv `json:"envelope"`
		} `json:"opened"`
		Refused []bool   `json:"refused"`
		Sealed  []string `json:"sealed"`
		Digests []string `json:"digests"`
	}
	nodetest.RunJSON(t, "testdata/interop.mjs", req, &resp)
	if len(resp.Opened) != len(items) || len(resp.Sealed) != len(items) || len(resp.Refused) != len(req.Refuse) || len(resp.Digests) != len(req.Digests) {
		t.Fatalf("node answered %d opened, %d sealed, %d refused, %d digests", len(resp.Opened), len(resp.Sealed), len(resp.Refused), len(resp.Digests))
	}
	for i, it := range items {
		if o := resp.Opened[i]; !bytes.Equal(o.Value, it.value) || o.Envelope != toJSONEnv(it.env) {
			t.Errorf("node opened our %d-byte %s cookie to %d bytes, %+v; want %+v", len(it.value), it.p, len(o.Value), o.Envelope, toJSONEnv(it.env))
		}
		var env Envelope
		got, f, err := c.Open(nil, []byte(resp.Sealed[i]), it.p, it.chunks, &env)
		if err != nil || f != crypto.FormatV2 || !bytes.Equal(got, it.value) || env != it.env {
			t.Errorf("node's %d-byte %s cookie opens here to %d bytes, %v, %+v", len(it.value), it.p, len(got), err, env)
		}
		if _, _, err := c.Open(nil, []byte(resp.Sealed[i]), it.p, (it.chunks+1)%(MaxChunks+1), &env); err != crypto.ErrOpen {
			t.Errorf("node's %s cookie opens under another chunk count: %v", it.p, err)
		}
	}
	for i, r := range resp.Refused {
		if !r {
			t.Errorf("node opened a %s/%d cookie as %s/%d", req.Open[i/44].Purpose, req.Open[i/44].Chunks, req.Refuse[i].Purpose, req.Refuse[i].Chunks)
		}
	}
	for i, d := range req.Digests {
		want := HashSub(d.Issuer, d.V)
		if d.Kind == "sid" {
			want = HashSID(d.Issuer, d.V)
		}
		if resp.Digests[i] != hex.EncodeToString(want[:]) {
			t.Errorf("node's %s digest of %q, %q is %s, ours %x", d.Kind, d.Issuer, d.V, resp.Digests[i], want)
		}
	}
}
