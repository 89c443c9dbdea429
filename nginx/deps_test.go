package nginx

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// TestDependencies: the renderer takes the cookie names from package
// browser and the error bodies from package proxy, and links nothing that
// the proxy does not link already (never the agent or an OIDC library).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "../proxy").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deptest.Allow(t, append(strings.Fields(string(out)), deptest.Module+"/nginx")...)
}
