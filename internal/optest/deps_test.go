package optest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// Runs the certified OpenID Provider on Node.js.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: []string{deptest.Module + "/internal/optest", deptest.Module + "/internal/bintest", deptest.Module + "/internal/nodetest"},
		BadDeps: map[string]string{
			deptest.Module + "/internal/oidcfake": "it runs the certified provider, never our fake: the point is an OP we did not write",
		},
	}.Check(t)
}
