package proxy

import (
	"strconv"
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
	set         *metrics.Set
	reloads     struct{ ok, failed *metrics.Counter }
	unknownHost *metrics.Counter // requests for a host no application has

	mu     sync.Mutex
	routes map[routeKey]*routeMetrics
	// appDeny are the refusal counters by application name; those of
	// the application without a name (a file without apps) are labelled
	// by reason alone, as before issue #15.
	appDeny map[string]*[denyCount]*metrics.Counter
}

// routeKey names one route's series: its application and its name.
type routeKey struct{ app, route string }

// routeMetrics are one route's series. Counters by status are made on first
// use of a status code and then cached, so a steady state allocates nothing.
type routeMetrics struct {
	name    string
	set     *metrics.Set
	labels  string // `route="..."`, or `app="...",route="..."`
	latency *metrics.PrometheusHistogram
	// byStatus counts requests answered, by status.
	byStatus *[600]atomic.Pointer[metrics.Counter]
	// upstreamErrors and upstreamTimeouts count upstream failures:
	// refused or reset (502) and timed out (504).
	upstreamErrors   *metrics.Counter
	upstreamTimeouts *metrics.Counter
}

func newProxyMetrics(set *metrics.Set) *proxyMetrics {
	m := &proxyMetrics{set: set, routes: map[routeKey]*routeMetrics{}, appDeny: map[string]*[denyCount]*metrics.Counter{}}
	m.reloads.ok = set.GetOrCreateCounter(`oauth_proxy_config_reloads_total{result="ok"}`)
	m.reloads.failed = set.GetOrCreateCounter(`oauth_proxy_config_reloads_total{result="error"}`)
	m.unknownHost = set.GetOrCreateCounter(`oauth_proxy_unknown_host_total`)
	return m
}

// denials returns the refusal counters of application app, by reason,
// shared across reloads.
func (m *proxyMetrics) denials(app string) *[denyCount]*metrics.Counter {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.appDeny[app]
	if d == nil {
		d = new([denyCount]*metrics.Counter)
		for why := denyOrigin; why < denyCount; why++ {
			d[why] = m.set.GetOrCreateCounter(`oauth_proxy_denied_total{` + daemon.AppLabel(app) + `reason="` + denyReasons[why] + `"}`)
		}
		m.appDeny[app] = d
	}
	return d
}

// route returns the series of one route name (a path prefix, auth or none)
// of application app, shared across reloads.
func (m *proxyMetrics) route(app, name string) *routeMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := routeKey{app, name}
	if r := m.routes[key]; r != nil {
		return r
	}
	labels := daemon.AppLabel(app) + `route="` + daemon.LabelValue.Replace(name) + `"`
	r := &routeMetrics{
		name:             name,
		set:              m.set,
		labels:           labels,
		latency:          m.set.GetOrCreatePrometheusHistogramExt("oauth_proxy_request_duration_seconds{"+labels+"}", daemon.LatencyBuckets),
		byStatus:         new([600]atomic.Pointer[metrics.Counter]),
		upstreamErrors:   m.set.GetOrCreateCounter("oauth_proxy_upstream_errors_total{" + labels + `,kind="unavailable"}`),
		upstreamTimeouts: m.set.GetOrCreateCounter("oauth_proxy_upstream_errors_total{" + labels + `,kind="timeout"}`),
	}
	m.routes[key] = r
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
