package integration

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/agent"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/optest"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/internal/spatest"
	"github.com/tokenhandler/tokenhandler/session"
)

// TestAgentWithOIDCProvider runs the agent against a real, OpenID-certified
// OpenID Provider: panva/oidc-provider (integration/op) with its built-in
// login and consent pages, PKCE required and refresh tokens rotated on every
// use, which it answers, when a rotated one comes back, by revoking the
// whole grant. A user logs in through those pages; then user info, claims,
// a refresh, 20 tabs refreshing at once, replays within the grace period,
// logout, and RP-initiated logout at the OP, after which the old refresh
// token must be refused. Once with the defaults (no PAR, no revocation) and
// once with PAR always and RFC 7009 revocation at logout.
func TestAgentWithOIDCProvider(t *testing.T) {
	op := startOIDCProvider(t)
	for _, tc := range []struct {
		name   string
		par    string
		revoke bool
	}{
		{"defaults", "auto", false},
		{"PAR and revocation", "always", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mark := op.Mark()
			ring, agentURL := startAgentFor(t, op, func(cfg *agent.Config) {
				cfg.PAR = tc.par
				cfg.Logout.RevokeRefreshToken = tc.revoke
			})
			codec, _ := session.NewCodec(ring, crypto.FormatV2)
			open := func(b *spatest.Browser, name string) string {
				t.Helper()
				var env session.Envelope
				return openWith(t, codec, b, name, &env)
			}
			ua := newOPUserAgent(t, op)
			b := spatest.New(t, spaOrigin)

			// Login: the agent builds the request, the user signs in and
			// consents on the OP's own pages, the SPA hands the redirect to
			// the agent.
			authURL, aq := redirectURL(t, b.Call("POST", agentURL+"/oauth-agent/login/start", nil),
				"login/start", "authorizationRequestUrl", op.Issuer+"/auth?")
			if tc.par == "always" {
				if !strings.HasPrefix(aq.Get("request_uri"), "urn:ietf:params:oauth:request_uri:") || aq.Get("client_id") != "spa-client" || aq.Has("code_challenge") {
					t.Fatalf("PAR: the authorization request URL carries %v, want only client_id and request_uri", aq)
				}
				op.WaitFor(t, mark, "pushed_authorization_request.success", 1)
			} else if aq.Get("code_challenge_method") != "S256" || aq.Get("client_id") != "spa-client" || aq.Get("redirect_uri") != spaOrigin+"/" {
				t.Fatalf("authorization request %v", aq)
			}
			var login struct{ Nonce string }
			if err := json.Unmarshal([]byte(open(b, "example-login")), &login); err != nil || login.Nonce == "" {
				t.Fatalf("the login cookie holds no nonce: %v", err)
			}

			redirect := ua.authorize(t, authURL, "demo-user")
			rq := redirect.Query()
			if rq.Get("code") == "" || rq.Get("state") == "" || rq.Get("iss") != op.Issuer {
				t.Fatalf("the OP redirected to %s, want code, state and iss %s", redirect.Redacted(), op.Issuer)
			}
			end := b.Call("POST", agentURL+"/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()})
			m := end.JSON()
			if csrf, _ := m["csrf"].(string); end.Status != 200 || m["handled"] != true || m["isLoggedIn"] != true || len(csrf) < 43 {
				t.Fatalf("login/end: %d %s", end.Status, end.Body)
			}
			b.CSRF = m["csrf"].(string)
			op.WaitFor(t, mark, "grant.success authorization_code", 1)

			authPath := "/oauth-agent/refresh"
			if tc.revoke {
				authPath = "/oauth-agent" // logout reads it to revoke it
			}
			for name, path := range map[string]string{"example-at": "/", "example-auth": authPath, "example-id": "/oauth-agent", "example-csrf": "/"} {
				c := b.Cookie(name)
				if c == nil || c.Path != path || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.MaxAge != 0 || c.Domain != "" {
					t.Errorf("cookie %s: %+v, want Path %s, HttpOnly, Secure, SameSite=Strict, session", name, c, path)
				}
			}
			if b.Cookie("example-login") != nil {
				t.Error("the login cookie was not cleared")
			}
			if open(b, "example-csrf") != b.CSRF {
				t.Error("the CSRF cookie does not hold the CSRF token")
			}

			r := b.Call("GET", agentURL+"/oauth-agent/userInfo", nil)
			if m := r.JSON(); r.Status != 200 || m["sub"] != "demo-user" || m["name"] != "User demo-user" {
				t.Fatalf("userInfo: %d %s", r.Status, r.Body)
			}
			r = b.Call("GET", agentURL+"/oauth-agent/claims", nil)
			if m := r.JSON(); r.Status != 200 || m["sub"] != "demo-user" || m["aud"] != "spa-client" || m["iss"] != op.Issuer || m["nonce"] != login.Nonce {
				t.Fatalf("claims: %d %s", r.Status, r.Body)
			}

			// One refresh: the OP rotates the refresh token.
			at0, rt0 := open(b, "example-at"), open(b, "example-auth")
			beforeFirst := b.Clone()
			authCookie := b.Cookie("example-auth").Value
			if r := b.Call("POST", agentURL+"/oauth-agent/refresh", nil); r.Status != 204 {
				t.Fatalf("refresh: %d %s", r.Status, r.Body)
			}
			at1, rt1 := open(b, "example-at"), open(b, "example-auth")
			if at1 == at0 || rt1 == rt0 || b.Cookie("example-auth").Value == authCookie {
				t.Fatal("refresh did not rewrite the access token and the rotated refresh token")
			}
			op.WaitFor(t, mark, "grant.success refresh_token", 1)

			// 20 tabs refresh with the same refresh token at once: one grant.
			beforeBurst := b.Clone()
			tabs := make([]*spatest.Browser, 20)
			status := make([]int, len(tabs))
			var wg sync.WaitGroup
			for i := range tabs {
				tabs[i] = b.Clone()
				tabs[i].T = goroutineTB{t}
				wg.Go(func() { status[i] = tabs[i].Call("POST", agentURL+"/oauth-agent/refresh", nil).Status })
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			at2, rt2 := open(tabs[0], "example-at"), open(tabs[0], "example-auth")
			for i, tab := range tabs {
				tab.T = t
				if status[i] != 204 || open(tab, "example-at") != at2 || open(tab, "example-auth") != rt2 {
					t.Errorf("tab %d: status %d; want 204 and the same new tokens as tab 0", i, status[i])
				}
			}
			if at2 == at1 || rt2 == rt1 {
				t.Error("the concurrent refreshes did not get new tokens")
			}
			op.WaitFor(t, mark, "grant.success refresh_token", 2)
			b = tabs[0]

			// A replay of the just-rotated refresh token within the grace
			// period, by a tab of the same session, gets the cookies of the
			// refresh that rotated it and does not reach the OP, which would
			// revoke the grant. (The token before that was replaced by a
			// later refresh of the session: its grace is gone, below.)
			for _, replay := range []struct {
				name   string
				tab    *spatest.Browser
				wantAT string
			}{{"second", beforeBurst, at2}} {
				if r := replay.tab.Call("POST", agentURL+"/oauth-agent/refresh", nil); r.Status != 204 || open(replay.tab, "example-at") != replay.wantAT {
					t.Errorf("replay of the refresh token before the %s refresh: %d %s; want 204 and that refresh's access token", replay.name, r.Status, r.Body)
				}
			}
			if r := b.Call("GET", agentURL+"/oauth-agent/userInfo", nil); r.Status != 200 || r.JSON()["sub"] != "demo-user" {
				t.Fatalf("userInfo after the replays: %d %s; the OP revoked the grant?", r.Status, r.Body)
			}
			if n := op.Count(mark, "grant.success refresh_token"); n != 2 {
				t.Errorf("the OP ran %d refresh grants, want 2", n)
			}
			if n := op.Count(mark, "grant.revoked"); n != 0 {
				t.Errorf("the OP revoked %d grants before logout", n)
			}

			// Logout.
			idToken := open(b, "example-id")
			afterLogout := b.Clone() // a tab that still holds the cookies
			logoutURL, lq := redirectURL(t, b.Call("POST", agentURL+"/oauth-agent/logout", nil),
				"logout", "url", op.Issuer+"/session/end?")
			if lq.Get("client_id") != "spa-client" || lq.Get("post_logout_redirect_uri") != spaOrigin+"/" || lq.Get("id_token_hint") != idToken || len(lq.Get("state")) < 16 {
				t.Errorf("logout URL query: client_id %q, post_logout_redirect_uri %q, id_token_hint matches %v, state %q",
					lq.Get("client_id"), lq.Get("post_logout_redirect_uri"), lq.Get("id_token_hint") == idToken, lq.Get("state"))
			}
			for _, c := range b.Cookies {
				t.Errorf("cookie %s (Path %s) survived logout", c.Name, c.Path)
			}
			if tc.revoke {
				op.WaitFor(t, mark, "refresh_token.destroyed", 1)
				op.WaitFor(t, mark, "grant.revoked revocation", 1)
			}

			// The user follows the logout URL: the OP accepts it and sends
			// the browser back to the SPA with the state.
			back := ua.logout(t, logoutURL)
			if got := back.Scheme + "://" + back.Host + back.Path; got != spaOrigin+"/" || back.Query().Get("state") != lq.Get("state") {
				t.Errorf("after logout the OP redirected to %s, want %s/?state=%s", back.Redacted(), spaOrigin, lq.Get("state"))
			}
			op.WaitFor(t, mark, "end_session.success", 1)

			// The grant is gone at the OP: the old tokens are refused.
			if r := afterLogout.Call("GET", agentURL+"/oauth-agent/userInfo", nil); r.Status != 401 || r.Code() != "token_expired" {
				t.Errorf("userInfo with the access token of before the logout: %d %s, want 401 token_expired", r.Status, r.Body)
			}
			r = afterLogout.Call("POST", agentURL+"/oauth-agent/refresh", nil)
			if r.Status != 401 || r.Code() != "session_expired" {
				t.Errorf("refresh with the refresh token of before the logout: %d %s, want 401 session_expired", r.Status, r.Body)
			}
			for _, c := range afterLogout.Cookies {
				t.Errorf("cookie %s (Path %s) survived session_expired", c.Name, c.Path)
			}
			op.WaitFor(t, mark, "grant.error invalid_grant", 1)
			// The refresh token of before the first refresh: a later
			// refresh and the logout dropped its grace, so it goes to the
			// OP, which refuses it.
			if r := beforeFirst.Call("POST", agentURL+"/oauth-agent/refresh", nil); r.Status != 401 || r.Code() != "session_expired" {
				t.Errorf("replay of the first refresh token after later refreshes: %d %s, want 401 session_expired", r.Status, r.Body)
			}
			_ = at1
			if n := op.Count(mark, "grant.success refresh_token"); n != 2 {
				t.Errorf("the OP ran %d refresh grants, want 2", n)
			}
		})
	}
}

// oidcProvider is integration/op/server.mjs (optest) with spa-client's
// secret.
type oidcProvider struct {
	*optest.Provider
	secret string
}

// startOIDCProvider starts the OP and stops it when t ends. Without node
// or the OP's node_modules it skips, or fails when CI is set.
func startOIDCProvider(t *testing.T) *oidcProvider {
	t.Helper()
	// Characters client_secret_basic must form-encode (RFC 6749 §2.3.1).
	secret := "s3cr:t +/=%&" + rand.Text()
	op := &oidcProvider{optest.Start(t, optest.Options{ClientSecret: secret, RedirectURI: spaOrigin + "/"}), secret}
	if u, err := url.Parse(op.Issuer); err != nil || u.Scheme != "http" || u.Hostname() != "localhost" {
		t.Fatalf("the OP's issuer %q is not http://localhost:<port>", op.Issuer)
	}
	return op
}

// startAgentFor runs an agent in-process against op, as the SPA's backend
// for frontend, and returns its keyring and URL.
func startAgentFor(t *testing.T, op *oidcProvider, change func(*agent.Config)) (*crypto.Keyring, string) {
	t.Helper()
	ring, err := crypto.NewKeyring(crypto.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	cfg := &agent.Config{
		BasePath: "/oauth-agent", Issuer: op.Issuer, ClientID: "spa-client", ClientSecret: op.secret,
		ClientAuthMethod: "client_secret_basic", RedirectURI: spaOrigin + "/", PostLogoutRedirectURI: spaOrigin + "/",
		Scope: "openid profile", CookieNamePrefix: "example", Cookie: agent.Cookie{BasePath: "/", SameSite: "strict"},
		CookieFormat: crypto.FormatV2, Keys: ring, TrustedWebOrigins: []string{spaOrigin}, CORSEnabled: true, PAR: "auto",
		IDToken:  agent.IDToken{AllowedAlgs: []string{"RS256", "PS256", "ES256", "EdDSA"}, ClockSkew: 30 * time.Second},
		Refresh:  agent.Refresh{GracePeriod: agent.DefaultGracePeriod},
		Timeouts: agent.Timeouts{ServerTimeouts: settings.ServerTimeouts{Read: 5 * time.Second, Write: 5 * time.Second, Idle: 5 * time.Second, Shutdown: time.Second}, AS: 5 * time.Second},
		Log:      agent.Log{Level: zerolog.InfoLevel},
	}
	change(cfg)
	return ring, serveAgent(t, cfg)
}

// redirectURL checks that the agent answered what with 200 and, under
// key, a URL on the OP starting with prefix, and returns the URL and its
// query.
func redirectURL(t *testing.T, r spatest.Answer, what, key, prefix string) (string, url.Values) {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("%s: %d %s", what, r.Status, r.Body)
	}
	u, _ := r.JSON()[key].(string)
	if !strings.HasPrefix(u, prefix) {
		t.Fatalf("%s: the URL %q does not start with %s", what, u, prefix)
	}
	return u, spatest.Query(t, u)
}

// serveAgent runs an agent with cfg in-process until the test ends and
// returns its URL once it is ready (it has loaded the provider's
// metadata). Its log is printed when the test fails.
func serveAgent(t *testing.T, cfg *agent.Config) string {
	t.Helper()
	logs := &bintest.Buffer{}
	a, err := agent.New(cfg, metrics.NewSet(), zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	ln := listen(t)
	srv := &fasthttp.Server{Handler: a.Handler, ReadBufferSize: 16 << 10}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Shutdown()
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})
	if !bintest.Within(10*time.Second, a.Ready) {
		t.Fatalf("the agent did not load the provider's metadata within 10s; log:\n%s", logs.String())
	}
	return "http://" + ln.Addr().String()
}

// opUserAgent is the user's browser on the OP's pages: a cookie jar, and
// redirects followed by hand so that the one to the SPA is caught, not
// followed.
type opUserAgent struct {
	op     *oidcProvider
	client *http.Client
}

func newOPUserAgent(t *testing.T, op *oidcProvider) *opUserAgent {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	// localhost is loopback (RFC 6761 §6.3); the OP listens on 127.0.0.1.
	tr := &http.Transport{Proxy: nil, DialContext: dialLoopback}
	t.Cleanup(tr.CloseIdleConnections)
	return &opUserAgent{op: op, client: &http.Client{
		Jar:           jar,
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// page is one answer of the OP, read whole.
type page struct {
	url      *url.URL
	status   int
	location *url.URL // of a redirect
	body     string
}

func (ua *opUserAgent) do(t *testing.T, method, rawURL string, form url.Values) page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "text/html")
	resp, err := ua.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.URL.Redacted(), err)
	}
	p := page{url: req.URL, status: resp.StatusCode, body: string(data)}
	if loc, err := resp.Location(); err == nil {
		p.location = loc
	} else if !errors.Is(err, http.ErrNoLocation) {
		t.Fatalf("%s %s: bad Location: %v", method, req.URL.Redacted(), err)
	}
	return p
}

// onOP reports whether u is on the OP's origin.
func (ua *opUserAgent) onOP(u *url.URL) bool {
	return u.Scheme+"://"+u.Host == ua.op.Issuer
}

// authorize plays the user from the authorization request URL to the
// redirect to the SPA: follows the OP's redirects, signs in as login on its
// login page, confirms on its consent page, and returns the URL the OP sent
// the browser to, unfollowed.
func (ua *opUserAgent) authorize(t *testing.T, authURL, login string) *url.URL {
	t.Helper()
	seen := map[string]bool{}
	method, next, form := "GET", authURL, url.Values(nil)
	for range 12 {
		p := ua.do(t, method, next, form)
		switch {
		case p.status >= 300 && p.status < 400 && p.location != nil:
			if !ua.onOP(p.location) {
				if !seen["login"] || !seen["consent"] {
					t.Fatalf("the OP redirected to %s without the login and consent pages (seen %v)", p.location.Redacted(), seen)
				}
				return p.location
			}
			method, next, form = "GET", p.location.String(), nil
		case p.status == 200:
			f := parseForm(t, p)
			switch prompt := f.values.Get("prompt"); prompt {
			case "login":
				f.values.Set("login", login)
				f.values.Set("password", "x") // devInteractions take any
			case "consent":
			default:
				t.Fatalf("%s: a page with a form for prompt %q:\n%s", p.url.Path, prompt, p.body)
			}
			seen[f.values.Get("prompt")] = true
			method, next, form = "POST", f.action, f.values
		default:
			t.Fatalf("%s %s: %d\n%s", method, p.url.Path, p.status, p.body)
		}
	}
	t.Fatal("more than 12 steps at the OP without a redirect to the SPA")
	return nil
}

// logout follows an end-session URL, confirms on the OP's logout page, and
// returns where the OP sends the browser.
func (ua *opUserAgent) logout(t *testing.T, logoutURL string) *url.URL {
	t.Helper()
	p := ua.do(t, "GET", logoutURL, nil)
	if p.status != 200 {
		t.Fatalf("GET the end-session URL: %d\n%s", p.status, p.body)
	}
	f := parseForm(t, p)
	// The page's "Yes, sign me out" button: <button form="op.logoutForm" name="logout" value="yes">.
	if !strings.Contains(p.body, `name="logout"`) || f.values.Get("xsrf") == "" {
		t.Fatalf("the OP's logout page has no logout button or xsrf field:\n%s", p.body)
	}
	f.values.Set("logout", "yes")
	p = ua.do(t, "POST", f.action, f.values)
	if p.status < 300 || p.status >= 400 || p.location == nil {
		t.Fatalf("POST the logout form: %d\n%s", p.status, p.body)
	}
	return p.location
}

// form is the first form of an HTML page: its absolute action and the
// values of its named inputs.
type form struct {
	action string
	values url.Values
}

var (
	formRE  = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputRE = regexp.MustCompile(`(?is)<input\b([^>]*)>`)
	attrRE  = regexp.MustCompile(`(?s)([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)')`)
)

// parseForm reads the OP's own pages, whose forms are simple; it is no
// HTML parser.
func parseForm(t *testing.T, p page) form {
	t.Helper()
	m := formRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("%s: no form in the page:\n%s", p.url.Path, p.body)
	}
	attrs := func(s string) map[string]string {
		out := map[string]string{}
		for _, a := range attrRE.FindAllStringSubmatch(s, -1) {
			out[strings.ToLower(a[1])] = html.UnescapeString(a[2] + a[3])
		}
		return out
	}
	fa := attrs(m[1])
	if method := strings.ToLower(fa["method"]); method != "post" {
		t.Fatalf("%s: the form's method is %q, want post", p.url.Path, method)
	}
	action, err := p.url.Parse(fa["action"])
	if err != nil || action.Scheme != p.url.Scheme || action.Host != p.url.Host {
		t.Fatalf("%s: the form's action %q is not on the OP", p.url.Path, fa["action"])
	}
	f := form{action: action.String(), values: url.Values{}}
	for _, in := range inputRE.FindAllStringSubmatch(m[2], -1) {
		ia := attrs(in[1])
		if ia["name"] != "" {
			f.values.Set(ia["name"], ia["value"])
		}
	}
	return f
}

// goroutineTB lets a spatest.Browser run outside the test's goroutine:
// Fatal there records the failure and ends only that goroutine.
type goroutineTB struct{ testing.TB }

func (g goroutineTB) Fatal(args ...any) { g.TB.Error(args...); runtime.Goexit() }
func (g goroutineTB) Fatalf(format string, args ...any) {
	g.TB.Errorf(format, args...)
	runtime.Goexit()
}
