package agent

import (
	"testing"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/agent/astest"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/metricstest"
)

// TestMetricsPage: the agent's metrics listener serves the Go runtime's and
// the process's series, and every agent series docs/contract.md and
// docs/operations.md name, once one request of each kind has touched it.
func TestMetricsPage(t *testing.T) {
	as := astest.New(t, astest.Options{})
	cfg := testConfig(as)
	cfg.Listen, cfg.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
	logs := &bintest.Buffer{}
	s, err := NewServer(cfg, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	bintest.Serve(t, s.Serve, s.Shutdown)
	waitReady(t, s.Agent, logs)
	a := &testAgent{t: t, as: as, agent: s.Agent, cfg: cfg, url: "http://" + s.Addr().String(), logs: logs}

	b := a.spa()
	a.login(b) // logins, requests, the token endpoint
	if r := a.call(b, "POST", "/oauth-agent/refresh", nil); r.Status != 204 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	as.Set(func(f *astest.Faults) { f.TokenStatus = 500 })
	if r := a.call(b, "POST", "/oauth-agent/refresh", nil); r.Status != 502 { // an AS error
		t.Fatalf("refresh against a failing AS: %d %s", r.Status, r.Body)
	}
	if r := a.call(a.spa(), "POST", "/oauth-agent/refresh", nil, "Cookie", "example-auth=a; example-auth=b"); r.Status != 401 {
		t.Fatalf("refresh with a cookie twice: %d %s", r.Status, r.Body)
	}
	if r := a.postLogout("application/x-www-form-urlencoded", "logout_token=x"); r.status != 400 {
		t.Fatalf("back-channel logout with a malformed token: %d %s", r.status, r.body)
	}

	metricstest.WantDocumented(t, s.MetricsAddr().String(), "../docs", "oauth_agent_")
}

// TestASCallsCounted: every call the agent makes to the Authorization
// Server is counted by its endpoint: discovery and the JWKS as well as PAR,
// token, userinfo and revocation; a 5xx counts as an error; no call goes
// uncounted or unnamed.
func TestASCallsCounted(t *testing.T) {
	a := startAgent(t, func(c *Config) {
		c.PAR = "always"
		c.Logout.RevokeRefreshToken = true
	})
	b := a.spa()
	a.login(b) // discovery, jwks (the ID token), par, token
	if r := a.call(b, "GET", "/oauth-agent/userInfo", nil); r.Status != 200 {
		t.Fatalf("userInfo: %d %s", r.Status, r.Body)
	}
	a.as.Set(func(f *astest.Faults) { f.UserinfoStatus = 503 })
	if r := a.call(b, "GET", "/oauth-agent/userInfo", nil); r.Status != 502 {
		t.Fatalf("userInfo against a failing AS: %d %s", r.Status, r.Body)
	}
	if r := a.call(b, "POST", "/oauth-agent/logout", nil); r.Status != 200 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	for series, want := range map[string]string{
		`oauth_agent_as_request_duration_seconds_count{endpoint="discovery"}`:  "1",
		`oauth_agent_as_request_duration_seconds_count{endpoint="jwks"}`:       "1",
		`oauth_agent_as_request_duration_seconds_count{endpoint="par"}`:        "1",
		`oauth_agent_as_request_duration_seconds_count{endpoint="token"}`:      "1",
		`oauth_agent_as_request_duration_seconds_count{endpoint="userinfo"}`:   "2",
		`oauth_agent_as_request_duration_seconds_count{endpoint="revocation"}`: "1",
		`oauth_agent_as_errors_total{endpoint="userinfo"}`:                     "1",
	} {
		if got := a.metric(series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
	if got := a.metric(`oauth_agent_as_request_duration_seconds_count{endpoint="other"}`); got != "" {
		t.Errorf("%s calls to no named endpoint", got)
	}
}
