package main

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The binary links the proxy's packages, never the other daemon.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		BadDeps:    map[string]string{deptest.Module + "/agent": deptest.Daemons, "golang.org/x/oauth2": deptest.NoOAuth, "github.com/coreos/go-oidc/v3": deptest.NoOAuth},
		Production: true,
	}.Check(t)
}
