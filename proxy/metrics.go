package proxy

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenhandler/tokenhandler/metrics"
)

// proxyMetrics are the proxy's series in a metrics.Registry.
type proxyMetrics struct {
	reg     *metrics.Registry
	denied  [denyCount]*metrics.Counter
	reloads struct{ ok, failed *metrics.Counter }

	mu     sync.Mutex
	routes map[string]*routeMetrics
}

// routeMetrics are one route's series. Counters by status are made on first
// use of a status code and then cached, so a steady state allocates nothing.
type routeMetrics struct {
	name             string
	reg              *metrics.Registry
	latency          *metrics.Histogram
	byStatus         *[600]atomic.Pointer[metrics.Counter]
	upstreamErrors   *metrics.Counter
	upstreamTimeouts *metrics.Counter
}

const (
	mRequests       = "oauth_proxy_requests_total"
	mRequestsHelp   = "Requests answered, by route (path prefix, auth, or none) and status."
	mDuration       = "oauth_proxy_request_duration_seconds"
	mUpstreamErrors = "oauth_proxy_upstream_errors_total"
)

func newProxyMetrics(reg *metrics.Registry) *proxyMetrics {
	m := &proxyMetrics{reg: reg, routes: map[string]*routeMetrics{}}
	for d := denyOrigin; d < denyCount; d++ {
		m.denied[d] = reg.Counter("oauth_proxy_denied_total", "Requests refused with 401, by reason (Origin, CSRF, missing or undecryptable cookie, token format, a cookie name twice, an expired session, cookies of two sessions, a session ended by a back-channel logout).", "reason", denyReasons[d])
	}
	m.reloads.ok = reg.Counter("oauth_proxy_config_reloads_total", "Configuration reloads (SIGHUP), by result.", "result", "ok")
	m.reloads.failed = reg.Counter("oauth_proxy_config_reloads_total", "Configuration reloads (SIGHUP), by result.", "result", "error")
	return m
}

// route returns the series of one route name, shared across reloads.
func (m *proxyMetrics) route(name string) *routeMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.routes[name]; r != nil {
		return r
	}
	r := &routeMetrics{
		name:             name,
		reg:              m.reg,
		latency:          m.reg.Histogram(mDuration, "Time from request to answer (upstream included), by route.", metrics.DefaultLatencyBuckets, "route", name),
		byStatus:         new([600]atomic.Pointer[metrics.Counter]),
		upstreamErrors:   m.reg.Counter(mUpstreamErrors, "Upstream failures, by route and kind (unavailable: refused or reset, 502; timeout: 504).", "route", name, "kind", "unavailable"),
		upstreamTimeouts: m.reg.Counter(mUpstreamErrors, "Upstream failures, by route and kind (unavailable: refused or reset, 502; timeout: 504).", "route", name, "kind", "timeout"),
	}
	m.routes[name] = r
	return r
}

func (r *routeMetrics) observe(status int, d time.Duration) {
	r.latency.Observe(d)
	if status < 100 || status >= len(r.byStatus) {
		status = 0
	}
	c := r.byStatus[status].Load()
	if c == nil {
		c = r.reg.Counter(mRequests, mRequestsHelp, "route", r.name, "status", strconv.Itoa(status))
		r.byStatus[status].Store(c)
	}
	c.Inc()
}
