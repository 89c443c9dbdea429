package browser

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// TestDependencies: the shared contract needs the standard library only.
func TestDependencies(t *testing.T) {
	deptest.Allow(t, deptest.Module+"/browser")
}
