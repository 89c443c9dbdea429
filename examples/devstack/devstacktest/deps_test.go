package devstacktest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// Runs the development stack's binary.
func TestDependencies(t *testing.T) { deptest.Runner.Check(t) }
