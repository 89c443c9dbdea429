package astest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// TestDependencies: the fake needs only the standard library and go-jose, so
// any package's tests can import it.
func TestDependencies(t *testing.T) {
	deptest.Allow(t, deptest.Module+"/agent/astest", deptest.Module+"/internal/oidcfake", "github.com/go-jose/go-jose/v4")
}
