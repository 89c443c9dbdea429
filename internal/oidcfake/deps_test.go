package oidcfake

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The fakes need only the standard library and go-jose, so that any
// package's tests (and the development stack) can import them.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: []string{deptest.Module + "/internal/oidcfake", "github.com/go-jose/go-jose/v4"},
		BadDeps: map[string]string{
			deptest.Module + "/agent":        "the agent's tests use the fakes built on it: linking the agent would be an import cycle",
			deptest.Module + "/agent/astest": "astest and devidp are layers on oidcfake, never the reverse",
		},
	}.Check(t)
}
