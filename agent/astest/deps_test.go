package astest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// A layer on oidcfake: the standard library, oidcfake and go-jose.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: []string{deptest.Module + "/agent/astest", deptest.Module + "/internal/oidcfake", "github.com/go-jose/go-jose/v4"},
		BadDeps: map[string]string{
			deptest.Module + "/agent": "the agent's own tests import the fake: linking the agent would be an import cycle",
			deptest.Module + "/proxy": "a fake Authorization Server for any package's tests links no daemon",
		},
	}.Check(t)
}
