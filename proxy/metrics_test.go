package proxy

import (
	"fmt"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/metricstest"
)

// TestMetricsPage: the proxy's metrics listener serves the Go runtime's and
// the process's series, and every proxy series docs/contract.md and
// docs/operations.md name once one request has been forwarded.
func TestMetricsPage(t *testing.T) {
	h := startProxy(t, "metrics_listen: 127.0.0.1:0\ntimeouts: {upstream: 2s}") // the defaults: on loopback, nothing parks

	if r := h.do(request{method: "GET", path: "/api/orders", headers: [][2]string{origin(trustedOrigin), cookie(at(h))}}); r.status != 200 {
		t.Fatalf("GET /api/orders: %d %s", r.status, r.body)
	}
	metricstest.WantDocumented(t, h.srv.MetricsAddr().String(), "../docs", "oauth_proxy_", "oauth_proxy_worker_restarts_total") // the worker set's supervisor has it
}

// TestNewTwiceOnOneSet: a second Proxy built on the Set of a first shares
// its counters and takes over its gauges instead of panicking (review B3).
func TestNewTwiceOnOneSet(t *testing.T) {
	cfg, err := ParseConfig([]byte(fmt.Sprintf("encryption_keys: [%q]\ntrusted_web_origins: [%q]\n", crypto.GenerateKey().AppendHex(nil), trustedOrigin)), nil)
	if err != nil {
		t.Fatal(err)
	}
	set := metrics.NewSet()
	for i := range 2 {
		p, err := New(cfg, set, zerolog.Nop())
		if err != nil {
			t.Fatalf("New #%d: %v", i+1, err)
		}
		p.Close()
	}
}
