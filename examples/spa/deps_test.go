package spa

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The SPA's server: the standard library only.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: []string{deptest.Module + "/examples/spa"},
		BadDeps: map[string]string{
			deptest.Module + "/": "the SPA stands for the customer's, which talks to the token handler over HTTP only",
		},
	}.Check(t)
}
