package crypto

import (
	"bytes"
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/nodetest"
)

// TestNodeInterop seals v1 cookies here and opens them with Node's crypto
// module, and the other way round: the format is plain AES-256-GCM that any
// runtime reads, as the Curity agent (Node) does.
func TestNodeInterop(t *testing.T) {
	ring, err := ParseKeyring(specKey)
	if err != nil {
		t.Fatal(err)
	}
	var plaintexts [][]byte
	for _, n := range []int{1, 2, 3, 36, 1000, 4096, 70_000} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i*31 + n)
		}
		plaintexts = append(plaintexts, p)
	}
	plaintexts = append(plaintexts, []byte(specPlaintext), []byte("jeton signé ✓"))

	var req struct {
		Key  string   `json:"key"`
		Open []string `json:"open"`
		Seal [][]byte `json:"seal"`
	}
	req.Key = specKey
	req.Open = append(req.Open, specCookie)
	for _, p := range plaintexts {
		c, err := ring.Seal(nil, p, FormatV1)
		if err != nil {
			t.Fatal(err)
		}
		req.Open = append(req.Open, string(c))
		req.Seal = append(req.Seal, p)
	}
	var resp struct {
		Opened [][]byte `json:"opened"`
		Sealed []string `json:"sealed"`
	}
	nodetest.RunJSON(t, "testdata/interop.mjs", req, &resp)
	if len(resp.Opened) != len(req.Open) || len(resp.Sealed) != len(req.Seal) {
		t.Fatalf("node answered %d opened and %d sealed, want %d and %d", len(resp.Opened), len(resp.Sealed), len(req.Open), len(req.Seal))
	}
	if string(resp.Opened[0]) != specPlaintext {
		t.Errorf("node opened the contract's test vector to %q", resp.Opened[0])
	}
	for i, p := range plaintexts {
		if !bytes.Equal(resp.Opened[i+1], p) {
			t.Errorf("node opened our %d-byte cookie to %d different bytes", len(p), len(resp.Opened[i+1]))
		}
		got, err := ring.Open(nil, []byte(resp.Sealed[i]))
		if err != nil || !bytes.Equal(got, p) {
			t.Errorf("node's %d-byte cookie opens here to %d bytes, %v", len(p), len(got), err)
		}
	}
}
