package curl

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The curl walkthrough is documentation: it links nothing.
func TestDependencies(t *testing.T) { deptest.Stdlib.Check(t) }
