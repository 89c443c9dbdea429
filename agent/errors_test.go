package agent

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/agent/astest"
	"github.com/tokenhandler/tokenhandler/internal/spatest"
)

// TestLoginEndErrors: every way an authorization response or its ID token
// can be wrong ends in the right error, and no token cookie is written.
func TestLoginEndErrors(t *testing.T) {
	tests := []struct {
		name   string
		faults func(*astest.Faults)
		tamper func(redirect string) string
		status int
		code   string
	}{
		{name: "state mismatch", tamper: func(r string) string { return strings.Replace(r, "state=", "state=x", 1) }, status: 400, code: "invalid_request"},
		{name: "iss missing", faults: func(f *astest.Faults) { f.RedirectIss = "missing" }, status: 400, code: "invalid_request"},
		{name: "iss wrong", faults: func(f *astest.Faults) { f.RedirectIss = "wrong" }, status: 400, code: "invalid_request"},
		{name: "ID token: wrong issuer", faults: func(f *astest.Faults) { f.IDTokenWrongIssuer = true }, status: 400, code: "invalid_request"},
		{name: "ID token: bad signature", faults: func(f *astest.Faults) { f.IDTokenBadSignature = true }, status: 400, code: "invalid_request"},
		{name: "ID token: alg none", faults: func(f *astest.Faults) { f.IDTokenAlgNone = true }, status: 400, code: "invalid_request"},
		{name: "ID token: expired", faults: func(f *astest.Faults) { f.IDTokenExpired = true }, status: 400, code: "invalid_request"},
		{name: "ID token: wrong nonce", faults: func(f *astest.Faults) { f.IDTokenWrongNonce = true }, status: 400, code: "invalid_request"},
		{name: "ID token: wrong audience", faults: func(f *astest.Faults) { f.IDTokenWrongAudience = true }, status: 400, code: "invalid_request"},
		{name: "ID token: wrong azp", faults: func(f *astest.Faults) { f.IDTokenWrongAzp = true }, status: 400, code: "invalid_request"},
		{name: "ID token: issued in the future", faults: func(f *astest.Faults) { f.IDTokenIssuedInFuture = true }, status: 400, code: "invalid_request"},
		{name: "token endpoint: invalid_grant", faults: func(f *astest.Faults) { f.TokenError = "invalid_grant" }, status: 400, code: "authorization_error"},
		{name: "token endpoint: invalid_client", faults: func(f *astest.Faults) { f.TokenError = "invalid_client" }, status: 400, code: "authorization_error"},
		{name: "token endpoint: invalid_scope", faults: func(f *astest.Faults) { f.TokenError = "invalid_scope" }, status: 400, code: "authorization_error"},
		{name: "token endpoint: 500", faults: func(f *astest.Faults) { f.TokenStatus = 500 }, status: 502, code: "authorization_server_error"},
		{name: "token endpoint: garbage", faults: func(f *astest.Faults) { f.TokenGarbage = true }, status: 502, code: "authorization_server_error"},
		{name: "token endpoint: too slow", faults: func(f *astest.Faults) { f.TokenDelay = 5 * time.Second }, status: 502, code: "authorization_server_error"},
		{name: "authorization error: login_required", faults: func(f *astest.Faults) { f.AuthorizeError = "login_required" }, status: 401, code: "login_required"},
		{name: "authorization error: access_denied", faults: func(f *astest.Faults) { f.AuthorizeError = "access_denied" }, status: 400, code: "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startAgent(t, func(c *Config) { c.Timeouts.AS = time.Second })
			b := a.spa()
			start := a.call(b, "POST", "/oauth-agent/login/start", nil)
			if tt.faults != nil {
				a.as.Set(tt.faults)
			}
			redirect, err := a.as.Authorize(start.JSON()["authorizationRequestUrl"].(string))
			if err != nil {
				t.Fatal(err)
			}
			page := redirect.String()
			if tt.tamper != nil {
				page = tt.tamper(page)
			}
			r := a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": page})
			if r.Status != tt.status || r.Code() != tt.code {
				t.Fatalf("login/end: %d %s, want %d %s", r.Status, r.Body, tt.status, tt.code)
			}
			if b.Cookie("example-at") != nil || b.Cookie("example-auth") != nil {
				t.Fatal("a failed login wrote token cookies")
			}
			checkNoStore(t, r)
		})
	}
}

// TestRequestChecks: Origin, Sec-Fetch-Site, CSRF and missing cookies.
func TestRequestChecks(t *testing.T) {
	a := startAgent(t, nil)
	logged := a.spa()
	a.login(logged)

	type call struct {
		method, path string
		origin       string
		csrf         string // "" = none, "good" = the right one
		cookies      bool
		extra        []string
		status       int
		code         string
	}
	tests := []struct {
		name string
		call
	}{
		{"login/start without Origin", call{"POST", "/oauth-agent/login/start", "", "", false, nil, 401, "unauthorized_request"}},
		{"login/start from an untrusted Origin", call{"POST", "/oauth-agent/login/start", "https://evil.example", "", false, nil, 401, "unauthorized_request"}},
		{"login/start cross-site", call{"POST", "/oauth-agent/login/start", spaOrigin, "", false, []string{"Sec-Fetch-Site", "cross-site"}, 401, "unauthorized_request"}},
		{"login/end without Origin", call{"POST", "/oauth-agent/login/end", "", "", true, nil, 401, "unauthorized_request"}},
		{"userInfo without cookie", call{"GET", "/oauth-agent/userInfo", spaOrigin, "", false, nil, 401, "unauthorized_request"}},
		{"userInfo without Origin (CORS on)", call{"GET", "/oauth-agent/userInfo", "", "", true, nil, 401, "unauthorized_request"}},
		{"claims without cookie", call{"GET", "/oauth-agent/claims", spaOrigin, "", false, nil, 401, "unauthorized_request"}},
		{"refresh without CSRF header", call{"POST", "/oauth-agent/refresh", spaOrigin, "", true, nil, 401, "unauthorized_request"}},
		{"refresh with a wrong CSRF header", call{"POST", "/oauth-agent/refresh", spaOrigin, "wrong", true, nil, 401, "unauthorized_request"}},
		{"refresh without cookies", call{"POST", "/oauth-agent/refresh", spaOrigin, "good", false, nil, 401, "unauthorized_request"}},
		{"logout without CSRF header", call{"POST", "/oauth-agent/logout", spaOrigin, "", true, nil, 401, "unauthorized_request"}},
		{"logout from an untrusted Origin", call{"POST", "/oauth-agent/logout", "https://evil.example", "good", true, nil, 401, "unauthorized_request"}},
		{"unknown endpoint", call{"GET", "/oauth-agent/nothing", spaOrigin, "", true, nil, 404, "not_found"}},
		{"wrong method", call{"GET", "/oauth-agent/logout", spaOrigin, "", true, nil, 405, "method_not_allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := a.spa()
			b.Origin = tt.origin
			if tt.cookies {
				for k, v := range logged.Cookies {
					b.Cookies[k] = v
				}
			}
			switch tt.csrf {
			case "good":
				b.CSRF = logged.CSRF
			case "":
			default:
				b.CSRF = tt.csrf
			}
			r := a.call(b, tt.method, tt.path, nil, tt.extra...)
			if r.Status != tt.status || r.Code() != tt.code {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tt.status, tt.code)
			}
			acao := r.Header.Get("Access-Control-Allow-Origin")
			if (tt.origin == spaOrigin) != (acao == spaOrigin) || strings.Contains(acao, "*") {
				t.Errorf("Access-Control-Allow-Origin %q for Origin %q", acao, tt.origin)
			}
		})
	}
}

func TestPreflight(t *testing.T) {
	a := startAgent(t, nil)
	b := a.spa()
	r := a.call(b, "OPTIONS", "/oauth-agent/refresh", nil, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "x-example-csrf, content-type")
	if r.Status != 204 || r.Header.Get("Access-Control-Allow-Origin") != spaOrigin || r.Header.Get("Access-Control-Allow-Credentials") != "true" ||
		r.Header.Get("Access-Control-Allow-Headers") != "x-example-csrf, content-type" || !strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("trusted preflight: %d %v", r.Status, r.Header)
	}
	b.Origin = "https://evil.example"
	r = a.call(b, "OPTIONS", "/oauth-agent/refresh", nil, "Access-Control-Request-Method", "POST")
	if r.Status != 204 || r.Header.Get("Access-Control-Allow-Origin") != "" || r.Header.Get("Access-Control-Allow-Methods") != "" {
		t.Fatalf("untrusted preflight: %d %v", r.Status, r.Header)
	}
}

func TestUserInfoExpired(t *testing.T) {
	a := startAgent(t, nil)
	b := a.spa()
	a.login(b)
	a.as.Set(func(f *astest.Faults) { f.UserinfoStatus = 401 })
	if r := a.call(b, "GET", "/oauth-agent/userInfo", nil); r.Status != 401 || r.Code() != "token_expired" {
		t.Fatalf("userInfo with an expired token: %d %s", r.Status, r.Body)
	}
	a.as.Set(func(f *astest.Faults) { f.UserinfoStatus = 503 })
	if r := a.call(b, "GET", "/oauth-agent/userInfo", nil); r.Status != 502 || r.Code() != "authorization_server_error" {
		t.Fatalf("userInfo with the AS down: %d %s", r.Status, r.Body)
	}
}

// refreshTabs refreshes with n clones of b at once, the tabs taking the
// agents in turn, and checks that one refresh grant reached the AS (the
// agents share it) and that every tab got 204 and the same access token,
// which it returns.
func refreshTabs(t *testing.T, b *spatest.Browser, n int, agents ...*testAgent) string {
	t.Helper()
	var wg sync.WaitGroup
	results := make([]spatest.Answer, n)
	tabs := make([]*spatest.Browser, n)
	for i := range n {
		tabs[i] = b.Clone()
		wg.Go(func() { results[i] = agents[i%len(agents)].call(tabs[i], "POST", "/oauth-agent/refresh", nil) })
	}
	wg.Wait()
	if got := agents[0].as.Count("token:refresh_token"); got != 1 {
		t.Fatalf("%d refresh grants reached the AS, want 1", got)
	}
	want := agents[0].open(tabs[0], "example-at")
	for i, r := range results {
		if r.Status != 204 {
			t.Fatalf("tab %d: %d %s", i, r.Status, r.Body)
		}
		if got := agents[0].open(tabs[i], "example-at"); got != want {
			t.Fatalf("tab %d got another access token", i)
		}
	}
	return want
}

// TestRefreshSingleFlight: 20 tabs refresh with the same cookies at once →
// one grant reaches the AS and all get the same new tokens; a replay of the
// old refresh token within the grace period gets them too; after it, the
// rotating AS's reuse detection ends the session.
func TestRefreshSingleFlight(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.Refresh.GracePeriod = 2 * time.Second })
	b := a.spa()
	a.login(b)
	origAuth := *b.Cookie("example-auth")
	a.as.Set(func(f *astest.Faults) { f.TokenDelay = 200 * time.Millisecond })
	want := refreshTabs(t, b, 20, a)
	a.as.Set(func(f *astest.Faults) { f.TokenDelay = 0 })

	// A late tab replays the old refresh token within the grace period.
	late := a.call(b, "POST", "/oauth-agent/refresh", nil)
	if late.Status != 204 || a.open(b, "example-at") != want || a.as.Count("token:refresh_token") != 1 {
		t.Fatalf("replay within grace: %d %s, grants %d", late.Status, late.Body, a.as.Count("token:refresh_token"))
	}

	// After the grace period the replay reaches the AS, which sees a reused
	// refresh token: session over, every cookie cleared.
	stale := b.Clone()
	stale.Cookies["example-auth|/oauth-agent/refresh"] = &origAuth
	a.clock.advance(3 * time.Second)
	r := a.call(stale, "POST", "/oauth-agent/refresh", nil)
	if r.Status != 401 || r.Code() != "session_expired" {
		t.Fatalf("replay after grace: %d %s", r.Status, r.Body)
	}
	if len(stale.Cookies) != 0 {
		t.Errorf("%d cookies left after session_expired", len(stale.Cookies))
	}
}
