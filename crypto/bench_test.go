package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"testing"
)

func benchCookie(b *testing.B, ring *Keyring, size int, f Format) []byte {
	cookie, err := ring.Seal(nil, bytes.Repeat([]byte{'t'}, size), f)
	if err != nil {
		b.Fatal(err)
	}
	return cookie
}

func BenchmarkOpen(b *testing.B) {
	ring := newTestRing(b, 1)
	for _, bc := range []struct {
		name string
		f    Format
		size int
	}{
		{"v1/1KiB", FormatV1, 1 << 10},
		{"v1/4KiB", FormatV1, 4 << 10},
		{"dare/1KiB", FormatDARE, 1 << 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cookie := benchCookie(b, ring, bc.size, bc.f)
			dst := make([]byte, 0, bc.size)
			b.ReportAllocs()
			b.SetBytes(int64(bc.size))
			for b.Loop() {
				if _, err := ring.Open(dst[:0], cookie); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenBaseline is the floor on this CPU for a 1 KiB v1 cookie: plain
// base64url decoding into a fixed buffer and one AES-256-GCM Open with an
// AEAD built in advance, without any of Open's checks.
func BenchmarkOpenBaseline(b *testing.B) {
	ring := newTestRing(b, 1)
	cookie := benchCookie(b, ring, 1<<10, FormatV1)
	block, _ := aes.NewCipher(ring.keys[0].key.b[:])
	gcm, _ := cipher.NewGCM(block)
	raw := make([]byte, base64.RawURLEncoding.DecodedLen(len(cookie)))
	dst := make([]byte, 0, 1<<10)
	b.ReportAllocs()
	b.SetBytes(1 << 10)
	for b.Loop() {
		n, err := base64.RawURLEncoding.Decode(raw, cookie)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := gcm.Open(dst[:0], raw[1:13], raw[13:n], nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	ring := newTestRing(b, 1)
	plain := bytes.Repeat([]byte{'t'}, 1<<10)
	for _, f := range []Format{FormatV1, FormatDARE} {
		b.Run(f.String()+"/1KiB", func(b *testing.B) {
			dst := make([]byte, 0, 2<<10)
			b.ReportAllocs()
			b.SetBytes(1 << 10)
			for b.Loop() {
				if _, err := ring.Seal(dst[:0], plain, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
