package crypto_test

import (
	"bytes"
	"testing"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/session"
)

// BenchmarkOpenV2 opens an access-token cookie in the default format (v2,
// through session.Codec: associated data, 64-byte trailer), beside
// BenchmarkOpen and BenchmarkOpenBaseline in one run:
//
//	go test -run '^$' -bench BenchmarkOpen -benchmem -count 6 ./crypto
//
// The target is v2/1KiB ≤ 1.25 × BenchmarkOpenBaseline, with 0 allocs.
func BenchmarkOpenV2(b *testing.B) {
	ring, err := crypto.NewKeyring(crypto.GenerateKey())
	if err != nil {
		b.Fatal(err)
	}
	c, err := session.NewCodec(ring, crypto.FormatV2)
	if err != nil {
		b.Fatal(err)
	}
	env := session.Envelope{ID: session.NewID(), Started: 1_700_000_000, Expires: 1_700_043_200, Sub: session.HashSub("iss", "sub")}
	for _, bc := range []struct {
		name string
		size int
	}{{"1KiB", 1 << 10}, {"4KiB", 4 << 10}} {
		b.Run(bc.name, func(b *testing.B) {
			cookie, err := c.Seal(nil, session.AccessToken, 0, &env, bytes.Repeat([]byte{'t'}, bc.size))
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]byte, 0, bc.size+session.TrailerSize)
			var got session.Envelope
			b.ReportAllocs()
			b.SetBytes(int64(bc.size))
			for b.Loop() {
				if _, _, err := c.Open(dst[:0], cookie, session.AccessToken, 0, &got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
