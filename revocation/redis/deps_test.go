package redis

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The Redis store needs the list, the settings type of its configuration
// block and the client (docs/operations.md).
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: deptest.Cat([]string{deptest.Module + "/revocation", deptest.Module + "/session", deptest.Module + "/crypto",
			deptest.Module + "/internal/settings", deptest.Module + "/browser", "github.com/rs/zerolog", "github.com/mattn/", "go.yaml.in/yaml/v3"},
			deptest.Sio, deptest.GoRedis),
		BadDeps: map[string]string{
			deptest.Module + "/agent":               "the agent records and the proxies follow, so the store links neither",
			deptest.Module + "/proxy":               "the agent records and the proxies follow, so the store links neither",
			deptest.Module + "/revocation/embedded": "the stores are alternatives chosen by configuration; neither needs the other",
		},
		Production: true,
	}.Check(t)
}
