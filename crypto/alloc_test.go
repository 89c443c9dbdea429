//go:build !race

package crypto

import (
	"bytes"
	"testing"
)

// TestOpenNoAllocs guards the hot path: opening a 1 KiB token allocates
// nothing once the scratch pool is warm, in both formats, also when the key
// that opens it is not the first in the ring.
func TestOpenNoAllocs(t *testing.T) {
	plain := bytes.Repeat([]byte{'t'}, 1024)
	old := newTestRing(t, 1)
	rotated, err := NewKeyring(GenerateKey(), old.keys[0].key)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []Format{FormatV1, FormatDARE} {
		cookie, err := old.Seal(nil, plain, f)
		if err != nil {
			t.Fatal(err)
		}
		for name, ring := range map[string]*Keyring{"first key": old, "second key": rotated} {
			dst := make([]byte, 0, 2048)
			allocs := testing.AllocsPerRun(1000, func() {
				out, err := ring.Open(dst[:0], cookie)
				if err != nil || len(out) != len(plain) {
					t.Fatalf("Open: %v", err)
				}
			})
			if allocs != 0 {
				t.Errorf("%s, %s: Open allocates %.1f times per call, want 0", f, name, allocs)
			}
		}
	}
}
