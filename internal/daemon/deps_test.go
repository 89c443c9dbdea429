package daemon

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// Plumbing for both binaries: listeners, signals, logging, ops; and the
// shared settings (log, timeouts) Main is configured with.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		AllowLinksOf: deptest.Module + "/internal/settings",
		Allowed:      deptest.Cat([]string{deptest.Module + "/internal/daemon", deptest.Module + "/internal/park", deptest.Module + "/internal/version", "github.com/VictoriaMetrics/metrics", "golang.org/x/sys", "golang.org/x/net"}, deptest.Fasthttp, deptest.Zerolog),
		Shared:       true,
		Production:   true,
	}.Check(t)
}
