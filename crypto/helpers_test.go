package crypto

import (
	"encoding/hex"
	"testing"
)

// newTestRing returns a ring of n fresh random keys.
func newTestRing(t testing.TB, n int) *Keyring {
	t.Helper()
	keys := make([]Key, n)
	for i := range keys {
		keys[i] = GenerateKey()
	}
	r, err := NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hexString(b []byte) string { return hex.EncodeToString(b) }
