package main

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The benchmarks starts every part, so it links them all.
func TestDependencies(t *testing.T) { deptest.Harness.Check(t) }
