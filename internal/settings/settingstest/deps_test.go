package settingstest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// TestDependencies: test support for configuration files needs only the
// key ring of package crypto (and what crypto links).
func TestDependencies(t *testing.T) {
	m := deptest.Module
	deptest.Allow(t, m+"/internal/settings/settingstest", m+"/crypto", "github.com/minio/sio", "golang.org/x/crypto", "golang.org/x/sys")
}
