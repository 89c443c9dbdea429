package main

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The operator's tool links no daemon.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		BadDeps: map[string]string{
			deptest.Module + "/agent": "thctl works on keys and cookie values alone, and stays small enough to audit",
			deptest.Module + "/proxy": "thctl works on keys and cookie values alone, and stays small enough to audit",
		},
		Production: true,
	}.Check(t)
}
