package devstacktest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// Runs the development stack's binary, at a pseudo-terminal opened with
// x/sys's ioctls.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{AllowLinksOf: deptest.Module + "/internal/bintest", Allowed: []string{"golang.org/x/sys"}}.Check(t)
}
