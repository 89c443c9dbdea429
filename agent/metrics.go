package agent

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/tokenhandler/tokenhandler/internal/daemon"
)

// agentMetrics are the series of one application (docs/operations.md lists
// them): with a name (a file with apps, issue #15) every series carries the
// label app="<name>" first; without, the series are those of a file without
// apps, byte for byte. The agent serves a few requests per session, so
// looking series up by name per request is fine. Label values are the
// agent's own words or an application's name (settings.CheckAppName: [a-z0-9-]),
// never a request's, so they need no escaping. An agentMetrics is immutable
// and safe for concurrent use.
type agentMetrics struct {
	set *metrics.Set
	// app is `app="<name>",` or "": the first label of every series.
	app string
	// singleFlightWaits counts refreshes that joined or replayed another
	// refresh of the same token instead of calling the Authorization Server.
	singleFlightWaits *metrics.Counter
}

// newAgentMetrics returns the series of the application named app ("" for
// a file without apps).
func newAgentMetrics(set *metrics.Set, app string) *agentMetrics {
	m := &agentMetrics{set: set, app: daemon.AppLabel(app)}
	waits := "oauth_agent_refresh_single_flight_waits_total"
	if m.app != "" {
		waits += "{" + strings.TrimSuffix(m.app, ",") + "}"
	}
	m.singleFlightWaits = set.GetOrCreateCounter(waits)
	return m
}

// counter returns the series name{[app="…",]label="value"}.
func (m *agentMetrics) counter(name, label, value string) *metrics.Counter {
	return m.set.GetOrCreateCounter(name + "{" + m.app + label + `="` + value + `"}`)
}

// requests counts requests answered, by endpoint and status.
func (m *agentMetrics) requests(endpoint string, status int) *metrics.Counter {
	return m.set.GetOrCreateCounter(`oauth_agent_requests_total{` + m.app + `endpoint="` + endpoint + `",status="` + strconv.Itoa(status) + `"}`)
}

// denied counts requests refused for their cookies: cookie_ambiguous,
// session_mismatch, session_expired, session_revoked, revocation_stale,
// identity_changed.
func (m *agentMetrics) denied(reason string) *metrics.Counter {
	return m.counter("oauth_agent_denied_total", "reason", reason)
}

// backchannelLogouts counts back-channel logouts (OpenID Connect
// Back-Channel Logout 1.0) by result (backchannel.go).
func (m *agentMetrics) backchannelLogouts(result string) *metrics.Counter {
	return m.counter("oauth_agent_backchannel_logouts_total", "result", result)
}

// logins counts completed logins (login/end with a code), by result.
func (m *agentMetrics) logins(result string) *metrics.Counter {
	return m.counter("oauth_agent_logins_total", "result", result)
}

// refreshes counts refresh-token grants sent to the Authorization Server,
// by result.
func (m *agentMetrics) refreshes(result string) *metrics.Counter {
	return m.counter("oauth_agent_refreshes_total", "result", result)
}

// asEndpointKey is the context key of asEndpoint.
type asEndpointKey struct{}

// asEndpoint returns ctx marking the calls made with it as calls to one
// endpoint of the Authorization Server, for asTransport's metrics: par,
// token, userinfo, revocation, discovery or jwks.
func asEndpoint(ctx context.Context, endpoint string) context.Context {
	return context.WithValue(ctx, asEndpointKey{}, endpoint)
}

// asTransport is the back-channel client's transport: it records every
// call the agent makes to the Authorization Server, by the endpoint its
// context names (asEndpoint; "other" when none):
// oauth_agent_as_request_duration_seconds, the time until the answer's
// headers, and oauth_agent_as_errors_total when the call failed (no answer,
// or a 5xx). It is safe for concurrent use.
type asTransport struct {
	base    http.RoundTripper
	metrics *agentMetrics
}

func (t *asTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	endpoint, _ := r.Context().Value(asEndpointKey{}).(string)
	if endpoint == "" {
		endpoint = "other"
	}
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	labels := `{` + t.metrics.app + `endpoint="` + endpoint + `"}`
	t.metrics.set.GetOrCreatePrometheusHistogramExt("oauth_agent_as_request_duration_seconds"+labels, daemon.LatencyBuckets).UpdateDuration(start)
	if err != nil || resp.StatusCode >= 500 {
		t.metrics.set.GetOrCreateCounter("oauth_agent_as_errors_total" + labels).Inc()
	}
	return resp, err
}

// CloseIdleConnections closes the base transport's idle connections (for
// http.Client.CloseIdleConnections).
func (t *asTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
