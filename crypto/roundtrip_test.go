package crypto

import (
	"bytes"
	"testing"
)

// TestRoundTrip seals and opens every plaintext size in a range that covers
// the base64 group boundaries, 4 KiB and 64 KiB, in both formats.
func TestRoundTrip(t *testing.T) {
	ring := newTestRing(t, 1)
	plain := make([]byte, 70_000)
	for i := range plain {
		plain[i] = byte(i*7 + i>>8)
	}
	tests := []struct {
		name   string
		format Format
		max    int
	}{
		{"v1", FormatV1, 70_000},
		{"dare", FormatDARE, MaxDAREPlaintext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cookie, out []byte
			for n := 1; n <= tt.max; n++ {
				if !sweepSize(n) {
					continue
				}
				var err error
				cookie, err = ring.Seal(cookie[:0], plain[:n], tt.format)
				if err != nil {
					t.Fatalf("size %d: Seal: %v", n, err)
				}
				if want := b64.EncodedLen(n + overhead(tt.format)); len(cookie) != want {
					t.Fatalf("size %d: cookie is %d characters, want %d", n, len(cookie), want)
				}
				out, err = ring.Open(out[:0], cookie)
				if err != nil {
					t.Fatalf("size %d: Open: %v", n, err)
				}
				if !bytes.Equal(out, plain[:n]) {
					t.Fatalf("size %d: plaintext differs after the round trip", n)
				}
			}
		})
	}
}

// sweepSize reports whether an exhaustive size loop covers n: always without
// the race detector (every size), and under it only sizes near the base64
// group, 4 KiB and 64 KiB boundaries and every 61st size, since instrumented
// base64 makes the full sweep take minutes.
func sweepSize(n int) bool {
	if !raceEnabled || n < 256 || n%61 == 0 {
		return true
	}
	for _, b := range []int{1 << 12, 1 << 16} {
		if n > b-64 && n < b+64 {
			return true
		}
	}
	return false
}

func overhead(f Format) int {
	if f == FormatDARE {
		return dareHeaderSize + tagSize
	}
	return v1Overhead
}
