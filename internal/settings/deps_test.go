package settings

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// What both configuration files share: no server code.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: deptest.Cat([]string{deptest.Module + "/internal/settings", deptest.Module + "/crypto", deptest.Module + "/browser", "go.yaml.in/yaml/v3"}, deptest.Sio, deptest.Zerolog),
		Shared:  true,
		BadDeps: map[string]string{
			"github.com/valyala/fasthttp": "decoding a configuration file needs no server code",
		},
		Production: true,
	}.Check(t)
}
