package main

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The renderer's command links the renderer and, for -proxy-config and
// -agent-config, both daemons' configuration code: it reads their files
// with their own LoadConfig, so that NGINX routes what they serve. Package
// nginx itself links neither (its TestDependencies). Nothing of the tests.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		BadDeps:    map[string]string{deptest.Module + "/nginx/nginxtest": "runs NGINX in tests; the command only writes a configuration"},
		Production: true,
	}.Check(t)
}
