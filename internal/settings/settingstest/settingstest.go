// Package settingstest holds what the tests of configuration files share:
// an environment made of a map, and the check that a key ring built from a
// file's key sources seals with the key expected first.
package settingstest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/crypto"
)

// Env returns a getenv that reads only vars (nil: an empty environment).
func Env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// SealsWith fails t unless ring seals with the key written as hexKey: the
// key the sources list first.
func SealsWith(t testing.TB, ring *crypto.Keyring, hexKey string) {
	t.Helper()
	only, err := crypto.ParseKeyring(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := ring.Seal(nil, []byte("payload"), crypto.FormatV1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := only.Open(nil, sealed); err != nil {
		t.Errorf("the key ring does not seal with the expected first key: %v", err)
	}
}
