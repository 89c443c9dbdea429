package proxy

import (
	"runtime"
	"slices"
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

	page, err := metricstest.Scrape(h.srv.MetricsAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	documented, err := metricstest.Documented("oauth_proxy_", "../docs/contract.md", "../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(documented) < 8 {
		t.Fatalf("the docs name %d proxy series (%q): the pattern no longer finds them", len(documented), documented)
	}
	if runtime.GOOS != "linux" { // parking needs epoll: elsewhere nothing parks and the gauge is not there
		documented = slices.DeleteFunc(documented, func(n string) bool { return n == "oauth_proxy_parked_connections" })
	}
	want := append(documented, "go_goroutines", "go_memstats_alloc_bytes", "process_resident_memory_bytes", "process_cpu_seconds_total")
	if missing := metricstest.Missing(page, want...); len(missing) > 0 {
		t.Errorf("/metrics lacks %q:\n%s", missing, page)
	}
}
