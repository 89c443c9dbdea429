package agent

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/agent/astest"
	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/internal/spatest"
	"github.com/tokenhandler/tokenhandler/session"
)

// Issue #12's agent behaviour: the CSRF rule by method, userinfo_method,
// logout's clearing cookies, OAuth-only sessions, login/end error
// responses and the extraParams allow-list.

// TestSessionForCSRF: a session endpoint needs the CSRF header on every
// method but GET, HEAD and OPTIONS (browser.NeedsCSRF), whatever method the
// router lets through: sessionFor is called on a request of each method
// with a whole session but no CSRF header.
func TestSessionForCSRF(t *testing.T) {
	a := startAgent(t, nil)
	b := a.spa()
	a.login(b)
	st := a.agent.table.Load().apps[0]
	for _, tt := range []struct {
		method string
		csrf   string
		ok     bool
	}{
		{"GET", "", true}, {"HEAD", "", true}, {"OPTIONS", "", true},
		{"POST", "", false}, {"PUT", "", false}, {"PATCH", "", false}, {"DELETE", "", false},
		{"PROPFIND", "", false}, {"QUERY", "", false}, {"post", "", false}, {"get", "", false},
		{"POST", "wrong", false}, {"POST", b.CSRF, true}, {"PROPFIND", b.CSRF, true},
	} {
		t.Run(tt.method+"/"+map[bool]string{true: "ok", false: "refused"}[tt.ok], func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetMethod(tt.method)
			ctx.Request.SetRequestURI("/oauth-agent/userInfo")
			for _, c := range b.InScope("/oauth-agent/userInfo") {
				ctx.Request.Header.SetCookie(c.Name, c.Value)
			}
			if tt.csrf != "" {
				ctx.Request.Header.Set("x-example-csrf", tt.csrf)
			}
			req := &request{raw: browser.RawCookies(ctx.Request.Header.PeekAll(fasthttp.HeaderCookie))}
			st.jar.names.Scan(&req.found, &req.raw)
			_, err := a.agent.sessionFor(&ctx, st, req, &st.jar.names.AccessToken)
			if (err == nil) != tt.ok {
				t.Fatalf("sessionFor(%s, CSRF %q) = %v, want ok %v", tt.method, tt.csrf, err, tt.ok)
			}
			if err != nil && asError(err).code != "unauthorized_request" {
				t.Fatalf("code %s, want unauthorized_request", asError(err).code)
			}
		})
	}
}

// TestEndpointMethods: no endpoint answers 2xx to a method that needs CSRF
// without the header, other than login/start and login/end (which run
// before the SPA has a CSRF token and check Origin always).
func TestEndpointMethods(t *testing.T) {
	a := startAgent(t, nil)
	logged := a.spa()
	a.login(logged)
	for _, path := range []string{"/oauth-agent/userInfo", "/oauth-agent/claims", "/oauth-agent/refresh", "/oauth-agent/logout"} {
		for _, method := range []string{"POST", "PUT", "PATCH", "DELETE", "PROPFIND", "QUERY", "TRACE"} {
			b := logged.Clone()
			b.CSRF = ""
			r := a.call(b, method, path, nil)
			if r.Status < 400 {
				t.Errorf("%s %s without CSRF: %d %s", method, path, r.Status, r.Body)
			}
		}
	}
}

// TestUserinfoMethod: userinfo_method GET (the default) and POST, the token
// in the Authorization header either way, a POST with an empty form body.
func TestUserinfoMethod(t *testing.T) {
	for _, tt := range []struct {
		method, wantMethod, wantType string
	}{
		{"", "GET", ""},
		{"GET", "GET", ""},
		{"POST", "POST", "application/x-www-form-urlencoded"},
	} {
		t.Run(tt.wantMethod+"/"+tt.method, func(t *testing.T) {
			a := startAgent(t, func(c *Config) { c.UserinfoMethod = tt.method })
			b := a.spa()
			a.login(b)
			r := a.call(b, "GET", "/oauth-agent/userInfo", nil)
			if m := r.JSON(); r.Status != 200 || m["sub"] != "demo-user" {
				t.Fatalf("userInfo: %d %s", r.Status, r.Body)
			}
			if got := a.as.LastUserinfo(); got != (astest.UserinfoRequest{Method: tt.wantMethod, ContentType: tt.wantType}) {
				t.Fatalf("the AS saw %+v, want %s with Content-Type %q and no body", got, tt.wantMethod, tt.wantType)
			}
		})
	}
}

// setCookieNames lists the names r sets or clears, in order, and the names
// it clears.
func setCookieNames(r spatest.Answer) (all, cleared []string) {
	for _, c := range r.SetCookies {
		all = append(all, c.Name)
		if c.MaxAge < 0 {
			cleared = append(cleared, c.Name)
		}
	}
	return all, cleared
}

// TestLogoutClearing: logout clears in the order auth, at, id, csrf, and
// only what the request carries, but for P-auth when its Path
// (<base>/refresh) keeps it from logout.
func TestLogoutClearing(t *testing.T) {
	for _, tt := range []struct {
		name   string
		revoke bool
		drop   []string // cookies the browser does not send
		want   []string
	}{
		{"P-auth on /refresh", false, nil, []string{"example-auth", "example-at", "example-id", "example-csrf"}},
		{"P-auth on /refresh, no P-id", false, []string{"example-id"}, []string{"example-auth", "example-at", "example-csrf"}},
		{"P-auth on the base path", true, nil, []string{"example-auth", "example-at", "example-id", "example-csrf"}},
		{"P-auth on the base path, no P-auth", true, []string{"example-auth"}, []string{"example-at", "example-id", "example-csrf"}},
		{"no P-auth, no P-id", true, []string{"example-auth", "example-id"}, []string{"example-at", "example-csrf"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := startAgent(t, func(c *Config) { c.Logout.RevokeRefreshToken = tt.revoke })
			b := a.spa()
			a.login(b)
			for k, c := range b.Cookies {
				if slices.Contains(tt.drop, c.Name) {
					delete(b.Cookies, k)
				}
			}
			r := a.call(b, "POST", "/oauth-agent/logout", nil)
			if r.Status != 200 {
				t.Fatalf("logout: %d %s", r.Status, r.Body)
			}
			all, cleared := setCookieNames(r)
			if !slices.Equal(all, tt.want) || !slices.Equal(cleared, tt.want) {
				t.Fatalf("logout's Set-Cookie names %v (cleared %v), want %v", all, cleared, tt.want)
			}
		})
	}

	t.Run("chunked P-at", func(t *testing.T) {
		a := startAgent(t, nil)
		a.as.Set(func(f *astest.Faults) { f.AccessTokenPadding = 6000 })
		b := a.spa()
		a.login(b)
		if b.Cookie("example-at.1") == nil {
			t.Fatal("the access token is not chunked")
		}
		r := a.call(b, "POST", "/oauth-agent/logout", nil)
		all, _ := setCookieNames(r)
		if r.Status != 200 || slices.Contains(all, "example-at") || !slices.Contains(all, "example-at.1") ||
			slices.Index(all, "example-auth") != 0 || slices.Index(all, "example-at.0") > slices.Index(all, "example-id") {
			t.Fatalf("logout with a chunked P-at: %d, Set-Cookie names %v", r.Status, all)
		}
		for _, c := range b.Cookies {
			t.Errorf("cookie %s survived logout", c.Name)
		}
	})
}

// TestOAuthOnly: without openid in the scope, a token answer without an ID
// token starts an OAuth-only session: no P-id, /claims 404 no_id_token,
// refresh works (and keeps no ID token the AS may send), logout has no
// id_token_hint. With openid, a missing ID token stays an error.
func TestOAuthOnly(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.Scope = "api:read profile"; c.Logout.RevokeRefreshToken = true })
	b := a.spa()
	start := a.call(b, "POST", "/oauth-agent/login/start", nil)
	if q := spatest.Query(t, start.JSON()["authorizationRequestUrl"].(string)); q.Get("scope") != "api:read profile" || q.Has("nonce") {
		t.Fatalf("scope %q, nonce %v: want no nonce without openid", q.Get("scope"), q.Has("nonce"))
	}
	m := a.login(b)
	if m["handled"] != true || m["isLoggedIn"] != true || b.CSRF == "" {
		t.Fatalf("login/end: %v", m)
	}
	if b.Cookie("example-id") != nil || b.Cookie("example-at") == nil || b.Cookie("example-auth") == nil {
		t.Fatalf("cookies after an OAuth-only login: %v", b.Cookies)
	}
	_, env := a.openEnv(b, "example-at")
	if env.Sub != (session.Digest{}) || env.SID != (session.Digest{}) {
		t.Fatal("an OAuth-only session's envelope names someone")
	}
	if r := a.call(b, "GET", "/oauth-agent/claims", nil); r.Status != 404 || r.Code() != "no_id_token" {
		t.Fatalf("claims: %d %s", r.Status, r.Body)
	}
	if r := a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": spaOrigin + "/"}); r.JSON()["isLoggedIn"] != true {
		t.Fatalf("page load: %s", r.Body)
	}
	if r := a.call(b, "POST", "/oauth-agent/refresh", nil); r.Status != 204 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	// An AS that sends an ID token on refresh anyway: nothing to hold it
	// against, so it is not kept.
	a.as.Set(func(f *astest.Faults) { f.IDTokenWithoutOpenID = true })
	if r := a.call(b, "POST", "/oauth-agent/refresh", nil); r.Status != 204 || b.Cookie("example-id") != nil {
		t.Fatalf("refresh with an ID token: %d %s, P-id %v", r.Status, r.Body, b.Cookie("example-id"))
	}
	if r := a.call(b, "GET", "/oauth-agent/claims", nil); r.Status != 404 || r.Code() != "no_id_token" {
		t.Fatalf("claims after refresh: %d %s", r.Status, r.Body)
	}
	r := a.call(b, "POST", "/oauth-agent/logout", nil)
	u, _ := r.JSON()["url"].(string)
	if r.Status != 200 || !strings.HasPrefix(u, a.as.URL+"/logout?") || spatest.Query(t, u).Has("id_token_hint") {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}

	t.Run("an OIDC session that lost P-id is not OAuth-only", func(t *testing.T) {
		a := startAgent(t, nil)
		b := a.spa()
		a.login(b)
		for k, c := range b.Cookies {
			if c.Name == "example-id" {
				delete(b.Cookies, k)
			}
		}
		if r := a.call(b, "GET", "/oauth-agent/claims", nil); r.Status != 401 || r.Code() != "unauthorized_request" {
			t.Fatalf("claims: %d %s", r.Status, r.Body)
		}
	})
	t.Run("an ID token is checked when it comes", func(t *testing.T) {
		a := startAgent(t, func(c *Config) { c.Scope = "api:read" })
		a.as.Set(func(f *astest.Faults) { f.IDTokenWithoutOpenID = true; f.IDTokenWrongAudience = true })
		b := a.spa()
		start := a.call(b, "POST", "/oauth-agent/login/start", nil)
		redirect, _ := a.as.Authorize(start.JSON()["authorizationRequestUrl"].(string))
		if r := a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()}); r.Status != 400 || r.Code() != "invalid_request" {
			t.Fatalf("login/end with a bad ID token: %d %s", r.Status, r.Body)
		}
		// A good one makes an OpenID Connect session.
		a.as.Set(func(f *astest.Faults) { f.IDTokenWrongAudience = false })
		a.login(b)
		if r := a.call(b, "GET", "/oauth-agent/claims", nil); r.Status != 200 || r.JSON()["sub"] != "demo-user" {
			t.Fatalf("claims: %d %s", r.Status, r.Body)
		}
	})
	t.Run("openid without an ID token", func(t *testing.T) {
		a := startAgent(t, nil)
		a.as.Set(func(f *astest.Faults) { f.IDTokenOmitted = true })
		b := a.spa()
		start := a.call(b, "POST", "/oauth-agent/login/start", nil)
		redirect, _ := a.as.Authorize(start.JSON()["authorizationRequestUrl"].(string))
		r := a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()})
		if r.Status != 400 || r.Code() != "invalid_request" || b.Cookie("example-at") != nil {
			t.Fatalf("login/end without an ID token: %d %s", r.Status, r.Body)
		}
	})
}

// TestLoginEndErrorResponse: an error response is checked against the
// login in progress first; one that is not its own is 400 invalid_request
// and leaves the login alone; only a registered code reaches the SPA or
// the log, never the description or an unregistered code.
func TestLoginEndErrorResponse(t *testing.T) {
	const evil = "EVIL-TEXT-<script>"
	tests := []struct {
		name       string
		login      bool   // a login is in progress
		state      string // "good", "" (none) or a value
		err        string
		status     int
		code       string
		loginStays bool
	}{
		{"no login in progress", false, "anything", "access_denied", 400, "invalid_request", false},
		{"wrong state", true, "wrong", "access_denied", 400, "invalid_request", true},
		{"no state", true, "", "login_required", 400, "invalid_request", true},
		{"state twice", true, "twice", "access_denied", 400, "invalid_request", true},
		{"registered code", true, "good", "access_denied", 400, "access_denied", false},
		{"login_required", true, "good", "login_required", 401, "login_required", false},
		{"OpenID Connect code", true, "good", "consent_required", 400, "consent_required", false},
		{"unregistered code", true, "good", evil, 400, "authorization_error", false},
		{"a token-endpoint code", true, "good", "invalid_grant", 400, "authorization_error", false},
		{"empty code", true, "good", "", 400, "authorization_error", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startAgent(t, func(c *Config) { c.Log.Level = zerolog.DebugLevel })
			b := a.spa()
			var authURL string
			if tt.login {
				authURL = a.call(b, "POST", "/oauth-agent/login/start", nil).JSON()["authorizationRequestUrl"].(string)
			}
			q := url.Values{"error": {tt.err}, "error_description": {evil + " description"}, "error_uri": {"https://evil.example/" + evil}, "iss": {a.as.URL}}
			switch tt.state {
			case "good":
				q.Set("state", spatest.Query(t, authURL).Get("state"))
			case "twice":
				q["state"] = []string{spatest.Query(t, authURL).Get("state"), "other"}
			case "":
			default:
				q.Set("state", tt.state)
			}
			r := a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": spaOrigin + "/?" + q.Encode()})
			if r.Status != tt.status || r.Code() != tt.code {
				t.Fatalf("login/end: %d %s, want %d %s", r.Status, r.Body, tt.status, tt.code)
			}
			if strings.Contains(string(r.Body), "EVIL") || strings.Contains(a.logs.String(), "EVIL") {
				t.Fatalf("the attacker's text reached the answer or the log:\n%s\n%s", r.Body, a.logs.String())
			}
			_, cleared := setCookieNames(r)
			if tt.login && tt.loginStays == slices.Contains(cleared, "example-login") {
				t.Fatalf("login cookie cleared: %v, want it to stay: %v", cleared, tt.loginStays)
			}
			if !tt.loginStays || !tt.login {
				return
			}
			// The login in progress still finishes.
			redirect, err := a.as.Authorize(authURL)
			if err != nil {
				t.Fatal(err)
			}
			if r := a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()}); r.Status != 200 || r.JSON()["isLoggedIn"] != true {
				t.Fatalf("the login after the forged error: %d %s", r.Status, r.Body)
			}
		})
	}

	t.Run("iss of another issuer", func(t *testing.T) {
		a := startAgent(t, nil)
		b := a.spa()
		authURL := a.call(b, "POST", "/oauth-agent/login/start", nil).JSON()["authorizationRequestUrl"].(string)
		q := url.Values{"error": {"access_denied"}, "state": {spatest.Query(t, authURL).Get("state")}, "iss": {"https://evil.example"}}
		r := a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": spaOrigin + "/?" + q.Encode()})
		if _, cleared := setCookieNames(r); r.Status != 400 || r.Code() != "invalid_request" || slices.Contains(cleared, "example-login") {
			t.Fatalf("login/end: %d %s, cleared %v", r.Status, r.Body, cleared)
		}
	})
}

// TestExtraParams: the extraParams allow-list, and the parameters the agent
// sets, which no list lets the SPA set.
func TestExtraParams(t *testing.T) {
	const secretValue = "VALUE-NOT-LOGGED"
	tests := []struct {
		name    string
		allowed []string // nil: the default
		params  [][2]string
		ok      bool
		logged  string // the log names this parameter
	}{
		{"default list", nil, [][2]string{{"prompt", "login"}, {"login_hint", secretValue}, {"ui_locales", "fr"}, {"acr_values", "x"}, {"max_age", "0"}, {"display", "popup"}}, true, ""},
		{"not on the default list", nil, [][2]string{{"claims", secretValue}}, false, "claims"},
		{"resource not listed", nil, [][2]string{{"prompt", "login"}, {"resource", secretValue}}, false, "resource"},
		{"scope", nil, [][2]string{{"scope", "openid admin"}}, false, "scope"},
		{"state", nil, [][2]string{{"state", secretValue}}, false, "state"},
		{"listed reserved scope", []string{"scope", "prompt"}, [][2]string{{"scope", "openid admin"}}, false, "scope"},
		{"listed reserved redirect_uri", []string{"redirect_uri"}, [][2]string{{"redirect_uri", "https://evil.example/"}}, false, "redirect_uri"},
		{"listed reserved code_challenge", []string{"code_challenge"}, [][2]string{{"code_challenge", secretValue}}, false, "code_challenge"},
		{"listed reserved client_secret", []string{"client_secret"}, [][2]string{{"client_secret", secretValue}}, false, "client_secret"},
		{"custom list", []string{"resource"}, [][2]string{{"resource", "https://api.example.com"}}, true, ""},
		{"custom list drops the defaults", []string{"resource"}, [][2]string{{"prompt", "login"}}, false, "prompt"},
		{"empty list", []string{}, [][2]string{{"prompt", "login"}}, false, "prompt"},
		{"twice", nil, [][2]string{{"prompt", "login"}, {"prompt", "none"}}, false, "prompt"},
		{"no name", nil, [][2]string{{"", secretValue}}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startAgent(t, func(c *Config) { c.ExtraParamsAllowed = tt.allowed; c.Log.Level = zerolog.InfoLevel })
			b := a.spa()
			var extra []map[string]string
			for _, kv := range tt.params {
				extra = append(extra, map[string]string{"key": kv[0], "value": kv[1]})
			}
			r := a.call(b, "POST", "/oauth-agent/login/start", map[string]any{"extraParams": extra})
			if !tt.ok {
				if r.Status != 400 || r.Code() != "invalid_request" || b.Cookie("example-login") != nil {
					t.Fatalf("login/start: %d %s, want 400 invalid_request and no login", r.Status, r.Body)
				}
				logs := a.logs.String()
				if strings.Contains(logs, secretValue) || strings.Contains(string(r.Body), secretValue) {
					t.Fatalf("a parameter's value reached the log or the answer:\n%s", logs)
				}
				if tt.logged != "" && !strings.Contains(logs, `\"`+tt.logged+`\"`) {
					t.Fatalf("the log does not name %q:\n%s", tt.logged, logs)
				}
				return
			}
			if r.Status != 200 {
				t.Fatalf("login/start: %d %s", r.Status, r.Body)
			}
			q := spatest.Query(t, r.JSON()["authorizationRequestUrl"].(string))
			for _, kv := range tt.params {
				if q.Get(kv[0]) != kv[1] {
					t.Errorf("%s = %q, want %q", kv[0], q.Get(kv[0]), kv[1])
				}
			}
			if q.Get("scope") != "openid profile" || q.Get("redirect_uri") != a.as.RedirectURI {
				t.Errorf("scope %q, redirect_uri %q", q.Get("scope"), q.Get("redirect_uri"))
			}
		})
	}
}

// TestPathMatch: RFC 6265 §5.1.4's path-match, which decides whether
// logout could have seen a cookie.
func TestPathMatch(t *testing.T) {
	for _, tt := range []struct {
		req, cookie string
		want        bool
	}{
		{"/oauth-agent/logout", "/", true},
		{"/oauth-agent/logout", "/oauth-agent", true},
		{"/oauth-agent", "/oauth-agent", true},
		{"/oauth-agent/logout", "/oauth-agent/refresh", false},
		{"/oauth-agentX/logout", "/oauth-agent", false},
		{"/oauth-agent/refresh", "/oauth-agent/refresh", true},
		{"/app/x", "/app/", true},
		{"/", "/oauth-agent", false},
	} {
		if got := pathMatch([]byte(tt.req), tt.cookie); got != tt.want {
			t.Errorf("pathMatch(%q, %q) = %v, want %v", tt.req, tt.cookie, got, tt.want)
		}
	}
}
