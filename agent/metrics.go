package agent

import (
	"strconv"
	"time"

	"github.com/tokenhandler/tokenhandler/metrics"
)

// agentMetrics are the agent's series. The agent serves a few requests per
// session, so looking series up per request is fine.
type agentMetrics struct {
	reg               *metrics.Registry
	singleFlightWaits *metrics.Counter
}

func newAgentMetrics(reg *metrics.Registry) *agentMetrics {
	return &agentMetrics{
		reg:               reg,
		singleFlightWaits: reg.Counter("oauth_agent_refresh_single_flight_waits_total", "Refreshes that joined or replayed another refresh of the same token instead of calling the Authorization Server."),
	}
}

func (m *agentMetrics) requests(endpoint string, status int) *metrics.Counter {
	return m.reg.Counter("oauth_agent_requests_total", "Requests answered, by endpoint and status.", "endpoint", endpoint, "status", strconv.Itoa(status))
}

// denied counts requests refused for their cookies: cookie_ambiguous,
// session_mismatch, session_expired, session_revoked, revocation_stale,
// identity_changed.
func (m *agentMetrics) denied(reason string) *metrics.Counter {
	return m.reg.Counter("oauth_agent_denied_total", "Requests refused for their cookies, by reason.", "reason", reason)
}

// backchannelLogouts counts back-channel logouts by result (backchannel.go).
func (m *agentMetrics) backchannelLogouts(result string) *metrics.Counter {
	return m.reg.Counter("oauth_agent_backchannel_logouts_total", "Back-channel logouts (OpenID Connect Back-Channel Logout 1.0), by result.", "result", result)
}

func (m *agentMetrics) logins(result string) *metrics.Counter {
	return m.reg.Counter("oauth_agent_logins_total", "Completed logins (login/end with a code), by result.", "result", result)
}

func (m *agentMetrics) refreshes(result string) *metrics.Counter {
	return m.reg.Counter("oauth_agent_refreshes_total", "Refresh-token grants sent to the Authorization Server, by result.", "result", result)
}

// asCall records one call to the Authorization Server: its latency, and an
// error when it failed (transport error or 5xx).
func (m *agentMetrics) asCall(endpoint string, start, end time.Time, status int, err error) {
	m.reg.Histogram("oauth_agent_as_request_duration_seconds", "Latency of calls to the Authorization Server, by endpoint.", metrics.DefaultLatencyBuckets, "endpoint", endpoint).Observe(end.Sub(start))
	if err != nil || status >= 500 || status == 0 {
		m.reg.Counter("oauth_agent_as_errors_total", "Calls to the Authorization Server that failed (network error or 5xx), by endpoint.", "endpoint", endpoint).Inc()
	}
}
