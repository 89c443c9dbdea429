package nginx

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// TestDependencies: the renderer needs only the standard library and
// package browser, which computes the cookie names.
func TestDependencies(t *testing.T) {
	deptest.Allow(t, deptest.Module+"/nginx", deptest.Module+"/browser")
}
