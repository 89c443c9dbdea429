package main

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The binary links the agent's packages, never the other daemon.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		BadDeps:    map[string]string{deptest.Module + "/proxy": deptest.Daemons},
		Production: true,
	}.Check(t)
}
