package agent

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The agent adds the router, x/oauth2 and go-oidc (with go-jose) to what
// the proxy uses.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: deptest.Cat([]string{deptest.Module + "/agent", deptest.Module + "/browser", deptest.Module + "/crypto", "github.com/VictoriaMetrics/metrics", deptest.Module + "/internal/",
			deptest.Module + "/revocation", deptest.Module + "/session", "golang.org/x/net", "golang.org/x/oauth2",
			"github.com/coreos/go-oidc/v3", "github.com/go-jose/go-jose/v4", "github.com/fasthttp/router", "github.com/savsgio/gotils",
			"go.yaml.in/yaml/v3"}, deptest.Sio, deptest.Fasthttp, deptest.Zerolog, deptest.GoRedis),
		BadDeps:    map[string]string{deptest.Module + "/proxy": deptest.Daemons},
		Production: true,
	}.Check(t)
}
