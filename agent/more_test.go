package agent

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/agent/astest"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/spatest"
)

// TestPAR: pushed authorization requests (RFC 9126) when the AS requires
// them (par: auto), always when configured, never otherwise.
func TestPAR(t *testing.T) {
	for _, tc := range []struct {
		name       string
		par        string
		requirePAR bool
		wantPAR    bool
	}{
		{"auto, AS requires PAR", "auto", true, true},
		{"auto, AS does not", "auto", false, false},
		{"always", "always", false, true},
		{"never", "never", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := astest.New(t, astest.Options{})
			as.Set(func(f *astest.Faults) { f.RequirePAR = tc.requirePAR })
			a := startAgentWith(t, as, func(c *Config) { c.PAR = tc.par })
			b := a.spa()
			start := a.call(b, "POST", "/oauth-agent/login/start", nil)
			authURL := start.JSON()["authorizationRequestUrl"].(string)
			q := spatest.Query(t, authURL)
			if got := as.Count("par") == 1; got != tc.wantPAR {
				t.Fatalf("PAR requests: %d, want PAR %v", as.Count("par"), tc.wantPAR)
			}
			if tc.wantPAR && (q.Get("request_uri") == "" || q.Get("code_challenge") != "" || q.Get("client_id") != as.ClientID) {
				t.Errorf("authorization URL with PAR: %v", q)
			}
			redirect, err := as.Authorize(authURL)
			if err != nil {
				t.Fatal(err)
			}
			if r := a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()}); r.Status != 200 || r.JSON()["isLoggedIn"] != true {
				t.Fatalf("login/end: %d %s", r.Status, r.Body)
			}
		})
	}
	t.Run("never, AS requires PAR", func(t *testing.T) {
		as := astest.New(t, astest.Options{})
		as.Set(func(f *astest.Faults) { f.RequirePAR = true })
		a := startAgentWith(t, as, func(c *Config) { c.PAR = "never" })
		b := a.spa()
		start := a.call(b, "POST", "/oauth-agent/login/start", nil)
		redirect, err := as.Authorize(start.JSON()["authorizationRequestUrl"].(string))
		if err != nil {
			t.Fatal(err)
		}
		r := a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()})
		if r.Status != 400 || r.Code() != "invalid_request" {
			t.Fatalf("login/end: %d %s", r.Status, r.Body)
		}
	})
}

// TestLogoutRevokes: with logout.revoke_refresh_token the refresh cookie
// lives on the agent's base path, and logout revokes it (RFC 7009).
func TestLogoutRevokes(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.Logout.RevokeRefreshToken = true; c.ClientAuthMethod = "client_secret_post" })
	b := a.spa()
	a.login(b)
	if c := b.Cookie("example-auth"); c == nil || c.Path != "/oauth-agent" {
		t.Fatalf("refresh cookie %+v, want Path /oauth-agent", c)
	}
	if a.as.LastClientAuth() != "client_secret_post" {
		t.Errorf("client authentication %q, want client_secret_post", a.as.LastClientAuth())
	}
	rt := a.open(b, "example-auth")
	if r := a.call(b, "POST", "/oauth-agent/logout", nil); r.Status != 200 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	if !a.as.Revoked(rt) {
		t.Fatal("the refresh token was not revoked")
	}
	if len(b.Cookies) != 0 {
		t.Errorf("cookies left: %v", b.Cookies)
	}
}

// TestLoginEndBodies: an absent body is a page load; a body that is not
// JSON is a server_error (contract §5 error table).
func TestLoginEndBodies(t *testing.T) {
	a := startAgent(t, nil)
	b := a.spa()
	if r := a.call(b, "POST", "/oauth-agent/login/end", nil); r.Status != 200 || r.JSON()["handled"] != false {
		t.Fatalf("no body: %d %s", r.Status, r.Body)
	}
	if r := a.call(b, "POST", "/oauth-agent/login/end", "{not json"); r.Status != 500 || r.Code() != "server_error" {
		t.Fatalf("malformed JSON: %d %s", r.Status, r.Body)
	}
	// login/start ignores a body that is not JSON, as the reference's SPA
	// sends some without one.
	if r := a.call(b, "POST", "/oauth-agent/login/start", "not json"); r.Status != 200 {
		t.Fatalf("login/start with a non-JSON body: %d %s", r.Status, r.Body)
	}
	if r := a.call(b, "POST", "/oauth-agent/login/start", map[string]any{"extraParams": []map[string]string{{"key": "state", "value": "x"}}}); r.Status != 400 || r.Code() != "invalid_request" {
		t.Fatalf("extraParams overriding state: %d %s", r.Status, r.Body)
	}
}

// TestStartsWithoutAS: an agent whose AS is down at start still starts, is
// not ready, answers 502, and becomes ready once the AS answers.
func TestStartsWithoutAS(t *testing.T) {
	as := astest.New(t, astest.Options{})
	as.Set(func(f *astest.Faults) { f.DiscoveryStatus = 503 })
	cfg := testConfig(as)
	a, err := New(cfg, metrics.NewSet(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &fasthttp.Server{Handler: a.Handler}
	go srv.Serve(ln)
	defer srv.Shutdown()
	// The agent retries while the AS fails: wait for a second attempt.
	if !bintest.Within(5*time.Second, func() bool { return as.Count("discovery") >= 2 }) {
		t.Fatalf("%d discovery attempts in 5 s, want retries", as.Count("discovery"))
	}
	if a.Ready() {
		t.Fatal("ready although discovery fails")
	}
	ta := &testAgent{t: t, as: as, agent: a, cfg: cfg, url: "http://" + ln.Addr().String()}
	b := ta.spa()
	if r := ta.call(b, "POST", "/oauth-agent/login/start", nil); r.Status != 502 || r.Code() != "authorization_server_error" {
		t.Fatalf("login/start before discovery: %d %s", r.Status, r.Body)
	}
	as.Set(func(f *astest.Faults) { f.DiscoveryStatus = 0 })
	if !bintest.Within(5*time.Second, a.Ready) {
		t.Fatal("never became ready within 5 s after the AS came back")
	}
	if r := ta.call(b, "POST", "/oauth-agent/login/start", nil); r.Status != 200 {
		t.Fatalf("login/start after discovery: %d %s", r.Status, r.Body)
	}
}

// TestLocalhostDialsLoopback: names under .localhost reach 127.0.0.1
// (RFC 6761 §6.3) through the back-channel client.
func TestLocalhostDialsLoopback(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.Host) })}
	go srv.Serve(ln)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	c := newHTTPClient(2*time.Second, newAgentMetrics(metrics.NewSet(), ""))
	for _, host := range []string{"login.example.localhost", "localhost", "LOGIN.Example.Localhost."} {
		resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/")
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		resp.Body.Close()
	}
	if isLocalhost("localhost.example.com") || isLocalhost("example.com") {
		t.Error("a public name counts as localhost")
	}
}

// TestLogsHoldNoSecrets logs at debug through a login, refresh, failures
// and logout, and looks for tokens, codes, verifiers and cookie values.
func TestLogsHoldNoSecrets(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.Log.Level = zerolog.DebugLevel })
	b := a.spa()
	start := a.call(b, "POST", "/oauth-agent/login/start", nil)
	authURL := start.JSON()["authorizationRequestUrl"].(string)
	redirect, _ := a.as.Authorize(authURL)
	a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()})
	b.CSRF = a.open(b, "example-csrf")
	secrets := []string{redirect.Query().Get("code"), a.open(b, "example-at"), a.open(b, "example-auth"), a.open(b, "example-id"), b.CSRF, a.cfg.ClientSecret}
	for _, c := range b.Cookies {
		secrets = append(secrets, c.Value)
	}
	a.call(b, "POST", "/oauth-agent/refresh", nil)
	a.as.Set(func(f *astest.Faults) { f.TokenError = "invalid_grant" })
	a.call(b.Clone(), "POST", "/oauth-agent/refresh", nil)
	a.call(b, "POST", "/oauth-agent/logout", nil)
	logs := a.logs.String()
	if !strings.Contains(logs, `"endpoint":"refresh"`) {
		t.Fatalf("no request lines logged:\n%s", logs)
	}
	for _, s := range secrets {
		if len(s) >= 8 && strings.Contains(logs, s[:8]) {
			t.Errorf("the logs contain a secret (%.8s…)", s)
		}
	}
}

// TestBadPageURLLogsNoInput: a pageUrl that does not parse is 400
// invalid_request, and the log says so without quoting it (url's error
// would: it may hold a code or an attacker's text).
func TestBadPageURLLogsNoInput(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.Log.Level = zerolog.DebugLevel })
	b := a.spa()
	a.call(b, "POST", "/oauth-agent/login/start", nil)
	r := a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": "http://www.example.localhost:3000/%zz?code=SecretCode4711&error_description=attacker-text"})
	if r.Status != 400 || r.JSON()["code"] != "invalid_request" {
		t.Fatalf("login/end: %d %s", r.Status, r.Body)
	}
	logs := a.logs.String()
	if !strings.Contains(logs, "pageUrl does not parse") {
		t.Errorf("no log line for the refused pageUrl:\n%s", logs)
	}
	for _, s := range []string{"SecretCode4711", "attacker-text", "%zz"} {
		if strings.Contains(logs, s) {
			t.Errorf("the logs quote the pageUrl (%s):\n%s", s, logs)
		}
	}
}

// TestEndpointOverride: an explicit *_endpoint replaces what discovery says.
func TestEndpointOverride(t *testing.T) {
	var calls atomic.Int32
	other := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"sub":"from-the-override"}`)
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go other.Serve(ln)
	defer other.Close()
	a := startAgent(t, func(c *Config) { c.Endpoints.Userinfo = "http://" + ln.Addr().String() + "/userinfo" })
	b := a.spa()
	a.login(b)
	r := a.call(b, "GET", "/oauth-agent/userInfo", nil)
	if r.Status != 200 || r.JSON()["sub"] != "from-the-override" || calls.Load() != 1 || a.as.Count("userinfo") != 0 {
		t.Fatalf("userInfo: %d %s; override calls %d, AS calls %d", r.Status, r.Body, calls.Load(), a.as.Count("userinfo"))
	}
}

// TestCookieDomain: with cookie.domain, cookies are set and cleared with
// that Domain (a browser keeps a cookie cleared without it).
func TestCookieDomain(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.Cookie.Domain = "example.localhost" })
	b := a.spa()
	start := a.call(b, "POST", "/oauth-agent/login/start", nil)
	redirect, _ := a.as.Authorize(start.JSON()["authorizationRequestUrl"].(string))
	end := a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()})
	b.CSRF, _ = end.JSON()["csrf"].(string)
	out := a.call(b, "POST", "/oauth-agent/logout", nil)
	for _, r := range []spatest.Answer{end, out} {
		for _, line := range r.Header.Values("Set-Cookie") {
			if !strings.Contains(line, "; Domain=example.localhost") {
				t.Errorf("Set-Cookie without the Domain: %.60s…", line)
			}
		}
	}
	if len(out.Header.Values("Set-Cookie")) < 4 {
		t.Errorf("logout cleared %d cookies", len(out.Header.Values("Set-Cookie")))
	}
}

// TestNewTwiceOnOneSet: a second Agent built on the Set of a first shares
// its counters and takes over its gauges instead of panicking (review B3).
func TestNewTwiceOnOneSet(t *testing.T) {
	as := astest.New(t, astest.Options{})
	set := metrics.NewSet()
	for i := range 2 {
		a, err := New(testConfig(as), set, zerolog.Nop())
		if err != nil {
			t.Fatalf("New #%d: %v", i+1, err)
		}
		a.Close()
	}
}
