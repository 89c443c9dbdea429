// Package settingstest holds what the tests of configuration files share:
// an environment made of a map, the check that a key ring built from a
// file's key sources seals with the key expected first, and the check of
// an error that refuses a file.
package settingstest

import (
	"strings"
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

// Refused fails t unless err is an error of one line that contains want
// and quotes none of secrets: what every configuration error must be.
func Refused(t testing.TB, err error, want string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	msg := err.Error()
	if !strings.Contains(msg, want) {
		t.Errorf("error %q does not contain %q", msg, want)
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q is not one line", msg)
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("error %q quotes secret material %q", msg, s)
		}
	}
}
