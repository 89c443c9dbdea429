package revocationtest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// What the stores' tests share needs the list and the envelope only.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: deptest.Cat([]string{deptest.Module + "/revocation/revocationtest", deptest.Module + "/revocation", deptest.Module + "/session", deptest.Module + "/crypto"}, deptest.Sio),
		BadDeps: map[string]string{
			deptest.Module + "/revocation/embedded": "the stores' tests import it: linking a store would be an import cycle",
			deptest.Module + "/revocation/redis":    "the stores' tests import it: linking a store would be an import cycle",
		},
	}.Check(t)
}
