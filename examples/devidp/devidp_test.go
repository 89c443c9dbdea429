package devidp_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/tokenhandler/tokenhandler/examples/devidp"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

const (
	clientID   = "spa-client"
	secret     = "dev-secret"
	redirect   = "http://www.example.localhost:3000/"
	postLogout = "http://www.example.localhost:3000/?logged-out"
)

// env is a running provider.
type env struct {
	idp    *devidp.Server
	issuer string
	base   string // scheme and host of the issuer
}

// start serves a provider on 127.0.0.1 with the issuer http://ADDR, the
// spa-client and a second client "other"; change adjusts the Options.
func start(t *testing.T, change func(*devidp.Options)) *env {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	opts := devidp.Options{
		Issuer: base,
		Clients: []devidp.Client{
			{ID: clientID, Secret: secret, RedirectURIs: []string{redirect}, PostLogoutRedirectURIs: []string{postLogout}},
			{ID: "other", Secret: "other-secret", RedirectURIs: []string{"http://other.example.localhost/cb"}},
		},
	}
	if change != nil {
		change(&opts)
	}
	idp, err := devidp.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = idp.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	return &env{idp: idp, issuer: opts.Issuer, base: base}
}

// provider discovers e with go-oidc, which checks the issuer.
func (e *env) provider(t *testing.T) *oidc.Provider {
	t.Helper()
	p, err := oidc.NewProvider(t.Context(), e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *env) config(t *testing.T, style oauth2.AuthStyle, scopes ...string) *oauth2.Config {
	t.Helper()
	ep := e.provider(t).Endpoint()
	ep.AuthStyle = style
	if scopes == nil {
		scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	return &oauth2.Config{ClientID: clientID, ClientSecret: secret, RedirectURL: redirect, Endpoint: ep, Scopes: scopes}
}

// login is one authorization request's secrets.
type login struct{ verifier, state, nonce string }

func newLogin() login {
	return login{verifier: oauth2.GenerateVerifier(), state: rand.Text(), nonce: rand.Text()}
}

func (l login) url(cfg *oauth2.Config, opts ...oauth2.AuthCodeOption) string {
	opts = append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(l.verifier), oauth2.SetAuthURLParam("nonce", l.nonce)}, opts...)
	return cfg.AuthCodeURL(l.state, opts...)
}

// code signs in as user through the login page and returns the code.
func (e *env) code(t *testing.T, cfg *oauth2.Config, l login, user string) string {
	t.Helper()
	loc, err := devidp.Login(t.Context(), nil, l.url(cfg), user)
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if q.Get("code") == "" || q.Get("state") != l.state || q.Get("iss") != e.issuer {
		t.Fatalf("redirect %s: want code, state %q and iss %q", loc, l.state, e.issuer)
	}
	return q.Get("code")
}

// signIn runs the whole code flow as user.
func (e *env) signIn(t *testing.T, cfg *oauth2.Config, user string) (*oauth2.Token, login) {
	t.Helper()
	l := newLogin()
	tok, err := cfg.Exchange(t.Context(), e.code(t, cfg, l, user), oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok, l
}

func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get GETs u without following redirects and returns the answer and body.
func get(t *testing.T, u string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	addHeader(req.Header, header)
	return do(t, req)
}

func postForm(t *testing.T, u string, form url.Values, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	addHeader(req.Header, header)
	return do(t, req)
}

func addHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, b := bintest.Do(t, noRedirect(), req)
	return resp, string(b)
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func basicAuth(id, secret string) http.Header {
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))}}
}

func wantOAuthErr(t *testing.T, err error, status int, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want a %d %s token error", err, status, code)
	}
	if re.Response.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("got %d %q, want %d %q", re.Response.StatusCode, re.ErrorCode, status, code)
	}
}

// accessClaims verifies an access token against the JWKS and returns its
// claims.
func (e *env) accessClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	return e.signedClaims(t, raw, "at+jwt", "RFC 9068 §2.1")
}

// signedClaims verifies a JWT devidp signed against its JWKS, checks that
// its typ header is typ (as spec says), and returns its claims.
func (e *env) signedClaims(t *testing.T, raw, typ, spec string) map[string]any {
	t.Helper()
	resp, body := get(t, e.issuer+"/jwks", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("jwks: %s", resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Headers[0].ExtraHeaders["typ"]; got != typ {
		t.Errorf("typ %v, want %s (%s)", got, typ, spec)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys in the JWKS", tok.Headers[0].KeyID, len(keys))
	}
	var m map[string]any
	if err := tok.Claims(keys[0].Key, &m); err != nil {
		t.Fatalf("the %s does not verify: %v", typ, err)
	}
	return m
}

// page checks that an answer is one of the provider's HTML pages.
func page(t *testing.T, resp *http.Response, body string, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %s, want %d; body %.300s", resp.Status, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if !strings.Contains(body, devidp.Banner) || !strings.Contains(body, `class="banner"`) {
		t.Errorf("no banner %q in %.300s", devidp.Banner, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

var (
	reForm     = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	reHidden   = regexp.MustCompile(`<input type="hidden" name="request_id" value="([^"]*)">`)
	reText     = regexp.MustCompile(`<input type="text" id="username" name="username" value="([^"]*)"`)
	reButton   = regexp.MustCompile(`<button type="submit" class="user" name="username" value="([^"]*)">`)
	reBackLink = regexp.MustCompile(`<a href="([^"]*)">Back to the application</a>`)
)

// loginForm GETs the login page for u and returns its action URL and
// request_id.
func loginForm(t *testing.T, u string) (action, id, body string) {
	t.Helper()
	resp, body := get(t, u, nil)
	page(t, resp, body, http.StatusOK)
	a, h := reForm.FindStringSubmatch(body), reHidden.FindStringSubmatch(body)
	if a == nil || h == nil {
		t.Fatalf("no login form in %s", body)
	}
	target, err := resp.Request.URL.Parse(html.UnescapeString(a[1]))
	if err != nil {
		t.Fatal(err)
	}
	return target.String(), html.UnescapeString(h[1]), body
}

// --- tests -------------------------------------------------------------------

func TestDiscovery(t *testing.T) {
	e := start(t, nil)
	resp, body := get(t, e.issuer+"/.well-known/openid-configuration", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var md map[string]any
	if err := json.Unmarshal([]byte(body), &md); err != nil {
		t.Fatal(err)
	}
	// The shared fields are tested with oidcfake.NewMetadata.
	if md["issuer"] != e.issuer || md["backchannel_logout_supported"] != true ||
		md["backchannel_logout_session_supported"] != true || fmt.Sprint(md["prompt_values_supported"]) != "[none login]" {
		t.Errorf("metadata %v", md)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
}

// TestCodeFlow plays the browser by hand on the login page, then redeems
// the code with x/oauth2 and checks every token with independent verifiers.
// (The grant store's rules, both client authentication methods and single
// use of codes included, are tested in internal/oidcfake.)
func TestCodeFlow(t *testing.T) {
	e := start(t, nil)
	cfg := e.config(t, oauth2.AuthStyleInHeader)
	l := newLogin()

	// GET authorize → the login page.
	action, id, body := loginForm(t, l.url(cfg))
	var users []string
	for _, m := range reButton.FindAllStringSubmatch(body, -1) {
		users = append(users, m[1])
	}
	if !slices.Equal(users, []string{"alice", "bob", "carol"}) {
		t.Errorf("user buttons %v, want alice, bob, carol", users)
	}
	if reText.FindStringSubmatch(body) == nil {
		t.Error("no username text field")
	}
	if !strings.Contains(body, "<code>"+clientID+"</code>") {
		t.Error("the page does not name the client")
	}

	// POST the form as a browser would after a click on bob:
	// the empty text field, then the button.
	resp, body := postForm(t, action, url.Values{"request_id": {id}, "username": {"", "bob"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %s %s", resp.Status, body)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirect {
		t.Errorf("redirected to %s, want %s", got, redirect)
	}
	if q.Get("state") != l.state || q.Get("iss") != e.issuer || q.Get("code") == "" {
		t.Fatalf("redirect query %v: want code, state %q, iss %q", q, l.state, e.issuer)
	}

	tok, err := cfg.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.TokenType != "Bearer" {
		t.Errorf("token %+v: want a Bearer token and a refresh token", tok)
	}
	if d := time.Until(tok.Expiry); d < 4*time.Minute || d > 5*time.Minute+time.Second {
		t.Errorf("expires in %v, want 5m", d)
	}

	// The ID token, by go-oidc.
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := e.provider(t).Verifier(&oidc.Config{ClientID: clientID}).Verify(t.Context(), rawID)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var idc struct {
		Nonce, Name, Email, Azp string
		Username                string `json:"preferred_username"`
	}
	if err := idt.Claims(&idc); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != "bob" || idc.Nonce != l.nonce || idc.Name != "Bob Brown" || idc.Email != "bob@example.com" || idc.Azp != clientID || idc.Username != "bob" {
		t.Errorf("ID token sub %q claims %+v", idt.Subject, idc)
	}

	// The access token, by go-jose against the JWKS.
	at := e.accessClaims(t, tok.AccessToken)
	for k, want := range map[string]any{
		"iss": e.issuer, "sub": "bob", "aud": devidp.DefaultAudience, "client_id": clientID,
		"scope": "openid profile email", "name": "Bob Brown",
	} {
		if at[k] != want {
			t.Errorf("access token %s = %v, want %v", k, at[k], want)
		}
	}
	if exp, iat := at["exp"].(float64), at["iat"].(float64); exp-iat != 300 {
		t.Errorf("access token exp-iat = %v, want 300", exp-iat)
	}
	if at["jti"] == "" || at["jti"] == nil {
		t.Error("access token has no jti")
	}

	// Userinfo, by go-oidc.
	ui, err := e.provider(t).UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	if ui.Subject != "bob" || ui.Email != "bob@example.com" || !ui.EmailVerified {
		t.Errorf("userinfo %+v", ui)
	}
}

func TestLoginPage(t *testing.T) {
	e := start(t, nil)
	cfg := e.config(t, oauth2.AuthStyleInHeader)

	t.Run("login_hint fills the field", func(t *testing.T) {
		_, _, body := loginForm(t, newLogin().url(cfg, oauth2.SetAuthURLParam("login_hint", `al"ice`)))
		if m := reText.FindStringSubmatch(body); m == nil || html.UnescapeString(m[1]) != `al"ice` {
			t.Errorf("username field %v", m)
		}
	})
	t.Run("typed name", func(t *testing.T) {
		l := newLogin()
		action, id, _ := loginForm(t, l.url(cfg))
		resp, _ := postForm(t, action, url.Values{"request_id": {id}, "username": {" carol "}}, nil)
		loc, _ := resp.Location()
		if resp.StatusCode != http.StatusSeeOther || loc.Query().Get("code") == "" {
			t.Fatalf("%s %v", resp.Status, loc)
		}
		tok, err := cfg.Exchange(t.Context(), loc.Query().Get("code"), oauth2.VerifierOption(l.verifier))
		if err != nil {
			t.Fatal(err)
		}
		if sub := e.accessClaims(t, tok.AccessToken)["sub"]; sub != "carol" {
			t.Errorf("sub %v, want carol", sub)
		}
	})
	t.Run("unknown user, then retry, then reuse", func(t *testing.T) {
		action, id, _ := loginForm(t, newLogin().url(cfg))
		for _, name := range []string{"mallory", ""} {
			resp, body := postForm(t, action, url.Values{"request_id": {id}, "username": {name}}, nil)
			page(t, resp, body, http.StatusBadRequest)
			if !strings.Contains(body, `class="error"`) || reHidden.FindStringSubmatch(body)[1] != id {
				t.Errorf("%q: want the login page again with an error and the same request_id", name)
			}
		}
		if resp, body := postForm(t, action, url.Values{"request_id": {id}, "username": {"alice"}}, nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("retry: %s %s", resp.Status, body)
		}
		resp, body := postForm(t, action, url.Values{"request_id": {id}, "username": {"alice"}}, nil)
		page(t, resp, body, http.StatusBadRequest)
		if !strings.Contains(body, "expired") {
			t.Errorf("reused request_id: %s", body)
		}
	})
	t.Run("unknown request_id", func(t *testing.T) {
		resp, body := postForm(t, e.issuer+"/login", url.Values{"request_id": {"nope"}, "username": {"alice"}}, nil)
		page(t, resp, body, http.StatusBadRequest)
	})
	t.Run("cancel", func(t *testing.T) {
		l := newLogin()
		loc, err := devidp.Login(t.Context(), nil, l.url(cfg), "")
		if err != nil {
			t.Fatal(err)
		}
		q := loc.Query()
		if q.Get("error") != "access_denied" || q.Get("state") != l.state || q.Get("iss") != e.issuer || q.Has("code") {
			t.Errorf("cancel redirect %v", q)
		}
	})
	t.Run("each user", func(t *testing.T) {
		for _, u := range devidp.Users {
			tok, _ := e.signIn(t, cfg, u.Subject)
			if c := e.accessClaims(t, tok.AccessToken); c["sub"] != u.Subject || c["name"] != u.Name {
				t.Errorf("%s: claims %v", u.Subject, c)
			}
		}
	})
}

// TestAuthorizeRefusals: a bad client or redirect URI is shown to the user;
// anything else goes back to the client, before any login page. The rows
// are the checks devidp adds to oidcfake's CheckAuthRequest, and one PKCE
// row to show it is called.
func TestAuthorizeRefusals(t *testing.T) {
	e := start(t, nil)
	cfg := e.config(t, oauth2.AuthStyleInHeader)
	l := newLogin()
	challenge := oauth2.S256ChallengeFromVerifier(l.verifier)
	valid := func() url.Values {
		return url.Values{
			"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
			"state": {l.state}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(url.Values)
		page   bool   // answered with an error page, not a redirect
		code   string // the redirect's error
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "nobody") }, true, ""},
		{"no client", func(q url.Values) { q.Del("client_id") }, true, ""},
		{"unregistered redirect_uri", func(q url.Values) { q.Set("redirect_uri", "http://evil.example/") }, true, ""},
		{"redirect_uri of another client", func(q url.Values) { q.Set("redirect_uri", "http://other.example.localhost/cb") }, true, ""},
		{"no redirect_uri", func(q url.Values) { q.Del("redirect_uri") }, true, ""},
		{"PKCE plain", func(q url.Values) { q.Set("code_challenge", l.verifier); q.Set("code_challenge_method", "plain") }, false, "invalid_request"},
		{"repeated parameter", func(q url.Values) { q.Add("scope", "profile") }, false, "invalid_request"},
		{"prompt=none", func(q url.Values) { q.Set("prompt", "none") }, false, "login_required"},
		{"response_mode fragment", func(q url.Values) { q.Set("response_mode", "fragment") }, false, "invalid_request"},
		{"request_uri", func(q url.Values) { q.Set("request_uri", "urn:x") }, false, "request_uri_not_supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := valid()
			tc.change(q)
			resp, body := get(t, cfg.Endpoint.AuthURL+"?"+q.Encode(), nil)
			if tc.page {
				page(t, resp, body, http.StatusBadRequest)
				if resp.Header.Get("Location") != "" {
					t.Errorf("redirected to %s", resp.Header.Get("Location"))
				}
				return
			}
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("%s, want 302; %s", resp.Status, body)
			}
			loc, _ := resp.Location()
			got := loc.Query()
			if got.Get("error") != tc.code || got.Get("state") != l.state || got.Get("iss") != e.issuer || got.Has("code") {
				t.Errorf("redirect %v, want error %s with state and iss", got, tc.code)
			}
			if loc.Scheme+"://"+loc.Host+loc.Path != redirect {
				t.Errorf("redirected to %s", loc)
			}
		})
	}
	// Login sees such a redirect too.
	loc, err := devidp.Login(t.Context(), nil, cfg.AuthCodeURL("s"), "alice")
	if err != nil || loc.Query().Get("error") != "invalid_request" {
		t.Errorf("Login without PKCE: %v %v", loc, err)
	}
}

// TestRefreshRotation: devidp always rotates, and a refreshed ID token has
// no nonce (OpenID Connect Core §12.2). The grant store's rules (reuse,
// scope, clients, PKCE, client authentication) are tested in
// internal/oidcfake.
func TestRefreshRotation(t *testing.T) {
	e := start(t, nil)
	cfg := e.config(t, oauth2.AuthStyleInParams)
	tok, _ := e.signIn(t, cfg, "alice")
	tok2, err := cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken || tok2.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate the refresh token and issue a new access token")
	}
	if c := e.accessClaims(t, tok2.AccessToken); c["sub"] != "alice" || c["scope"] != "openid profile email" {
		t.Errorf("refreshed access token %v", c)
	}
	rawID, _ := tok2.Extra("id_token").(string)
	idt, err := e.provider(t).Verifier(&oidc.Config{ClientID: clientID}).Verify(t.Context(), rawID)
	if err != nil || idt.Nonce != "" || idt.Subject != "alice" {
		t.Errorf("refreshed ID token: %v", err)
	}
	_, err = cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	wantOAuthErr(t, err, http.StatusBadRequest, "invalid_grant")
}

func TestUserinfo(t *testing.T) {
	e := start(t, nil)
	ui := e.issuer + "/userinfo"
	for _, tc := range []struct {
		scopes []string
		want   map[string]any
	}{
		{[]string{"openid"}, map[string]any{"sub": "carol"}},
		{[]string{"openid", "profile"}, map[string]any{"sub": "carol", "name": "Carol Clark", "preferred_username": "carol"}},
		{[]string{"openid", "email"}, map[string]any{"sub": "carol", "email": "carol@example.com", "email_verified": true}},
	} {
		t.Run(strings.Join(tc.scopes, "+"), func(t *testing.T) {
			tok, _ := e.signIn(t, e.config(t, oauth2.AuthStyleInHeader, tc.scopes...), "carol")
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				req, _ := http.NewRequestWithContext(t.Context(), method, ui, nil)
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				resp, body := do(t, req)
				var got map[string]any
				if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: %s %s", method, resp.Status, body)
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("%s: %v, want %v", method, got, tc.want)
				}
			}
		})
	}
	// The refusals are oidcfake's (TestBearerAndRevocation), with the realm.
	if resp, body := get(t, ui, nil); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer realm="devidp"` {
		t.Errorf("no token: %s %q %s", resp.Status, resp.Header.Get("WWW-Authenticate"), body)
	}
}

func TestRevocation(t *testing.T) {
	e := start(t, nil)
	cfg := e.config(t, oauth2.AuthStyleInHeader)
	revoke := func(tok string, h http.Header) *http.Response {
		resp, _ := postForm(t, e.issuer+"/revoke", url.Values{"token": {tok}}, h)
		return resp
	}
	userinfo := func(at string) int {
		resp, _ := get(t, e.issuer+"/userinfo", bearer(at))
		return resp.StatusCode
	}

	t.Run("refresh token revokes the login", func(t *testing.T) {
		tok, _ := e.signIn(t, cfg, "bob")
		// /revoke hands oidcfake the client it authenticated, not the
		// token's: another client's request is answered 200 and ignored.
		if r := revoke(tok.RefreshToken, basicAuth("other", "other-secret")); r.StatusCode != http.StatusOK {
			t.Fatalf("another client: %s", r.Status)
		}
		if userinfo(tok.AccessToken) != http.StatusOK {
			t.Fatal("another client's revocation took effect")
		}
		if r := revoke(tok.RefreshToken, basicAuth(clientID, secret)); r.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %s", r.Status)
		}
		_, err := cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		wantOAuthErr(t, err, http.StatusBadRequest, "invalid_grant")
		if got := userinfo(tok.AccessToken); got != http.StatusUnauthorized {
			t.Errorf("userinfo with the access token of a revoked login: %d", got)
		}
	})
	t.Run("unauthenticated", func(t *testing.T) {
		if r := revoke("nonsense", nil); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s, want 401", r.Status)
		}
	})
}

func TestEndSession(t *testing.T) {
	e := start(t, nil)
	cfg := e.config(t, oauth2.AuthStyleInHeader)
	tok, _ := e.signIn(t, cfg, "alice")
	idToken := tok.Extra("id_token").(string)
	other := start(t, nil) // another provider: its ID tokens are not ours
	otherTok, _ := other.signIn(t, other.config(t, oauth2.AuthStyleInHeader), "alice")

	for _, tc := range []struct {
		name   string
		params url.Values
		back   string // the link back, "" for none
		note   string
	}{
		{"id_token_hint", url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {postLogout}, "state": {"s1"}},
			postLogout + "&state=s1", ""},
		{"client_id", url.Values{"client_id": {clientID}, "post_logout_redirect_uri": {postLogout}}, postLogout, ""},
		{"both", url.Values{"client_id": {clientID}, "id_token_hint": {idToken}, "post_logout_redirect_uri": {postLogout}, "state": {"a b"}},
			postLogout + "&state=a+b", ""},
		{"nothing", nil, "", ""},
		{"unregistered URI", url.Values{"client_id": {clientID}, "post_logout_redirect_uri": {"http://evil.example/"}, "state": {"s"}},
			"", "not registered"},
		{"URI of another client", url.Values{"client_id": {"other"}, "post_logout_redirect_uri": {postLogout}}, "", "not registered"},
		{"no client", url.Values{"post_logout_redirect_uri": {postLogout}}, "", "needs an id_token_hint or client_id"},
		{"foreign hint", url.Values{"id_token_hint": {otherTok.Extra("id_token").(string)}, "post_logout_redirect_uri": {postLogout}},
			"", "not issued by this provider"},
		{"hint and client_id disagree", url.Values{"client_id": {"other"}, "id_token_hint": {idToken}, "post_logout_redirect_uri": {postLogout}},
			"", "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				var resp *http.Response
				var body string
				if method == http.MethodGet {
					resp, body = get(t, e.issuer+"/logout?"+tc.params.Encode(), nil)
				} else {
					resp, body = postForm(t, e.issuer+"/logout", tc.params, nil)
				}
				page(t, resp, body, http.StatusOK)
				if !strings.Contains(body, "logged out") {
					t.Errorf("%s: the page does not say logged out", method)
				}
				var back string
				if m := reBackLink.FindStringSubmatch(body); m != nil {
					back = html.UnescapeString(m[1])
				}
				if back != tc.back {
					t.Errorf("%s: link back %q, want %q", method, back, tc.back)
				}
				if tc.note != "" && !strings.Contains(html.UnescapeString(body), tc.note) {
					t.Errorf("%s: no note %q in %s", method, tc.note, body)
				}
			}
		})
	}
}

// TestBannerOnEveryPage visits every kind of HTML page.
func TestBannerOnEveryPage(t *testing.T) {
	e := start(t, nil)
	cfg := e.config(t, oauth2.AuthStyleInHeader)
	action, id, _ := loginForm(t, newLogin().url(cfg))
	for _, tc := range []struct {
		name   string
		do     func() (*http.Response, string)
		status int
	}{
		{"index", func() (*http.Response, string) { return get(t, e.issuer+"/", nil) }, 200},
		{"login", func() (*http.Response, string) { return get(t, newLogin().url(cfg), nil) }, 200},
		{"login error", func() (*http.Response, string) {
			return postForm(t, action, url.Values{"request_id": {id}, "username": {"nobody"}}, nil)
		}, 400},
		{"expired", func() (*http.Response, string) {
			return postForm(t, action, url.Values{"request_id": {"gone"}, "username": {"alice"}}, nil)
		}, 400},
		{"unknown client", func() (*http.Response, string) { return get(t, e.issuer+"/authorize?client_id=x", nil) }, 400},
		{"logged out", func() (*http.Response, string) { return get(t, e.issuer+"/logout", nil) }, 200},
		{"logout method", func() (*http.Response, string) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, e.issuer+"/logout", nil)
			return do(t, req)
		}, 405},
		{"not found", func() (*http.Response, string) { return get(t, e.issuer+"/nothing", nil) }, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := tc.do()
			page(t, resp, body, tc.status)
		})
	}
	// The index lists the demo users and clients.
	_, body := get(t, e.issuer+"/", nil)
	for _, want := range []string{"alice", "bob", "carol", clientID, "other"} {
		if !strings.Contains(body, "<code>"+want+"</code>") {
			t.Errorf("index does not list %s", want)
		}
	}
}

func TestOptions(t *testing.T) {
	e := start(t, func(o *devidp.Options) {
		o.AccessTokenTTL = 90 * time.Second
		o.Audience = "https://api.example"
	})
	cfg := e.config(t, oauth2.AuthStyleInHeader)
	tok, _ := e.signIn(t, cfg, "carol")
	c := e.accessClaims(t, tok.AccessToken)
	if c["aud"] != "https://api.example" || c["exp"].(float64)-c["iat"].(float64) != 90 || c["name"] != "Carol Clark" {
		t.Errorf("claims %v", c)
	}
	if got := tok.Extra("expires_in"); fmt.Sprint(got) != "90" {
		t.Errorf("expires_in %v", got)
	}
	ui, err := e.provider(t).UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
	if err != nil || ui.Email != "carol@example.com" {
		t.Errorf("userinfo %+v %v", ui, err)
	}
}

func TestNew(t *testing.T) {
	good := devidp.Client{ID: "c", Secret: "s", RedirectURIs: []string{"http://app.localhost/"}}
	for _, tc := range []struct {
		name string
		opts devidp.Options
		want string
	}{
		{"no issuer", devidp.Options{Clients: []devidp.Client{good}}, `Issuer "" must be an http or https URL`},
		{"relative issuer", devidp.Options{Issuer: "login.example", Clients: []devidp.Client{good}}, "must be an http or https URL"},
		{"ftp issuer", devidp.Options{Issuer: "ftp://login.example", Clients: []devidp.Client{good}}, "must be an http or https URL"},
		{"issuer with query", devidp.Options{Issuer: "http://login.example?x=1", Clients: []devidp.Client{good}}, "nothing after the host"},
		{"issuer with fragment", devidp.Options{Issuer: "http://login.example#x", Clients: []devidp.Client{good}}, "nothing after the host"},
		{"issuer with slash", devidp.Options{Issuer: "http://login.example/", Clients: []devidp.Client{good}}, "nothing after the host"},
		{"issuer with path", devidp.Options{Issuer: "http://login.example/realms/dev", Clients: []devidp.Client{good}}, "nothing after the host"},
		{"issuer with user", devidp.Options{Issuer: "http://u@login.example", Clients: []devidp.Client{good}}, "nothing after the host"},
		{"no clients", devidp.Options{Issuer: "http://login.example"}, "at least one client"},
		{"client without ID", devidp.Options{Issuer: "http://login.example", Clients: []devidp.Client{{Secret: "s", RedirectURIs: good.RedirectURIs}}}, "no ID"},
		{"client without secret", devidp.Options{Issuer: "http://login.example", Clients: []devidp.Client{{ID: "c", RedirectURIs: good.RedirectURIs}}}, "no secret"},
		{"client without redirect URI", devidp.Options{Issuer: "http://login.example", Clients: []devidp.Client{{ID: "c", Secret: "s"}}}, "no redirect URI"},
		{"relative redirect URI", devidp.Options{Issuer: "http://login.example", Clients: []devidp.Client{{ID: "c", Secret: "s", RedirectURIs: []string{"/cb"}}}}, `"/cb" must be an absolute http or https URL`},
		{"redirect URI with fragment", devidp.Options{Issuer: "http://login.example", Clients: []devidp.Client{{ID: "c", Secret: "s", RedirectURIs: []string{"http://a/#x"}}}}, "without a fragment"},
		{"bad post-logout URI", devidp.Options{Issuer: "http://login.example", Clients: []devidp.Client{{ID: "c", Secret: "s", RedirectURIs: good.RedirectURIs, PostLogoutRedirectURIs: []string{"x"}}}}, `"x" must be an absolute`},
		{"client twice", devidp.Options{Issuer: "http://login.example", Clients: []devidp.Client{good, good}}, "twice"},
		{"relative backchannel URI", devidp.Options{Issuer: "http://login.example", Clients: []devidp.Client{{ID: "c", Secret: "s", RedirectURIs: good.RedirectURIs, BackchannelLogoutURI: "/bc"}}}, `"/bc" must be an absolute`},
		{"backchannel URI with fragment", devidp.Options{Issuer: "http://login.example", Clients: []devidp.Client{{ID: "c", Secret: "s", RedirectURIs: good.RedirectURIs, BackchannelLogoutURI: "http://a/bc#x"}}}, `"http://a/bc#x" must be an absolute`},
		{"ftp backchannel URI", devidp.Options{Issuer: "http://login.example", Clients: []devidp.Client{{ID: "c", Secret: "s", RedirectURIs: good.RedirectURIs, BackchannelLogoutURI: "ftp://a/bc"}}}, `"ftp://a/bc" must be an absolute`},
		{"negative TTL", devidp.Options{Issuer: "http://login.example", Clients: []devidp.Client{good}, AccessTokenTTL: -time.Second}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := devidp.New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "devidp: ") {
				t.Errorf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
	s, err := devidp.New(devidp.Options{Issuer: "http://login.example.localhost:8443", Clients: []devidp.Client{good}})
	if err != nil || s.Issuer() != "http://login.example.localhost:8443" {
		t.Fatalf("%v %v", s, err)
	}
}

func TestListenLoopback(t *testing.T) {
	type row struct {
		addr         string
		insecure, ok bool
	}
	rows := []row{{":0", true, true}} // any address with insecure
	for _, addr := range []string{"127.0.0.1:0", "127.1.2.3:0", "localhost:0", "login.example.localhost:0", "LOGIN.Example.LocalHost.:0"} {
		rows = append(rows, row{addr, false, true})
	}
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:0", "localhost.example.com:0",
		"notlocalhost:0", "[::ffff:10.0.0.1]:0", "127.0.0.1" /* no port */} {
		rows = append(rows, row{addr, false, false})
	}
	for _, tc := range rows {
		t.Run(fmt.Sprintf("%s insecure=%v", tc.addr, tc.insecure), func(t *testing.T) {
			ln, err := devidp.ListenLoopback(tc.addr, tc.insecure)
			if !tc.ok {
				if err == nil {
					ln.Close()
					t.Fatal("listened, want a refusal")
				}
				if strings.Contains(tc.addr, ":0") && !errors.Is(err, devidp.ErrNotLoopback) {
					t.Errorf("error %v does not wrap ErrNotLoopback", err)
				}
				if !strings.HasPrefix(err.Error(), "devidp: ") {
					t.Errorf("error %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			ip := ln.Addr().(*net.TCPAddr).IP
			if !tc.insecure && !ip.IsLoopback() {
				t.Errorf("listening on %s", ln.Addr())
			}
		})
	}
	t.Run("::1", func(t *testing.T) {
		ln, err := devidp.ListenLoopback("[::1]:0", false)
		if err != nil {
			if ln6, err6 := net.Listen("tcp", "[::1]:0"); err6 != nil {
				t.Skip("no IPv6 loopback here")
			} else {
				ln6.Close()
			}
			t.Fatal(err)
		}
		ln.Close()
	})
}

// TestConcurrentLogins runs whole flows in parallel, for the race detector.
func TestConcurrentLogins(t *testing.T) {
	e := start(t, nil)
	cfg := e.config(t, oauth2.AuthStyleInHeader)
	var wg sync.WaitGroup
	for i := range 8 {
		user := devidp.Users[i%3].Subject
		wg.Go(func() {
			l := newLogin()
			loc, err := devidp.Login(context.Background(), nil, l.url(cfg), user)
			if err != nil {
				t.Error(err)
				return
			}
			tok, err := cfg.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(l.verifier))
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

// Example serves the development IdP on loopback.
func Example() {
	ln, err := devidp.ListenLoopback("127.0.0.1:0", false)
	if err != nil {
		panic(err)
	}
	idp, err := devidp.New(devidp.Options{
		Issuer: "http://" + ln.Addr().String(),
		Clients: []devidp.Client{{
			ID: "spa-client", Secret: "dev-secret",
			RedirectURIs:           []string{"http://www.example.localhost:3000/"},
			PostLogoutRedirectURIs: []string{"http://www.example.localhost:3000/"},
		}},
	})
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: idp.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	resp, err := http.Get(idp.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var md struct{ Issuer string }
	json.NewDecoder(resp.Body).Decode(&md)
	fmt.Println(md.Issuer == idp.Issuer())
	// Output: true
}
