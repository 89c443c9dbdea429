package main

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The load test starts every part through the harness, so it links them all.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		BadDeps: map[string]string{
			deptest.Module + "/internal/optest":   "the load test runs against devidp, the fast fake; the certified OP runs in conformance tests only",
			deptest.Module + "/internal/nodetest": "k6 drives the load; Node.js runs only in tests",
		},
	}.Check(t)
}
