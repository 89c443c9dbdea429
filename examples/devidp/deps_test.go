package devidp_test

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// A layer on oidcfake: the standard library, oidcfake and go-jose.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: []string{deptest.Module + "/examples/devidp", deptest.Module + "/internal/oidcfake", "github.com/go-jose/go-jose/v4"},
		BadDeps: map[string]string{
			deptest.Module + "/agent":        "the IdP stands for the Authorization Server, which knows nothing of the agent that calls it",
			deptest.Module + "/agent/astest": "the test fake and the development IdP are siblings on oidcfake; neither builds on the other",
		},
	}.Check(t)
}
