package browser

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// What agent and proxy share at the browser's edge: the standard library
// only.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: []string{deptest.Module + "/browser"},
		Shared:  true,
		BadDeps: map[string]string{
			deptest.Module + "/crypto": "browser names, splits and checks cookies and headers; the daemons seal and open the values",
		},
		Production: true,
	}.Check(t)
}
