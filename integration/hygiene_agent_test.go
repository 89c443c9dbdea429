package integration

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/spatest"
	"github.com/tokenhandler/tokenhandler/session"
)

// TestHygieneAgent is issue #12's agent behaviour against the built
// oauth-agent behind real NGINX in both modes (and directly where NGINX
// changes nothing), with oidc-provider as the OpenID Provider:
//
//  1. CSRF by method: no method but GET, HEAD and OPTIONS reaches a session
//     endpoint without the CSRF header;
//  2. userinfo_method GET (default) and POST, as oidc-provider sees them,
//     and which POST shapes oidc-provider takes;
//  3. logout's clearing cookies in the order auth, at, id, csrf, only for
//     cookies the request carried;
//  4. an OAuth-only session (scope without openid);
//  5. login/end error responses: state first, the login in progress kept,
//     only registered codes answered;
//  6. the extraParams allow-list.
func TestHygieneAgent(t *testing.T) {
	fx := newFixture(t)
	// userinfoWith: after a login, userInfo reaches the provider's UserInfo
	// endpoint with method, never with other.
	userinfoWith := func(method, other string) func(t *testing.T, s *binStack, base string) {
		return func(t *testing.T, s *binStack, base string) {
			b := loginVia(t, s, base, "alice")
			mark := fx.op.Mark()
			if r := b.Call("GET", base+"/oauth-agent/userInfo", nil); r.Status != 200 || r.JSON()["sub"] != "alice" {
				t.Fatalf("userInfo: %d %s", r.Status, r.Body)
			}
			fx.op.WaitFor(t, mark, "userinfo "+method, 1)
			if n := fx.op.Count(mark, "userinfo "+other); n != 0 {
				t.Fatalf("%d %ss to the UserInfo endpoint", n, other)
			}
		}
	}

	stacks := map[string]*binStack{
		// The defaults: userinfo GET, logout revokes (P-auth on
		// /oauth-agent), the default extraParams list.
		"default": fx.stack(t, stackOptions{}),
		// userinfo POST, P-auth on /oauth-agent/refresh, resource allowed.
		"post": fx.stack(t, stackOptions{agentYAML: "userinfo_method: POST\n" +
			"logout: {revoke_refresh_token: false}\nextra_params_allowed: [prompt, resource]\n"}),
		// A plain OAuth 2.0 client.
		"oauth": fx.stack(t, stackOptions{agentYAML: "scope: api:read\n"}),
	}
	// via names the ways to the agent: NGINX in each mode, and the agent
	// itself.
	via := func(s *binStack) map[string]string {
		return map[string]string{"upstream": s.upstream, "auth_request": s.authReq, "direct": s.agentURL}
	}

	tests := []struct {
		name  string
		stack string
		run   func(t *testing.T, s *binStack, base string)
	}{
		// 1. CSRF by method.
		{"1 CSRF: no method but GET, HEAD and OPTIONS without the header", "default", func(t *testing.T, s *binStack, base string) {
			b := loginVia(t, s, base, "alice")
			for _, path := range []string{"/oauth-agent/userInfo", "/oauth-agent/claims", "/oauth-agent/refresh", "/oauth-agent/logout"} {
				for _, method := range []string{"POST", "PUT", "PATCH", "DELETE", "PROPFIND", "QUERY"} {
					tab := b.Clone()
					tab.CSRF = ""
					if r := tab.Call(method, base+path, nil); r.Status < 400 || len(r.SetCookies) != 0 {
						t.Errorf("%s %s without CSRF: %d %s, Set-Cookie %v", method, path, r.Status, r.Body, r.SetCookies)
					}
				}
			}
			// The session is untouched: the right header still refreshes.
			if r := b.Call("POST", base+"/oauth-agent/refresh", nil); r.Status != 204 {
				t.Fatalf("refresh with CSRF: %d %s", r.Status, r.Body)
			}
		}},

		// 2. userinfo_method.
		{"2 userInfo with GET (default)", "default", userinfoWith("GET", "POST")},
		{"2 userInfo with userinfo_method POST", "post", userinfoWith("POST", "GET")},

		// 3. Logout's clearing cookies.
		{"3 logout clears auth, at, id, csrf in order", "default", func(t *testing.T, s *binStack, base string) {
			b := loginVia(t, s, base, "alice")
			checkLogoutCookies(t, b, base, []string{"example-auth", "example-at", "example-id", "example-csrf"})
		}},
		{"3 logout without P-id clears no P-id", "default", func(t *testing.T, s *binStack, base string) {
			b := loginVia(t, s, base, "alice")
			dropCookie(b, "example-id")
			checkLogoutCookies(t, b, base, []string{"example-auth", "example-at", "example-csrf"})
		}},
		{"3 logout with P-auth on /refresh clears it unseen", "post", func(t *testing.T, s *binStack, base string) {
			b := loginVia(t, s, base, "alice")
			if c := b.Cookie("example-auth"); c == nil || c.Path != "/oauth-agent/refresh" {
				t.Fatalf("P-auth %+v", c)
			}
			dropCookie(b, "example-id")
			checkLogoutCookies(t, b, base, []string{"example-auth", "example-at", "example-csrf"})
		}},

		// 4. An OAuth-only session.
		{"4 OAuth-only session", "oauth", func(t *testing.T, s *binStack, base string) {
			mark := fx.op.Mark()
			b := loginVia(t, s, base, "alice")
			if b.Cookie("example-id") != nil || b.Cookie("example-auth") == nil {
				t.Fatalf("cookies of an OAuth-only login: %v", b.Cookies)
			}
			env := openEnvelope(t, s, b, "example-at")
			if env.Sub != (session.Digest{}) || env.SID != (session.Digest{}) {
				t.Fatal("the OAuth-only session's envelope names someone")
			}
			if r := b.Call("GET", base+"/oauth-agent/claims", nil); r.Status != 404 || r.Code() != "no_id_token" {
				t.Fatalf("claims: %d %s", r.Status, r.Body)
			}
			// oidc-provider refuses userinfo to a token without openid
			// (403 insufficient_scope): the agent says the AS refused.
			if r := b.Call("GET", base+"/oauth-agent/userInfo", nil); r.Status != 400 || r.Code() != "authorization_error" {
				t.Fatalf("userInfo: %d %s", r.Status, r.Body)
			}
			if r := b.Call("POST", base+"/oauth-agent/refresh", nil); r.Status != 204 || b.Cookie("example-id") != nil {
				t.Fatalf("refresh: %d %s", r.Status, r.Body)
			}
			fx.op.WaitFor(t, mark, "grant.success refresh_token", 1)
			if r := b.Call("POST", base+"/oauth-agent/login/end", map[string]string{"pageUrl": spaOrigin + "/"}); r.JSON()["isLoggedIn"] != true {
				t.Fatalf("page load: %s", r.Body)
			}
			r := b.Call("POST", base+"/oauth-agent/logout", nil)
			u, _ := r.JSON()["url"].(string)
			if r.Status != 200 || !strings.HasPrefix(u, fx.op.Issuer+"/") || spatest.Query(t, u).Has("id_token_hint") {
				t.Fatalf("logout: %d %s", r.Status, r.Body)
			}
		}},

		// 5. login/end error responses.
		{"5 a forged error without a login in progress", "default", func(t *testing.T, s *binStack, base string) {
			b := newBrowser(t, s)
			r := b.Call("POST", base+"/oauth-agent/login/end", map[string]string{"pageUrl": forgedError("access_denied", "x")})
			checkNoEcho(t, r, 400, "invalid_request")
		}},
		{"5 a forged error does not abort the login in progress", "default", func(t *testing.T, s *binStack, base string) {
			b := newBrowser(t, s)
			authURL := loginStart(t, b, base, nil)
			redirect := newOPUserAgent(t, fx.op).authorize(t, authURL, "alice")
			for _, state := range []string{"", "wrong", spatest.Query(t, authURL).Get("state") + "x"} {
				r := b.Call("POST", base+"/oauth-agent/login/end", map[string]string{"pageUrl": forgedError("access_denied", state)})
				checkNoEcho(t, r, 400, "invalid_request")
				if len(r.SetCookies) != 0 {
					t.Fatalf("a forged error answered Set-Cookie %v", r.SetCookies)
				}
			}
			end := b.Call("POST", base+"/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()})
			if end.Status != 200 || end.JSON()["isLoggedIn"] != true {
				t.Fatalf("the genuine login/end after the forged errors: %d %s", end.Status, end.Body)
			}
		}},
		{"5 an unregistered code with the right state", "default", func(t *testing.T, s *binStack, base string) {
			b := newBrowser(t, s)
			authURL := loginStart(t, b, base, nil)
			q := url.Values{"error": {"EVIL_<b>code</b>"}, "error_description": {"EVIL description"},
				"state": {spatest.Query(t, authURL).Get("state")}, "iss": {fx.op.Issuer}}
			r := b.Call("POST", base+"/oauth-agent/login/end", map[string]string{"pageUrl": spaOrigin + "/?" + q.Encode()})
			checkNoEcho(t, r, 400, "authorization_error")
		}},
		{"5 the OP's own login_required (prompt=none)", "default", func(t *testing.T, s *binStack, base string) {
			b := newBrowser(t, s)
			authURL := loginStart(t, b, base, []map[string]string{{"key": "prompt", "value": "none"}})
			p := newOPUserAgent(t, fx.op).do(t, "GET", authURL, nil)
			if p.location == nil || p.location.Query().Get("error") != "login_required" {
				t.Fatalf("the OP answered %d, Location %v", p.status, p.location)
			}
			r := b.Call("POST", base+"/oauth-agent/login/end", map[string]string{"pageUrl": p.location.String()})
			if r.Status != 401 || r.Code() != "login_required" || strings.Contains(string(r.Body), p.location.Query().Get("error_description")) {
				t.Fatalf("login/end: %d %s", r.Status, r.Body)
			}
		}},

		// 6. extraParams.
		{"6 extraParams on the default list", "default", func(t *testing.T, s *binStack, base string) {
			b := newBrowser(t, s)
			authURL := loginStart(t, b, base, []map[string]string{{"key": "prompt", "value": "login"}, {"key": "ui_locales", "value": "fr"}})
			if q := spatest.Query(t, authURL); q.Get("prompt") != "login" || q.Get("ui_locales") != "fr" {
				t.Fatalf("authorization request %v", q)
			}
		}},
		{"6 extraParams off the list, or set by the agent", "default", func(t *testing.T, s *binStack, base string) {
			for _, name := range []string{"scope", "claims", "resource", "redirect_uri", "state", "client_id", "code_challenge"} {
				b := newBrowser(t, s)
				r := b.Call("POST", base+"/oauth-agent/login/start", map[string]any{"extraParams": []map[string]string{{"key": name, "value": "SECRET-VALUE"}}})
				if r.Status != 400 || r.Code() != "invalid_request" || b.Cookie("example-login") != nil || strings.Contains(string(r.Body), "SECRET-VALUE") {
					t.Errorf("extraParams %s: %d %s", name, r.Status, r.Body)
				}
			}
		}},
		{"6 extraParams on an operator's list", "post", func(t *testing.T, s *binStack, base string) {
			b := newBrowser(t, s)
			authURL := loginStart(t, b, base, []map[string]string{{"key": "resource", "value": "https://api.example.com/"}})
			if q := spatest.Query(t, authURL); q.Get("resource") != "https://api.example.com/" {
				t.Fatalf("authorization request %v", q)
			}
			r := newBrowser(t, s).Call("POST", base+"/oauth-agent/login/start", map[string]any{"extraParams": []map[string]string{{"key": "ui_locales", "value": "fr"}}})
			if r.Status != 400 || r.Code() != "invalid_request" {
				t.Fatalf("ui_locales, not on this list: %d %s", r.Status, r.Body)
			}
		}},
	}
	for _, tt := range tests {
		s := stacks[tt.stack]
		for _, mode := range []string{"upstream", "auth_request", "direct"} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) { tt.run(t, s, via(s)[mode]) })
		}
	}

	// What oidc-provider takes at its UserInfo endpoint besides the GET and
	// the POST the agent sends: the answer to "which POST does the OP
	// accept".
	t.Run("2 oidc-provider's UserInfo endpoint", func(t *testing.T) {
		s := stacks["default"]
		b := loginVia(t, s, s.upstream, "alice")
		at := openCookie(t, s, b, "example-at")
		userinfo := fx.op.Issuer + "/me" // oidc-provider's default route
		for _, tt := range []struct {
			name, method, contentType, body string
			bearer                          bool
			want                            int
		}{
			{"GET, bearer header", "GET", "", "", true, 200},
			{"POST, bearer header, empty form (the agent's)", "POST", "application/x-www-form-urlencoded", "", true, 200},
			{"POST, bearer header, no body or Content-Type", "POST", "", "", true, 200},
			{"POST, token in the form body (RFC 6750 §2.2)", "POST", "application/x-www-form-urlencoded", "access_token=" + url.QueryEscape(at), false, 200},
			{"POST, no token", "POST", "application/x-www-form-urlencoded", "", false, 401},
		} {
			req, _ := http.NewRequest(tt.method, userinfo, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.bearer {
				req.Header.Set("Authorization", "Bearer "+at)
			}
			resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.want)
			}
		}
	})
}

// newBrowser is an SPA browser for s's cookie prefix.
func newBrowser(t *testing.T, s *binStack) *spatest.Browser {
	b := spatest.New(t, spaOrigin)
	b.CSRFHeader = "x-" + s.cookiePrefix + "-csrf"
	return b
}

// loginStart calls login/start through base and returns the authorization
// request URL.
func loginStart(t *testing.T, b *spatest.Browser, base string, extra []map[string]string) string {
	t.Helper()
	var body any
	if extra != nil {
		body = map[string]any{"extraParams": extra}
	}
	r := b.Call("POST", base+"/oauth-agent/login/start", body)
	authURL, _ := r.JSON()["authorizationRequestUrl"].(string)
	if r.Status != 200 || authURL == "" {
		t.Fatalf("login/start: %d %s", r.Status, r.Body)
	}
	return authURL
}

// loginVia logs a new browser in as user through base (NGINX in either
// mode, or the agent) and the OP's pages.
func loginVia(t *testing.T, s *binStack, base, user string) *spatest.Browser {
	t.Helper()
	b := newBrowser(t, s)
	redirect := newOPUserAgent(t, s.op).authorize(t, loginStart(t, b, base, nil), user)
	end := b.Call("POST", base+"/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()})
	if end.Status != 200 || end.JSON()["isLoggedIn"] != true {
		t.Fatalf("login/end: %d %s", end.Status, end.Body)
	}
	b.CSRF, _ = end.JSON()["csrf"].(string)
	return b
}

// forgedError is an SPA page URL with an authorization error response
// anyone could link to.
func forgedError(code, state string) string {
	q := url.Values{"error": {code}, "error_description": {"EVIL text"}}
	if state != "" {
		q.Set("state", state)
	}
	return spaOrigin + "/?" + q.Encode()
}

// checkNoEcho fails t unless r has the status and code, and none of the
// attacker's text.
func checkNoEcho(t *testing.T, r spatest.Answer, status int, code string) {
	t.Helper()
	if r.Status != status || r.Code() != code || strings.Contains(string(r.Body), "EVIL") {
		t.Fatalf("login/end: %d %s, want %d %s without the attacker's text", r.Status, r.Body, status, code)
	}
}

// dropCookie removes a cookie from b, as a browser that never had it.
func dropCookie(b *spatest.Browser, name string) {
	for k, c := range b.Cookies {
		if c.Name == name {
			delete(b.Cookies, k)
		}
	}
}

// checkLogoutCookies logs b out through base and checks the names of the
// Set-Cookie headers, all clearing, in order.
func checkLogoutCookies(t *testing.T, b *spatest.Browser, base string, want []string) {
	t.Helper()
	r := b.Call("POST", base+"/oauth-agent/logout", nil)
	if r.Status != 200 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	var names []string
	for _, c := range r.SetCookies {
		names = append(names, c.Name)
		if c.MaxAge >= 0 || c.Value != "" {
			t.Errorf("logout sets %s instead of clearing it", c.Name)
		}
	}
	if !slices.Equal(names, want) {
		t.Fatalf("logout's Set-Cookie names %v, want %v", names, want)
	}
}

// openEnvelope opens one of b's v2 cookies with s's key and returns its
// session envelope.
func openEnvelope(t *testing.T, s *binStack, b *spatest.Browser, name string) session.Envelope {
	t.Helper()
	var env session.Envelope
	openWith(t, s.codec, b, name, &env)
	return env
}

// openCookie returns the plaintext of one of b's v2 cookies.
func openCookie(t *testing.T, s *binStack, b *spatest.Browser, name string) string {
	t.Helper()
	var env session.Envelope
	return openWith(t, s.codec, b, name, &env)
}

// openWith opens b's cookie name with codec into env and returns its
// plaintext.
func openWith(t *testing.T, codec *session.Codec, b *spatest.Browser, name string, env *session.Envelope) string {
	t.Helper()
	c := b.Cookie(name)
	if c == nil {
		t.Fatalf("no cookie %s", name)
	}
	purpose, err := session.ParsePurpose(name[strings.LastIndexByte(name, '-')+1:])
	if err != nil {
		t.Fatal(err)
	}
	plain, _, err := codec.Open(nil, []byte(c.Value), purpose, 0, env)
	if err != nil {
		t.Fatalf("cookie %s does not open: %v", name, err)
	}
	return string(plain)
}
