package revocation

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The revocation list builds on the session envelope only; its stores live
// in subpackages.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: deptest.Cat([]string{deptest.Module + "/revocation", deptest.Module + "/session", deptest.Module + "/crypto"}, deptest.Sio),
		BadDeps: map[string]string{
			deptest.Module + "/revocation/": "the list is what every store fills; a store is chosen by configuration, so the list links none",
			"github.com/valyala/fasthttp":   "the proxy consults the list on every request; it does no I/O of its own",
		},
		Production: true,
	}.Check(t)
}
