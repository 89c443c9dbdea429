package devstacktest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// Runs the development stack: the binaries' runner only.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: []string{deptest.Module + "/examples/devstack/devstacktest", deptest.Module + "/internal/bintest"},
	}.Check(t)
}
