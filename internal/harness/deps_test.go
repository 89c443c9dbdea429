package harness

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The harness starts every part, so it links them all, and the fake
// provider only.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		BadDeps: map[string]string{
			deptest.Module + "/internal/optest":   "the harness measures against devidp, the fast fake; the certified OP runs in conformance tests only",
			deptest.Module + "/internal/nodetest": "the harness is Go and NGINX; Node.js runs only in tests",
		},
	}.Check(t)
}
