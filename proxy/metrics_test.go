package proxy

import (
	"runtime"
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/metricstest"
)

// TestMetricsPage: the proxy's metrics listener serves the Go runtime's and
// the process's series, and every proxy series docs/contract.md and
// docs/operations.md name once one request has been forwarded.
func TestMetricsPage(t *testing.T) {
	h := startProxy(t, "metrics_listen: 127.0.0.1:0\ntimeouts: {upstream: 2s, park: 1s}")
	if r := h.do(request{method: "GET", path: "/api/orders", headers: [][2]string{origin(trustedOrigin), cookie(at(h))}}); r.status != 200 {
		t.Fatalf("GET /api/orders: %d %s", r.status, r.body)
	}

	var except []string
	if runtime.GOOS != "linux" { // parking needs epoll: elsewhere nothing parks and the gauge is not there
		except = append(except, "oauth_proxy_parked_connections")
	}
	metricstest.WantDocumented(t, h.srv.MetricsAddr().String(), "../docs", "oauth_proxy_", except...)
}
