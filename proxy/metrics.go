package proxy

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/tokenhandler/tokenhandler/internal/daemon"
)

// proxyMetrics are the proxy's series in a metrics.Set (docs/proxy.md lists
// them). Every series a request updates is looked up before the request,
// at start-up or when its route is built: updating one allocates nothing.
type proxyMetrics struct {
	set     *metrics.Set
	denied  [denyCount]*metrics.Counter
	reloads struct{ ok, failed *metrics.Counter }

	mu     sync.Mutex
	routes map[string]*routeMetrics
}

// routeMetrics are one route's series. Counters by status are made on first
// use of a status code and then cached, so a steady state allocates nothing.
type routeMetrics struct {
	name    string
	set     *metrics.Set
	labels  string // `route="..."`
	latency *metrics.PrometheusHistogram
	// byStatus counts requests answered, by status.
	byStatus *[600]atomic.Pointer[metrics.Counter]
	// upstreamErrors and upstreamTimeouts count upstream failures:
	// refused or reset (502) and timed out (504).
	upstreamErrors   *metrics.Counter
	upstreamTimeouts *metrics.Counter
}

func newProxyMetrics(set *metrics.Set) *proxyMetrics {
	m := &proxyMetrics{set: set, routes: map[string]*routeMetrics{}}
	for d := denyOrigin; d < denyCount; d++ {
		m.denied[d] = set.GetOrCreateCounter(`oauth_proxy_denied_total{reason="` + denyReasons[d] + `"}`)
	}
	m.reloads.ok = set.GetOrCreateCounter(`oauth_proxy_config_reloads_total{result="ok"}`)
	m.reloads.failed = set.GetOrCreateCounter(`oauth_proxy_config_reloads_total{result="error"}`)
	return m
}

// labelValue escapes v for the text format, where a label value is quoted.
var labelValue = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// route returns the series of one route name (a path prefix, auth or none),
// shared across reloads.
func (m *proxyMetrics) route(name string) *routeMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.routes[name]; r != nil {
		return r
	}
	labels := `route="` + labelValue.Replace(name) + `"`
	r := &routeMetrics{
		name:             name,
		set:              m.set,
		labels:           labels,
		latency:          m.set.GetOrCreatePrometheusHistogramExt("oauth_proxy_request_duration_seconds{"+labels+"}", daemon.LatencyBuckets),
		byStatus:         new([600]atomic.Pointer[metrics.Counter]),
		upstreamErrors:   m.set.GetOrCreateCounter("oauth_proxy_upstream_errors_total{" + labels + `,kind="unavailable"}`),
		upstreamTimeouts: m.set.GetOrCreateCounter("oauth_proxy_upstream_errors_total{" + labels + `,kind="timeout"}`),
	}
	m.routes[name] = r
	return r
}

func (r *routeMetrics) observe(status int, d time.Duration) {
	r.latency.Update(d.Seconds())
	if status < 100 || status >= len(r.byStatus) {
		status = 0
	}
	c := r.byStatus[status].Load()
	if c == nil {
		c = r.set.GetOrCreateCounter("oauth_proxy_requests_total{" + r.labels + `,status="` + strconv.Itoa(status) + `"}`)
		r.byStatus[status].Store(c)
	}
	c.Inc()
}
