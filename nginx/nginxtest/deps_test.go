package nginxtest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// Runs real NGINX with the rendered configuration: what the renderer
// links, and the binaries' runner.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed:      []string{deptest.Module + "/nginx/nginxtest", deptest.Module + "/internal/bintest"},
		AllowLinksOf: deptest.Module + "/nginx",
		BadDeps:      map[string]string{deptest.Module + "/agent": "NGINX's configuration takes nothing from the agent"},
	}.Check(t)
}
