package version

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// Linked by thctl too: the standard library alone.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{Allowed: []string{}, Production: true}.Check(t)
}
