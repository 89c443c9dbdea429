package nginx

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The renderer takes the cookie names from browser and the error bodies
// from proxy, and links nothing the proxy does not link already.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed:      []string{deptest.Module + "/nginx"},
		AllowLinksOf: deptest.Module + "/proxy",
		BadDeps: map[string]string{
			deptest.Module + "/agent":      "NGINX's configuration takes nothing from the agent",
			"github.com/coreos/go-oidc/v3": deptest.NoOAuth,
			"golang.org/x/oauth2":          deptest.NoOAuth,
		},
		Production: true,
	}.Check(t)
}
