package settingstest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// Test support for configuration files needs only the key ring of package
// crypto (and what crypto links).
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: deptest.Cat([]string{deptest.Module + "/internal/settings/settingstest", deptest.Module + "/crypto"}, deptest.Sio),
		BadDeps: map[string]string{
			deptest.Module + "/internal/settings": "the settings' own tests import it: linking settings would be an import cycle",
		},
	}.Check(t)
}
