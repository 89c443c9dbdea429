package nginx

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// TestDependencies: the renderer needs only the standard library.
func TestDependencies(t *testing.T) {
	deptest.Allow(t, deptest.Module+"/nginx")
}
