package proxy

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The proxy's own module dependencies are fasthttp, zerolog and YAML, and
// the Redis client for revocation.store redis (issue #13). It shares the
// cookie contract (browser, session, crypto) and the revocation list with
// the agent.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: deptest.Cat([]string{deptest.Module + "/proxy", deptest.Module + "/browser", deptest.Module + "/session", deptest.Module + "/crypto", "github.com/VictoriaMetrics/metrics",
			deptest.Module + "/internal/daemon", deptest.Module + "/internal/park", deptest.Module + "/internal/settings", deptest.Module + "/internal/workers", deptest.Module + "/internal/version", deptest.Module + "/revocation", "golang.org/x/net", "go.yaml.in/yaml/v3"},
			deptest.Sio, deptest.Fasthttp, deptest.Zerolog, deptest.GoRedis),
		BadDeps: map[string]string{
			deptest.Module + "/agent":       deptest.Daemons,
			"golang.org/x/oauth2":           deptest.NoOAuth,
			"github.com/coreos/go-oidc/v3":  deptest.NoOAuth,
			"github.com/go-jose/go-jose/v4": "the proxy verifies no JWT: the API checks the access token it forwards",
		},
		Production: true,
	}.Check(t)
}
