package nodetest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// Runs Node.js.
func TestDependencies(t *testing.T) { deptest.Runner.Check(t) }
