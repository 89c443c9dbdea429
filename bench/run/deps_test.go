package main

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The benchmarks start every part through the harness, so they link them all.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		BadDeps: map[string]string{
			deptest.Module + "/internal/optest":   "the benchmarks measure against devidp, the fast fake; the certified OP runs in conformance tests only",
			deptest.Module + "/internal/nodetest": "the benchmarks drive load from Go; Node.js runs only in tests",
		},
	}.Check(t)
}
