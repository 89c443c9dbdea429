package astest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// A fake provider on oidcfake, for tests.
func TestDependencies(t *testing.T) { deptest.FakeProvider.Check(t) }
