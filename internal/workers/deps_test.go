package workers

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The supervisor: processes, signals, and the metrics listener it shares
// with the daemons' plumbing.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed:    deptest.Cat([]string{deptest.Module + "/internal/workers", deptest.Module + "/internal/daemon", deptest.Module + "/internal/park", deptest.Module + "/internal/version", "github.com/VictoriaMetrics/metrics", "golang.org/x/sys", "golang.org/x/net"}, deptest.Fasthttp, deptest.Zerolog),
		Shared:     true,
		Production: true,
	}.Check(t)
}
