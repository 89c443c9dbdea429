package spa

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The SPA stands for the customer's, which talks to the token handler
// over HTTP only: the standard library only.
func TestDependencies(t *testing.T) { deptest.Stdlib.Check(t) }
