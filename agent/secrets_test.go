package agent

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/agent/astest"
	"github.com/tokenhandler/tokenhandler/internal/spatest"
)

// echoingTokenEndpoint sits in front of the AS's token endpoint. While echo
// is on it refuses every grant with an error_description that quotes all it
// was sent, credentials included, as a careless AS might.
type echoingTokenEndpoint struct {
	url  string
	echo atomic.Bool
}

func newEchoingTokenEndpoint(t *testing.T, as *astest.Server) *echoingTokenEndpoint {
	t.Helper()
	target, _ := url.Parse(as.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	e := &echoingTokenEndpoint{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !e.echo.Load() {
			proxy.ServeHTTP(w, r)
			return
		}
		r.ParseForm()
		user, pass, _ := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		json.NewEncoder(w).Encode(map[string]string{
			"error":             "invalid_request",
			"error_description": fmt.Sprintf("cannot accept %v from %s:%s", r.PostForm, user, pass),
		})
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	e.url = "http://" + ln.Addr().String() + "/token"
	return e
}

// secretSet is every secret of a session seen so far, by what it is.
type secretSet map[string]string

// add records a secret; empty values are ignored.
func (s secretSet) add(what, value string) {
	if value != "" {
		s[what+" "+fmt.Sprint(len(s))] = value
	}
}

// leaked returns what of s appears in text, whole or as a 16-character
// piece of its middle (a truncated quote), except the kinds in allowed.
func (s secretSet) leaked(text string, allowed ...string) []string {
	var found []string
next:
	for what, v := range s {
		for _, a := range allowed {
			if strings.HasPrefix(what, a+" ") {
				continue next
			}
		}
		piece := v
		if len(v) > 32 {
			piece = v[len(v)/2-8 : len(v)/2+8]
		}
		if strings.Contains(text, v) || strings.Contains(text, piece) {
			found = append(found, what)
		}
	}
	return found
}

// TestNoSecretLeaks runs a whole session at debug log level — login with
// PKCE, user info, claims, refresh, failed refreshes, error answers from
// the agent and from an AS that fails or quotes its input, logout — and
// checks that no access, refresh or ID token, authorization code, PKCE
// verifier, client secret, CSRF token or cookie value appears in any log
// line, nor in any answer body but where contract §5 puts it (the CSRF token of
// login/end, the id_token_hint of the logout URL).
func TestNoSecretLeaks(t *testing.T) {
	as := astest.New(t, astest.Options{ClientSecret: "s3cret-client-credential-value"})
	echo := newEchoingTokenEndpoint(t, as)
	a := startAgentWith(t, as, func(c *Config) {
		c.Log.Level = zerolog.DebugLevel
		c.Endpoints.Token = echo.url
	})
	secrets := secretSet{}
	secrets.add("client secret", as.ClientSecret)
	var answers []struct {
		what string
		r    spatest.Answer
	}
	call := func(b *spatest.Browser, method, path string, body any, extra ...string) spatest.Answer {
		t.Helper()
		r := a.call(b, method, path, body, extra...)
		answers = append(answers, struct {
			what string
			r    spatest.Answer
		}{method + " " + path, r})
		for _, c := range r.SetCookies {
			secrets.add("cookie value", c.Value)
		}
		return r
	}
	// start begins a login and records its PKCE verifier from P-login.
	start := func(b *spatest.Browser) (authURL string) {
		t.Helper()
		r := call(b, "POST", "/oauth-agent/login/start", nil)
		var login loginState
		if err := json.Unmarshal([]byte(a.open(b, "example-login")), &login); err != nil || login.CodeVerifier == "" {
			t.Fatalf("P-login: %v", err)
		}
		secrets.add("PKCE verifier", login.CodeVerifier)
		return r.JSON()["authorizationRequestUrl"].(string)
	}
	authorize := func(authURL string) *url.URL {
		t.Helper()
		redirect, err := as.Authorize(authURL)
		if err != nil {
			t.Fatal(err)
		}
		secrets.add("authorization code", redirect.Query().Get("code"))
		return redirect
	}
	tokens := func(b *spatest.Browser) {
		t.Helper()
		secrets.add("access token", a.open(b, "example-at"))
		secrets.add("refresh token", a.open(b, "example-auth"))
		secrets.add("ID token", a.open(b, "example-id"))
		secrets.add("CSRF token", a.open(b, "example-csrf"))
	}

	b := a.spa()
	redirect := authorize(start(b))
	end := call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()})
	if end.Status != 200 {
		t.Fatalf("login/end: %d %s", end.Status, end.Body)
	}
	b.CSRF, _ = end.JSON()["csrf"].(string)
	tokens(b)
	call(b, "GET", "/oauth-agent/userInfo", nil)
	call(b, "GET", "/oauth-agent/claims", nil)
	if r := call(b, "POST", "/oauth-agent/refresh", nil); r.Status != 204 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	tokens(b)

	// Errors the agent answers itself.
	stale := b.Clone()
	stale.CSRF = "wrong"
	call(stale, "POST", "/oauth-agent/refresh", nil)                                           // 401 CSRF
	call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()}) // 400 no login in progress
	other := a.spa()
	start(other)
	call(other, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()})                // 400 state mismatch
	call(a.spa(), "GET", "/oauth-agent/userInfo", nil, "Cookie", "example-at="+b.Cookie("example-at").Value[:40]) // 401

	// A used code: the AS refuses it.
	replay := a.spa()
	q := spatest.Query(t, start(replay))
	used := *redirect
	uq := used.Query()
	uq.Set("state", q.Get("state"))
	used.RawQuery = uq.Encode()
	call(replay, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": used.String()}) // 400 authorization_error

	// An AS that quotes the grant it refuses: code, verifier, refresh
	// token and client secret.
	echoing := a.spa()
	echoRedirect := authorize(start(echoing))
	echo.echo.Store(true)
	call(echoing, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": echoRedirect.String()})
	call(b.Clone(), "POST", "/oauth-agent/refresh", nil)
	echo.echo.Store(false)

	// An AS that fails.
	as.Set(func(f *astest.Faults) { f.UserinfoStatus = 500; f.TokenGarbage = true })
	call(b, "GET", "/oauth-agent/userInfo", nil)
	call(b.Clone(), "POST", "/oauth-agent/refresh", nil)
	as.Set(func(f *astest.Faults) { f.UserinfoStatus = 0; f.TokenGarbage = false; f.TokenError = "invalid_grant" })
	call(b.Clone(), "POST", "/oauth-agent/refresh", nil) // 401 session_expired
	as.Set(func(f *astest.Faults) { f.TokenError = "" })

	if r := call(b, "POST", "/oauth-agent/logout", nil); r.Status != 200 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}

	logs := a.logs.String()
	for _, want := range []string{`"endpoint":"refresh"`, `"endpoint":"login_end"`, `"level":"debug"`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("no %s in the logs:\n%s", want, logs)
		}
	}
	if leaked := secrets.leaked(logs); len(leaked) > 0 {
		t.Errorf("the logs hold %v:\n%s", leaked, logs)
	}
	errorsSeen := 0
	for _, ans := range answers {
		var allowed []string
		switch {
		case ans.what == "POST /oauth-agent/login/end" && ans.r.Status == 200:
			allowed = []string{"CSRF token"}
		case ans.what == "POST /oauth-agent/logout" && ans.r.Status == 200:
			allowed = []string{"ID token"} // id_token_hint (OpenID Connect RP-Initiated Logout §2)
		}
		if ans.r.Status >= 400 {
			errorsSeen++
		}
		if leaked := secrets.leaked(string(ans.r.Body), allowed...); len(leaked) > 0 {
			t.Errorf("%s answered %d with %v in its body: %s", ans.what, ans.r.Status, leaked, ans.r.Body)
		}
	}
	if errorsSeen < 10 {
		t.Errorf("only %d error answers checked", errorsSeen)
	}
}
