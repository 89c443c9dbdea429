package bintest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The binaries' runner runs them as a user does, linking no daemon: the
// standard library only.
func TestDependencies(t *testing.T) { deptest.Stdlib.Check(t) }
