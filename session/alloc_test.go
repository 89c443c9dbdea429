//go:build !race

package session

import (
	"bytes"
	"testing"

	"github.com/tokenhandler/tokenhandler/crypto"
)

// TestOpenNoAllocs guards the proxy's hot path in the default format:
// opening a 1 KiB access-token cookie (whole or reassembled from chunks,
// opened by the first or the second key of the ring) allocates nothing
// once the scratch pool is warm, when dst has room for value and trailer.
// A refused cookie (wrong purpose) allocates nothing either.
func TestOpenNoAllocs(t *testing.T) {
	old := crypto.GenerateKey()
	sealer, _ := NewCodec(mustRing(t, old), crypto.FormatV2)
	rotated, _ := NewCodec(mustRing(t, crypto.GenerateKey(), old), crypto.FormatV2)
	rotated = rotated.WithApp("") // the one application of a file without apps
	value := bytes.Repeat([]byte{'t'}, 1024)
	env := Envelope{ID: NewID(), Started: 1, Expires: 2}
	for _, chunks := range []int{0, 2} {
		cookie, err := sealer.Seal(nil, AccessToken, chunks, &env, value)
		if err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]*Codec{"first key": sealer, "second key": rotated} {
			dst := make([]byte, 0, len(value)+TrailerSize)
			var got Envelope
			allocs := testing.AllocsPerRun(1000, func() {
				out, _, err := c.Open(dst[:0], cookie, AccessToken, chunks, &got)
				if err != nil || len(out) != len(value) || got != env {
					t.Fatalf("Open: %v", err)
				}
			})
			if allocs != 0 {
				t.Errorf("%d chunks, %s: Open allocates %.1f times per call, want 0", chunks, name, allocs)
			}
			allocs = testing.AllocsPerRun(1000, func() {
				if _, _, err := c.Open(dst[:0], cookie, CSRF, chunks, &got); err != crypto.ErrOpen {
					t.Fatalf("Open as csrf: %v", err)
				}
			})
			if allocs != 0 {
				t.Errorf("%d chunks, %s: a refused Open allocates %.1f times per call, want 0", chunks, name, allocs)
			}
		}
	}
}

// TestOpenNoAllocsApp: an application's codec (issue #15) opens without
// allocating too.
func TestOpenNoAllocsApp(t *testing.T) {
	c, _ := NewCodec(mustRing(t, crypto.GenerateKey()), crypto.FormatV2)
	c = c.WithApp("shop")
	env := Envelope{ID: NewID(), Started: 1, Expires: 2}
	cookie, err := c.Seal(nil, AccessToken, 3, &env, bytes.Repeat([]byte{'t'}, 1024))
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 0, 1024+TrailerSize)
	var got Envelope
	if allocs := testing.AllocsPerRun(1000, func() {
		if _, _, err := c.Open(dst[:0], cookie, AccessToken, 3, &got); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("an application's Open allocates %.1f times per call, want 0", allocs)
	}
}
