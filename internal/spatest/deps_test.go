package spatest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// Plays the SPA's browser: the standard library and bintest's HTTP calls.
func TestDependencies(t *testing.T) { deptest.Runner.Check(t) }
