package harness

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The harness starts every part, so it links them all.
func TestDependencies(t *testing.T) { deptest.Harness.Check(t) }
