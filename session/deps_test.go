package session

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The envelope sits beside crypto and builds on it alone, so that both
// daemons and the tools can use it without linking any server code.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: deptest.Cat([]string{deptest.Module + "/session", deptest.Module + "/crypto"}, deptest.Sio),
		Shared:  true,
		BadDeps: map[string]string{
			deptest.Module + "/browser": "the envelope is what a cookie holds, below the rules that name and split cookies",
		},
		Production: true,
	}.Check(t)
}
