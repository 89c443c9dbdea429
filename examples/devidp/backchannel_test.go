package devidp_test

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tokenhandler/tokenhandler/examples/devidp"
)

// rp is a client's back-channel logout endpoint: it records the logout
// tokens it is sent and answers status.
type rp struct {
	mu     sync.Mutex
	tokens []string
	status int
	url    string
}

func startRP(t *testing.T) *rp {
	t.Helper()
	r := &rp{status: http.StatusOK}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("back channel: %s with Content-Type %q", req.Method, req.Header.Get("Content-Type"))
		}
		req.ParseForm()
		r.mu.Lock()
		r.tokens = append(r.tokens, req.PostForm.Get("logout_token"))
		status := r.status
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(ts.Close)
	r.url = ts.URL + "/oauth-agent/backchannel-logout"
	return r
}

// take returns the tokens received since the last call.
func (r *rp) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.tokens
	r.tokens = nil
	return out
}

// logoutClaims verifies a logout token against the JWKS as Back-Channel
// Logout 1.0 §2.6 says and returns its claims.
func (e *env) logoutClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	m := e.signedClaims(t, raw, "logout+jwt", "§2.4")
	now := float64(time.Now().Unix())
	iat, _ := m["iat"].(float64)
	exp, _ := m["exp"].(float64)
	ev, _ := m["events"].(map[string]any)
	_, hasEvent := ev["http://schemas.openid.net/event/backchannel-logout"]
	jti, _ := m["jti"].(string)
	if m["iss"] != e.issuer || m["aud"] != clientID || iat < now-5 || iat > now+1 || exp <= iat || exp > iat+120 ||
		!hasEvent || len(jti) < 16 || m["nonce"] != nil {
		t.Errorf("logout token claims %v: want iss, aud %s, iat now, exp within 2 min, jti, the event, no nonce", m, clientID)
	}
	return m
}

var (
	reFormToken = regexp.MustCompile(`name="form_token" value="([^"]*)"`)
	reSession   = regexp.MustCompile(`name="sid" value="([^"]*)">\s*<code>([^<]*)</code>`)
)

// indexPage returns the index page's form token and its sessions: sid →
// subject.
func (e *env) indexPage(t *testing.T) (token string, sessions map[string]string) {
	t.Helper()
	resp, body := get(t, e.issuer+"/", nil)
	page(t, resp, body, http.StatusOK)
	m := reFormToken.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no form token on the index page:\n%s", body)
	}
	sessions = map[string]string{}
	for _, s := range reSession.FindAllStringSubmatch(body, -1) {
		sessions[html.UnescapeString(s[1])] = html.UnescapeString(s[2])
	}
	return html.UnescapeString(m[1]), sessions
}

// TestBackchannelLogout signs alice in twice and bob once, ends alice's
// first session and then every session of alice with the index page's
// controls, and checks the logout tokens the client received, which grants
// still refresh, and what the pages say.
func TestBackchannelLogout(t *testing.T) {
	r := startRP(t)
	e := start(t, func(o *devidp.Options) { o.Clients[0].BackchannelLogoutURI = r.url })
	cfg := e.config(t, oauth2.AuthStyleInHeader)
	verifier := e.provider(t).Verifier(&oidc.Config{ClientID: clientID})
	type signedIn struct {
		tok *oauth2.Token
		sid string
	}
	signIn := func(user string) signedIn {
		tok, _ := e.signIn(t, cfg, user)
		id, err := verifier.Verify(t.Context(), tok.Extra("id_token").(string))
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			SID string `json:"sid"`
		}
		if err := id.Claims(&c); err != nil || len(c.SID) < 16 {
			t.Fatalf("the ID token has no sid (§2.1): %v", err)
		}
		return signedIn{tok, c.SID}
	}
	alice1, alice2, bob := signIn("alice"), signIn("alice"), signIn("bob")
	if alice1.sid == alice2.sid {
		t.Fatal("two sign-ins share a sid")
	}
	refreshes := func(s signedIn) bool {
		t.Helper()
		tok, err := cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: s.tok.RefreshToken}).Token()
		if err == nil {
			s.tok.RefreshToken = tok.RefreshToken
			return true
		}
		wantOAuthErr(t, err, http.StatusBadRequest, "invalid_grant")
		return false
	}
	// A refreshed ID token keeps the session's sid.
	refreshed, err := cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: bob.tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	bob.tok.RefreshToken = refreshed.RefreshToken
	id, err := verifier.Verify(t.Context(), refreshed.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		SID string `json:"sid"`
	}
	if id.Claims(&c) != nil || c.SID != bob.sid {
		t.Errorf("the refreshed ID token's sid %q, want the session's %q", c.SID, bob.sid)
	}

	formToken, sessions := e.indexPage(t)
	if len(sessions) != 3 || sessions[alice1.sid] != "alice" || sessions[alice2.sid] != "alice" || sessions[bob.sid] != "bob" {
		t.Fatalf("the index page lists sessions %v, want alice's two and bob's", sessions)
	}

	// Without the page's form token, nothing happens.
	for _, form := range []url.Values{{"sid": {alice1.sid}}, {"sid": {alice1.sid}, "form_token": {"forged"}}} {
		resp, body := postForm(t, e.issuer+"/sessions/end", form, nil)
		page(t, resp, body, http.StatusForbidden)
	}
	resp, body := postForm(t, e.issuer+"/users/logout", url.Values{"sub": {"alice"}}, nil)
	page(t, resp, body, http.StatusForbidden)
	if got := r.take(); len(got) != 0 {
		t.Fatalf("a form without the form token sent %d logout tokens", len(got))
	}

	// One session: a token with its sid and sub; its grant is over, the
	// others go on.
	resp, body = postForm(t, e.issuer+"/sessions/end", url.Values{"sid": {alice1.sid}, "form_token": {formToken}}, nil)
	page(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "<code>"+clientID+"</code> acknowledged (200)") {
		t.Errorf("the page does not say the client acknowledged:\n%s", body)
	}
	got := r.take()
	if len(got) != 1 {
		t.Fatalf("%d logout tokens, want 1", len(got))
	}
	if m := e.logoutClaims(t, got[0]); m["sid"] != alice1.sid || m["sub"] != "alice" {
		t.Errorf("logout token sid %v sub %v, want alice's first session", m["sid"], m["sub"])
	}
	if refreshes(alice1) || !refreshes(alice2) || !refreshes(bob) {
		t.Error("after ending alice's first session: want only its grant refused")
	}
	resp, body = postForm(t, e.issuer+"/sessions/end", url.Values{"sid": {alice1.sid}, "form_token": {formToken}}, nil)
	page(t, resp, body, http.StatusNotFound)
	if _, sessions = e.indexPage(t); len(sessions) != 2 || sessions[alice1.sid] != "" {
		t.Errorf("sessions after the logout: %v", sessions)
	}

	// Everywhere: a token with sub and no sid; every grant of alice is
	// over, bob's goes on.
	resp, body = postForm(t, e.issuer+"/users/logout", url.Values{"sub": {"alice"}, "form_token": {formToken}}, nil)
	page(t, resp, body, http.StatusOK)
	got = r.take()
	if len(got) != 1 {
		t.Fatalf("%d logout tokens, want 1", len(got))
	}
	if m := e.logoutClaims(t, got[0]); m["sid"] != nil || m["sub"] != "alice" {
		t.Errorf("everywhere: logout token sid %v sub %v, want sub alice and no sid", m["sid"], m["sub"])
	}
	if refreshes(alice2) || !refreshes(bob) {
		t.Error("after logging alice out everywhere: want alice's grant refused and bob's kept")
	}
	resp, body = postForm(t, e.issuer+"/users/logout", url.Values{"sub": {"nobody"}, "form_token": {formToken}}, nil)
	page(t, resp, body, http.StatusNotFound)

	// A client that does not acknowledge: the page says so.
	r.mu.Lock()
	r.status = http.StatusServiceUnavailable
	r.mu.Unlock()
	resp, body = postForm(t, e.issuer+"/users/logout", url.Values{"sub": {"bob"}, "form_token": {formToken}}, nil)
	page(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "did not acknowledge") || !strings.Contains(body, "503") {
		t.Errorf("the page does not say the client answered 503:\n%s", body)
	}
	if got := r.take(); len(got) != 1 {
		t.Errorf("%d logout tokens, want 1", len(got))
	}
}

// TestRPInitiatedLogoutSendsBackchannel: the end-session endpoint ends the
// session of the id_token_hint and tells its client on the back channel; a
// client_id alone ends nothing.
func TestRPInitiatedLogoutSendsBackchannel(t *testing.T) {
	r := startRP(t)
	e := start(t, func(o *devidp.Options) { o.Clients[0].BackchannelLogoutURI = r.url })
	cfg := e.config(t, oauth2.AuthStyleInHeader)
	tok, _ := e.signIn(t, cfg, "alice")
	resp, body := get(t, e.issuer+"/logout?"+url.Values{"client_id": {clientID}}.Encode(), nil)
	page(t, resp, body, http.StatusOK)
	if got := r.take(); len(got) != 0 {
		t.Fatalf("a logout without id_token_hint sent %d logout tokens", len(got))
	}
	resp, body = get(t, e.issuer+"/logout?"+url.Values{"id_token_hint": {tok.Extra("id_token").(string)}}.Encode(), nil)
	page(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "acknowledged (200)") {
		t.Errorf("the logged-out page does not show the back channel's answer:\n%s", body)
	}
	got := r.take()
	if len(got) != 1 {
		t.Fatalf("%d logout tokens, want 1", len(got))
	}
	if m := e.logoutClaims(t, got[0]); m["sub"] != "alice" || m["sid"] == nil {
		t.Errorf("logout token %v, want alice's session", m)
	}
	if _, err := cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Error("the session's refresh token still works after the logout")
	}
	// The same hint again: the session is over, nothing more is sent.
	get(t, e.issuer+"/logout?"+url.Values{"id_token_hint": {tok.Extra("id_token").(string)}}.Encode(), nil)
	if got := r.take(); len(got) != 0 {
		t.Errorf("a second logout of an ended session sent %d logout tokens", len(got))
	}
}
