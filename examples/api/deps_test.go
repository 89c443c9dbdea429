package api

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The example API stands for the customer's API: it verifies the access
// token with go-oidc, as a customer's would.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: deptest.Cat([]string{deptest.Module + "/examples/api", "github.com/coreos/go-oidc/v3", "github.com/go-jose/go-jose/v4", "golang.org/x/oauth2"}, deptest.Fasthttp),
		BadDeps: map[string]string{
			deptest.Module + "/": "the example API stands for the customer's, which links none of the token handler",
		},
	}.Check(t)
}
