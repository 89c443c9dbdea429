package park

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

func TestDependencies(t *testing.T) { deptest.Check(t) }
