package devidp_test

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// A fake provider on oidcfake, for the development stack.
func TestDependencies(t *testing.T) { deptest.FakeProvider.Check(t) }
