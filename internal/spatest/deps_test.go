package spatest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// Plays the SPA's browser: the standard library only.
func TestDependencies(t *testing.T) { deptest.Stdlib.Check(t) }
