package nodetest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// Runs Node.js: the standard library and the binaries' runner.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: []string{deptest.Module + "/internal/nodetest", deptest.Module + "/internal/bintest"},
	}.Check(t)
}
