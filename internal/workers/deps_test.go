package workers

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The supervisor: processes, signals, and the metrics listener it shares
// with the daemons' plumbing, whose links it may have.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		AllowLinksOf: deptest.Module + "/internal/daemon",
		Allowed:      []string{deptest.Module + "/internal/workers"},
		Shared:       true,
		Production:   true,
	}.Check(t)
}
