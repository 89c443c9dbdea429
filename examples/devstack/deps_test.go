package main

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The development stack starts every part, so it links them all; it runs
// on the development IdP alone.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		BadDeps: map[string]string{
			deptest.Module + "/internal/optest":   "the development stack's provider is devidp; the certified OP runs in conformance tests only",
			deptest.Module + "/internal/nodetest": "the stack is Go and NGINX; Node.js runs only in tests",
		},
	}.Check(t)
}
