package main

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The renderer's command links the renderer, nothing of the agent.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		BadDeps:    map[string]string{deptest.Module + "/agent": "NGINX's configuration takes nothing from the agent"},
		Production: true,
	}.Check(t)
}
