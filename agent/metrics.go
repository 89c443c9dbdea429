package agent

import (
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/tokenhandler/tokenhandler/internal/daemon"
)

// agentMetrics are the agent's series (docs/operations.md lists them). The
// agent serves a few requests per session, so looking series up by name per
// request is fine. Label values are the agent's own words, never a
// request's, so they need no escaping.
type agentMetrics struct {
	set *metrics.Set
	// singleFlightWaits counts refreshes that joined or replayed another
	// refresh of the same token instead of calling the Authorization Server.
	singleFlightWaits *metrics.Counter
}

func newAgentMetrics(set *metrics.Set) *agentMetrics {
	return &agentMetrics{set: set, singleFlightWaits: set.NewCounter("oauth_agent_refresh_single_flight_waits_total")}
}

// counter returns the series name{label="value"}.
func (m *agentMetrics) counter(name, label, value string) *metrics.Counter {
	return m.set.GetOrCreateCounter(name + "{" + label + `="` + value + `"}`)
}

// requests counts requests answered, by endpoint and status.
func (m *agentMetrics) requests(endpoint string, status int) *metrics.Counter {
	return m.set.GetOrCreateCounter(`oauth_agent_requests_total{endpoint="` + endpoint + `",status="` + strconv.Itoa(status) + `"}`)
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

// asCall records one call to the Authorization Server: its latency, and an
// error when it failed (transport error or 5xx).
func (m *agentMetrics) asCall(endpoint string, start, end time.Time, status int, err error) {
	labels := `{endpoint="` + endpoint + `"}`
	m.set.GetOrCreatePrometheusHistogramExt("oauth_agent_as_request_duration_seconds"+labels, daemon.LatencyBuckets).Update(end.Sub(start).Seconds())
	if err != nil || status >= 500 || status == 0 {
		m.set.GetOrCreateCounter("oauth_agent_as_errors_total" + labels).Inc()
	}
}
