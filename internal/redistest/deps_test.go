package redistest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// Runs a real redis-server, and no client: each test talks to it with the
// client it tests.
func TestDependencies(t *testing.T) { deptest.Runner.Check(t) }
