package bintest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The binaries' runner needs only the standard library, so that any
// package's tests can import it.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: []string{deptest.Module + "/internal/bintest"},
		BadDeps: map[string]string{
			deptest.Module + "/agent": "it runs the built binaries as a user does; it links no daemon",
			deptest.Module + "/proxy": "it runs the built binaries as a user does; it links no daemon",
		},
	}.Check(t)
}
