package crypto

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/minio/sio"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json (DARE vectors are sealed anew by sio)")

const vectorsFile = "testdata/vectors.json"

// specKey and specCookie are the contract §3 test vector: a TEST KEY, not a secret.
const (
	specKey       = "7b99279ab87533d3c238db874a842a91ee26a76027f3c03c317504963d2c9926"
	specCookie    = "AUixxnN28w2MjVK7sMZ3GqErPlw15NwIng-V8amEv5eu43Wr1nzhif1hU2QpKbw_L55GVxD0Kz4gKVG539ywk6g"
	specPlaintext = "42665300-efe8-419d-be52-07b53e208f46"
	otherTestKey  = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
)

type vectorFile struct {
	Comment string   `json:"comment"`
	Vectors []vector `json:"vectors"`
}

type vector struct {
	Name      string   `json:"name"`
	Keys      []string `json:"keys"`
	Cookie    string   `json:"cookie"`
	Plaintext string   `json:"plaintext"`
	// Suite and Nonce are set for DARE vectors: sio sealed Plaintext with
	// Keys[0], this cipher suite and this 12-byte nonce (hex).
	Suite *byte  `json:"suite,omitempty"`
	Nonce string `json:"nonce,omitempty"`
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
	if len(f.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	return f.Vectors
}

// TestKnownAnswer opens every vector in testdata with its key ring, and
// checks that the DARE ones are exactly what sio seals and opens.
func TestKnownAnswer(t *testing.T) {
	if *update {
		writeVectors(t)
	}
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			ring, err := ParseKeyring(v.Keys...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ring.Open(nil, []byte(v.Cookie))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if string(got) != v.Plaintext {
				t.Fatalf("Open = %q, want %q", got, v.Plaintext)
			}
			if v.Suite == nil {
				return
			}
			key, _ := ParseKey(v.Keys[0])
			raw, err := sealDARE(key, []byte(v.Plaintext), bytes.NewReader(mustHex(t, v.Nonce)), []byte{*v.Suite})
			if err != nil {
				t.Fatal(err)
			}
			if enc := b64.EncodeToString(raw); enc != v.Cookie {
				t.Fatalf("sio sealed %s, the vector says %s", enc, v.Cookie)
			}
			if raw[1] != *v.Suite {
				t.Fatalf("suite byte %#x, want %#x", raw[1], *v.Suite)
			}
			plain, err := sio.DecryptBuffer(nil, raw, sio.Config{Key: key.b[:], MinVersion: sio.Version20})
			if err != nil || string(plain) != v.Plaintext {
				t.Fatalf("sio.DecryptBuffer = %q, %v", plain, err)
			}
		})
	}
}

func writeVectors(t *testing.T) {
	jwtLike := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJkZW1vLXVzZXIiLCJhdWQiOiJhcGkifQ.c2lnbmF0dXJl"
	f := vectorFile{
		Comment: "Cookie test vectors. Every key here is a TEST KEY, public on purpose: never use one in a deployment.",
		Vectors: []vector{
			{Name: "spec-v1", Keys: []string{specKey}, Cookie: specCookie, Plaintext: specPlaintext},
			{Name: "spec-v1-old-key-second-in-ring", Keys: []string{otherTestKey, specKey}, Cookie: specCookie, Plaintext: specPlaintext},
		},
	}
	dare := []struct {
		name      string
		suite     byte
		plaintext string
	}{
		{"dare-aes-256-gcm", dareAESGCM, jwtLike},
		{"dare-chacha20-poly1305", dareChaCha, jwtLike},
		{"dare-aes-256-gcm-one-byte", dareAESGCM, "x"},
		{"dare-chacha20-poly1305-one-byte", dareChaCha, "x"},
	}
	key, _ := ParseKey(otherTestKey)
	for i, d := range dare {
		nonce := bytes.Repeat([]byte{byte(0xa0 + i)}, nonceSize)
		raw, err := sealDARE(key, []byte(d.plaintext), bytes.NewReader(nonce), []byte{d.suite})
		if err != nil {
			t.Fatal(err)
		}
		suite := d.suite
		f.Vectors = append(f.Vectors, vector{
			Name: d.name, Keys: []string{otherTestKey}, Cookie: b64.EncodeToString(raw),
			Plaintext: d.plaintext, Suite: &suite, Nonce: hexString(nonce),
		})
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vectorsFile, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
