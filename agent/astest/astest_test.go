package astest_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/tokenhandler/tokenhandler/agent/astest"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// --- helpers -----------------------------------------------------------------

// getJSON GETs u and decodes a JSON body, if any.
func getJSON(t *testing.T, u string, header http.Header) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if header != nil {
		req.Header = header.Clone()
	}
	return do(t, req)
}

// creds is client authentication for postForm: method "basic", "post",
// "both", or "" for none.
type creds struct{ method, id, secret string }

func basic(id, secret string) creds { return creds{"basic", id, secret} }
func post(id, secret string) creds  { return creds{"post", id, secret} }

// postForm POSTs form, with c's client authentication, to u.
func postForm(t *testing.T, u string, form url.Values, c creds) (*http.Response, map[string]any) {
	t.Helper()
	if c.method == "post" || c.method == "both" {
		form.Set("client_id", c.id)
		form.Set("client_secret", c.secret)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.method == "basic" || c.method == "both" {
		// RFC 6749 §2.3.1: form-encoded, then Base64.
		req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	}
	return do(t, req)
}

// do sends req and decodes a JSON body, if any.
func do(t *testing.T, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, body := bintest.Do(t, http.DefaultClient, req)
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		m = nil
	}
	return resp, m
}

// config builds an oauth2.Config from s's discovery document.
func config(t *testing.T, s *astest.Server, style oauth2.AuthStyle) *oauth2.Config {
	t.Helper()
	resp, md := getJSON(t, s.URL+"/.well-known/openid-configuration", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery: %s", resp.Status)
	}
	return &oauth2.Config{
		ClientID:     s.ClientID,
		ClientSecret: s.ClientSecret,
		RedirectURL:  s.RedirectURI,
		Scopes:       []string{"openid", "profile", "email"},
		Endpoint: oauth2.Endpoint{
			AuthURL:   md["authorization_endpoint"].(string),
			TokenURL:  md["token_endpoint"].(string),
			AuthStyle: style,
		},
	}
}

// login is one authorization request's secrets.
type login struct {
	verifier, state, nonce string
}

func newLogin() login {
	return login{verifier: oauth2.GenerateVerifier(), state: rand.Text(), nonce: rand.Text()}
}

func (l login) url(cfg *oauth2.Config, opts ...oauth2.AuthCodeOption) string {
	opts = append([]oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(l.verifier),
		oauth2.SetAuthURLParam("nonce", l.nonce),
	}, opts...)
	return cfg.AuthCodeURL(l.state, opts...)
}

// authorize runs the front channel and returns the code.
func authorize(t *testing.T, s *astest.Server, cfg *oauth2.Config, l login) string {
	t.Helper()
	redirect, err := s.Authorize(l.url(cfg))
	if err != nil {
		t.Fatal(err)
	}
	q := redirect.Query()
	if q.Get("code") == "" || q.Get("state") != l.state {
		t.Fatalf("authorize redirect %s: want code and state %q", redirect, l.state)
	}
	return q.Get("code")
}

// signIn runs the whole code flow and returns the tokens.
func signIn(t *testing.T, s *astest.Server, cfg *oauth2.Config) (*oauth2.Token, login) {
	t.Helper()
	l := newLogin()
	code := authorize(t, s, cfg, l)
	tok, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok, l
}

func refresh(t *testing.T, cfg *oauth2.Config, rt string) (*oauth2.Token, error) {
	return cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: rt}).Token()
}

// oauthErr returns the status and OAuth error code of a token endpoint error.
func oauthErr(t *testing.T, err error) (int, string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("got error %v, want *oauth2.RetrieveError", err)
	}
	return re.Response.StatusCode, re.ErrorCode
}

func wantOAuthErr(t *testing.T, err error, status int, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want %d %s", status, code)
	}
	gotStatus, gotCode := oauthErr(t, err)
	if gotStatus != status || gotCode != code {
		t.Fatalf("got %d %q, want %d %q", gotStatus, gotCode, status, code)
	}
}

func keySet(t *testing.T, s *astest.Server) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(s.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	return set
}

// parsedJWT is a compact JWT's header and claims, decoded without
// verification, and the result of verifying it against the JWKS.
type parsedJWT struct {
	header    map[string]any
	claims    map[string]any
	verifyErr error
	raw       string
}

func parseJWT(t *testing.T, s *astest.Server, raw string) parsedJWT {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT has %d parts", len(parts))
	}
	p := parsedJWT{raw: raw}
	for i, dst := range []*map[string]any{&p.header, &p.claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	p.verifyErr = verify(t, s, raw)
	return p
}

func verify(t *testing.T, s *astest.Server, raw string) error {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return err
	}
	if len(tok.Headers) != 1 {
		return errors.New("want one signature")
	}
	set := keySet(t, s)
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		return errors.New("kid not in JWKS")
	}
	var c map[string]any
	return tok.Claims(keys[0].Key, &c)
}

func (p parsedJWT) str(name string) string { s, _ := p.claims[name].(string); return s }

func (p parsedJWT) time(name string) time.Time {
	f, _ := p.claims[name].(float64)
	return time.Unix(int64(f), 0)
}

func idToken(t *testing.T, s *astest.Server, tok *oauth2.Token) parsedJWT {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("no id_token")
	}
	return parseJWT(t, s, raw)
}

func userinfo(t *testing.T, s *astest.Server, accessToken string) (*http.Response, map[string]any) {
	t.Helper()
	return getJSON(t, s.URL+"/userinfo", http.Header{"Authorization": {"Bearer " + accessToken}})
}

// wantCounts checks Server.Count of each endpoint in want.
func wantCounts(t *testing.T, s *astest.Server, want map[string]int) {
	t.Helper()
	for what, n := range want {
		if got := s.Count(what); got != n {
			t.Errorf("Count(%s) = %d, want %d", what, got, n)
		}
	}
}

// start starts a Server with the default Options and a client configured
// for it with auth style style.
func start(t *testing.T, style oauth2.AuthStyle) (*astest.Server, *oauth2.Config) {
	t.Helper()
	s := astest.New(t, astest.Options{})
	return s, config(t, s, style)
}

// setFaults changes s's Faults for the rest of the test, which puts them
// back as New made them.
func setFaults(t *testing.T, s *astest.Server, change func(*astest.Faults)) {
	t.Cleanup(func() { s.Set(reset) })
	s.Set(change)
}

func reset(f *astest.Faults) { *f = astest.Faults{} }

// --- tests -------------------------------------------------------------------

func TestDiscovery(t *testing.T) {
	t.Parallel()
	s := astest.New(t, astest.Options{})
	resp, md := getJSON(t, s.URL+"/.well-known/openid-configuration", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("discovery: %s, Cache-Control %q", resp.Status, resp.Header.Get("Cache-Control"))
	}
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") || strings.HasSuffix(s.URL, "/") {
		t.Errorf("URL %q", s.URL)
	}
	// The shared fields are tested with oidcfake.NewMetadata.
	if md["issuer"] != s.URL || md["pushed_authorization_request_endpoint"] != s.URL+"/par" ||
		md["require_pushed_authorization_requests"] != false {
		t.Errorf("metadata %v", md)
	}
	s.Set(func(f *astest.Faults) { f.RequirePAR = true })
	if _, md := getJSON(t, s.URL+"/.well-known/openid-configuration", nil); md["require_pushed_authorization_requests"] != true {
		t.Errorf("RequirePAR: require_pushed_authorization_requests = %v", md["require_pushed_authorization_requests"])
	}
	s.Set(func(f *astest.Faults) { f.DiscoveryStatus = http.StatusServiceUnavailable })
	if resp, _ := getJSON(t, s.URL+"/.well-known/openid-configuration", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("DiscoveryStatus: got %s", resp.Status)
	}
	wantCounts(t, s, map[string]int{"discovery": 3})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestCodeFlow(t *testing.T) {
	t.Parallel()
	s, cfg := start(t, oauth2.AuthStyleInHeader)
	l := newLogin()
	redirect, err := s.Authorize(l.url(cfg))
	if err != nil {
		t.Fatal(err)
	}
	q := redirect.Query()
	if got := redirect.Scheme + "://" + redirect.Host + redirect.Path; got != s.RedirectURI {
		t.Errorf("redirected to %s, want %s", got, s.RedirectURI)
	}
	if q.Get("state") != l.state || q.Get("iss") != s.URL || q.Get("code") == "" {
		t.Fatalf("redirect query %v: want state, iss %s and code", q, s.URL)
	}
	start := time.Now()
	tok, err := cfg.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "Bearer" || tok.RefreshToken == "" || tok.Extra("scope") != "openid profile email" {
		t.Errorf("token %+v, scope %v", tok, tok.Extra("scope"))
	}
	if d := tok.Expiry.Sub(start); d < 299*time.Second || d > 301*time.Second {
		t.Errorf("expires in %v, want 5m", d)
	}

	id := idToken(t, s, tok)
	if id.verifyErr != nil {
		t.Fatalf("ID token does not verify: %v", id.verifyErr)
	}
	if id.header["alg"] != "RS256" || id.header["kid"] != keySet(t, s).Keys[0].KeyID {
		t.Errorf("ID token header %v", id.header)
	}
	// The claims are oidcfake's (TestRedeem); astest's are its user's.
	if id.str("sub") != "demo-user" || id.str("nonce") != l.nonce || id.str("name") != "Demo User" || id.str("email") != "demo-user@example.com" {
		t.Errorf("ID token claims %v", id.claims)
	}
	if at := parseJWT(t, s, tok.AccessToken); at.verifyErr != nil || at.str("aud") != "api" || at.str("client_id") != s.ClientID {
		t.Errorf("access token claims %v, verify %v", at.claims, at.verifyErr)
	}

	resp, ui := userinfo(t, s, tok.AccessToken)
	if resp.StatusCode != http.StatusOK || ui["sub"] != "demo-user" || ui["name"] != "Demo User" || ui["email"] != "demo-user@example.com" {
		t.Errorf("userinfo %s %v", resp.Status, ui)
	}
	wantCounts(t, s, map[string]int{"authorize": 1, "token:authorization_code": 1, "userinfo": 1, "token:refresh_token": 0})
	if s.LastClientAuth() != "client_secret_basic" {
		t.Errorf("LastClientAuth = %q", s.LastClientAuth())
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	// Characters that client_secret_basic must form-encode (RFC 6749 §2.3.1).
	s := astest.New(t, astest.Options{
		ClientSecret: "p@ss word+/%", RedirectURI: "http://localhost:8080/cb?x=1",
	})
	if s.ClientID != "spa-client" || s.ClientSecret != "p@ss word+/%" || s.RedirectURI != "http://localhost:8080/cb?x=1" {
		t.Fatalf("server fields %q %q %q", s.ClientID, s.ClientSecret, s.RedirectURI)
	}
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cfg := config(t, s, style)
		l := newLogin()
		redirect, err := s.Authorize(l.url(cfg))
		if err != nil {
			t.Fatal(err)
		}
		if redirect.Path != "/cb" || redirect.Query().Get("x") != "1" {
			t.Errorf("redirect %s lost the registered URI's query", redirect)
		}
		tok, err := cfg.Exchange(t.Context(), redirect.Query().Get("code"), oauth2.VerifierOption(l.verifier))
		if err != nil {
			t.Fatalf("style %d: %v", style, err)
		}
		if id := idToken(t, s, tok); id.str("sub") != s.Subject() || id.str("aud") != "spa-client" {
			t.Errorf("ID token claims %v", id.claims)
		}
	}
}

// TestClientAuthentication: what LastClientAuth records, and the token
// endpoint's answers around the shared client authentication (its rules
// are tested in internal/oidcfake).
func TestClientAuthentication(t *testing.T) {
	t.Parallel()
	s := astest.New(t, astest.Options{})
	tests := []struct {
		name       string
		auth       creds
		form       url.Values
		wantStatus int
		wantError  string
		wantMethod string
	}{
		{"basic, bad code", basic(s.ClientID, s.ClientSecret), nil, http.StatusBadRequest, "invalid_grant", "client_secret_basic"},
		{"post, bad code", post(s.ClientID, s.ClientSecret), nil, http.StatusBadRequest, "invalid_grant", "client_secret_post"},
		{"basic wrong secret", basic(s.ClientID, "wrong"), nil, http.StatusUnauthorized, "invalid_client", "client_secret_basic"},
		{"none", creds{}, nil, http.StatusUnauthorized, "invalid_client", ""},
		{"both methods", creds{"both", s.ClientID, s.ClientSecret}, nil, http.StatusBadRequest, "invalid_request", ""},
		{"unsupported grant type", basic(s.ClientID, s.ClientSecret), url.Values{"grant_type": {"password"}},
			http.StatusBadRequest, "unsupported_grant_type", "client_secret_basic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {s.RedirectURI}}
			if tt.form != nil {
				form = tt.form
			}
			resp, body := postForm(t, s.URL+"/token", form, tt.auth)
			if resp.StatusCode != tt.wantStatus || body["error"] != tt.wantError {
				t.Errorf("got %s %v, want %d %s", resp.Status, body, tt.wantStatus, tt.wantError)
			}
			if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("headers %v", resp.Header)
			}
			if tt.wantStatus == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != `Basic realm="astest"` {
				t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
			}
			if got := s.LastClientAuth(); got != tt.wantMethod {
				t.Errorf("LastClientAuth = %q, want %q", got, tt.wantMethod)
			}
		})
	}
	wantCounts(t, s, map[string]int{"token:password": 1})
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	s, cfg := start(t, oauth2.AuthStyleInParams)

	t.Run("scope", func(t *testing.T) {
		tok, _ := signIn(t, s, cfg)
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "scope": {"openid admin"}}
		resp, body := postForm(t, s.URL+"/token", form, post(s.ClientID, s.ClientSecret))
		if resp.StatusCode != http.StatusBadRequest || body["error"] != "invalid_scope" {
			t.Errorf("widening: %s %v", resp.Status, body)
		}
		form.Set("scope", "openid")
		resp, body = postForm(t, s.URL+"/token", form, post(s.ClientID, s.ClientSecret))
		if resp.StatusCode != http.StatusOK || body["scope"] != "openid" {
			t.Errorf("narrowing: %s %v", resp.Status, body)
		}
	})
}

// TestPlainOAuth: a request without openid is plain OAuth 2.0: no ID token
// from the code grant nor from a refresh.
func TestPlainOAuth(t *testing.T) {
	t.Parallel()
	s, cfg := start(t, oauth2.AuthStyleInHeader)
	cfg.Scopes = []string{"api:read", "profile"}
	tok, _ := signIn(t, s, cfg)
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.Extra("id_token") != nil {
		t.Fatalf("code grant: access token %v, refresh token %v, id_token %v", tok.AccessToken != "", tok.RefreshToken != "", tok.Extra("id_token"))
	}
	next, err := refresh(t, cfg, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if next.AccessToken == "" || next.Extra("id_token") != nil {
		t.Fatalf("refresh: access token %v, id_token %v", next.AccessToken != "", next.Extra("id_token"))
	}

	t.Run("IDTokenWithoutOpenID", func(t *testing.T) {
		setFaults(t, s, func(f *astest.Faults) { f.IDTokenWithoutOpenID = true })
		tok, _ := signIn(t, s, cfg)
		idToken(t, s, tok)
		next, err := refresh(t, cfg, tok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		idToken(t, s, next)
	})
	t.Run("IDTokenOmitted", func(t *testing.T) {
		setFaults(t, s, func(f *astest.Faults) { f.IDTokenOmitted = true })
		oidc := config(t, s, oauth2.AuthStyleInHeader)
		if tok, _ := signIn(t, s, oidc); tok.Extra("id_token") != nil {
			t.Fatal("an openid code grant got an ID token")
		}
	})
}

// pushAuthorization sends l's request to /par and returns the answer.
func pushAuthorization(t *testing.T, s *astest.Server, l login, change func(url.Values), auth creds) (*http.Response, map[string]any) {
	t.Helper()
	form := url.Values{
		"response_type":         {"code"},
		"client_id":             {s.ClientID},
		"redirect_uri":          {s.RedirectURI},
		"scope":                 {"openid profile"},
		"state":                 {l.state},
		"nonce":                 {l.nonce},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(l.verifier)},
		"code_challenge_method": {"S256"},
	}
	if change != nil {
		change(form)
	}
	return postForm(t, s.URL+"/par", form, auth)
}

func parAuthorizeURL(s *astest.Server, requestURI string) string {
	return s.URL + "/authorize?" + url.Values{"client_id": {s.ClientID}, "request_uri": {requestURI}}.Encode()
}

func TestPAR(t *testing.T) {
	t.Parallel()
	s, cfg := start(t, oauth2.AuthStyleInHeader)

	for _, tt := range []struct {
		name string
		auth creds
		want string
	}{
		{"basic", basic(s.ClientID, s.ClientSecret), "client_secret_basic"},
		{"post", post(s.ClientID, s.ClientSecret), "client_secret_post"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLogin()
			resp, body := pushAuthorization(t, s, l, nil, tt.auth)
			uri, _ := body["request_uri"].(string)
			if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:") || body["expires_in"] != 60.0 {
				t.Fatalf("PAR: %s %v", resp.Status, body)
			}
			if s.LastClientAuth() != tt.want {
				t.Errorf("LastClientAuth = %q", s.LastClientAuth())
			}
			redirect, err := s.Authorize(parAuthorizeURL(s, uri))
			if err != nil {
				t.Fatal(err)
			}
			q := redirect.Query()
			if q.Get("state") != l.state || q.Get("iss") != s.URL {
				t.Fatalf("redirect %s", redirect)
			}
			tok, err := cfg.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(l.verifier))
			if err != nil {
				t.Fatal(err)
			}
			if id := idToken(t, s, tok); id.str("nonce") != l.nonce || tok.Extra("scope") != "openid profile" {
				t.Errorf("nonce %q scope %v: pushed parameters were not used", id.str("nonce"), tok.Extra("scope"))
			}
			// request_uri is single use.
			if _, err := s.Authorize(parAuthorizeURL(s, uri)); err == nil || !strings.Contains(err.Error(), "400") {
				t.Errorf("second use of request_uri: %v", err)
			}
		})
	}

	for _, tt := range []struct {
		name       string
		change     func(url.Values)
		auth       creds
		wantStatus int
		wantError  string
	}{
		{"wrong secret", nil, basic(s.ClientID, "wrong"), http.StatusUnauthorized, "invalid_client"},
		{"plain PKCE", func(f url.Values) { f.Set("code_challenge_method", "plain") }, basic(s.ClientID, s.ClientSecret), http.StatusBadRequest, "invalid_request"},
		{"other redirect_uri", func(f url.Values) { f.Set("redirect_uri", "https://evil.example/") }, basic(s.ClientID, s.ClientSecret), http.StatusBadRequest, "invalid_request"},
		{"no scope", func(f url.Values) { f.Del("scope") }, basic(s.ClientID, s.ClientSecret), http.StatusBadRequest, "invalid_scope"},
		{"request_uri inside", func(f url.Values) { f.Set("request_uri", "urn:x") }, basic(s.ClientID, s.ClientSecret), http.StatusBadRequest, "invalid_request"},
		{"client_id mismatch", func(f url.Values) { f.Set("client_id", "other") }, basic(s.ClientID, s.ClientSecret), http.StatusUnauthorized, "invalid_client"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := pushAuthorization(t, s, newLogin(), tt.change, tt.auth)
			if resp.StatusCode != tt.wantStatus || body["error"] != tt.wantError {
				t.Errorf("got %s %v, want %d %s", resp.Status, body, tt.wantStatus, tt.wantError)
			}
		})
	}

	t.Run("unknown request_uri", func(t *testing.T) {
		if _, err := s.Authorize(parAuthorizeURL(s, "urn:ietf:params:oauth:request_uri:nope")); err == nil {
			t.Error("unknown request_uri accepted")
		}
	})
}

func TestRequirePAR(t *testing.T) {
	t.Parallel()
	s, cfg := start(t, oauth2.AuthStyleInHeader)
	s.Set(func(f *astest.Faults) { f.RequirePAR = true })

	l := newLogin()
	redirect, err := s.Authorize(l.url(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if q := redirect.Query(); q.Get("error") != "invalid_request" || q.Get("code") != "" || q.Get("state") != l.state || q.Get("iss") != s.URL {
		t.Errorf("authorize without PAR: %s", redirect)
	}

	_, body := pushAuthorization(t, s, l, nil, basic(s.ClientID, s.ClientSecret))
	redirect, err = s.Authorize(parAuthorizeURL(s, body["request_uri"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	if redirect.Query().Get("code") == "" {
		t.Errorf("authorize with PAR: %s", redirect)
	}
	wantCounts(t, s, map[string]int{"par": 1, "authorize": 2})
}

// TestAuthorizeValidation: the checks astest adds to oidcfake's
// CheckAuthRequest (one PKCE row shows it is called), and the refusals
// without a redirect.
func TestAuthorizeValidation(t *testing.T) {
	t.Parallel()
	s, cfg := start(t, oauth2.AuthStyleInHeader)
	tests := []struct {
		name      string
		change    func(url.Values)
		wantError string // "" means no redirect: 400 from the AS itself
		wantState bool
	}{
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request", true},
		{"no state", func(q url.Values) { q.Del("state") }, "invalid_request", false},
		{"no scope", func(q url.Values) { q.Set("scope", " ") }, "invalid_scope", true},
		{"unknown client", func(q url.Values) { q.Set("client_id", "other") }, "", false},
		{"no client", func(q url.Values) { q.Del("client_id") }, "", false},
		{"other redirect_uri", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/") }, "", false},
		{"redirect_uri prefix", func(q url.Values) { q.Set("redirect_uri", s.RedirectURI+"x") }, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLogin()
			u := must(url.Parse(l.url(cfg)))
			q := u.Query()
			tt.change(q)
			u.RawQuery = q.Encode()
			redirect, err := s.Authorize(u.String())
			if tt.wantError == "" {
				if err == nil || !strings.Contains(err.Error(), "400") {
					t.Fatalf("got redirect %v, err %v; want 400 without redirect", redirect, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := redirect.Query()
			if got.Get("error") != tt.wantError || got.Get("code") != "" || got.Get("error_description") == "" {
				t.Errorf("redirect %s, want error %s", redirect, tt.wantError)
			}
			if tt.wantState && got.Get("state") != l.state {
				t.Errorf("state %q", got.Get("state"))
			}
		})
	}
}

func TestAuthorizeFaults(t *testing.T) {
	t.Parallel()
	s, cfg := start(t, oauth2.AuthStyleInHeader)
	tests := []struct {
		name  string
		fault func(*astest.Faults)
		check func(t *testing.T, q url.Values, l login)
	}{
		{"AuthorizeError login_required", func(f *astest.Faults) { f.AuthorizeError = "login_required" },
			func(t *testing.T, q url.Values, l login) {
				if q.Get("error") != "login_required" || q.Get("error_description") == "" || q.Get("code") != "" ||
					q.Get("state") != l.state || q.Get("iss") != s.URL {
					t.Errorf("query %v", q)
				}
			}},
		{"AuthorizeError access_denied", func(f *astest.Faults) { f.AuthorizeError = "access_denied" },
			func(t *testing.T, q url.Values, l login) {
				if q.Get("error") != "access_denied" || q.Get("state") != l.state {
					t.Errorf("query %v", q)
				}
			}},
		{"RedirectIss missing", func(f *astest.Faults) { f.RedirectIss = "missing" },
			func(t *testing.T, q url.Values, _ login) {
				if q.Has("iss") || q.Get("code") == "" {
					t.Errorf("query %v", q)
				}
			}},
		{"RedirectIss wrong", func(f *astest.Faults) { f.RedirectIss = "wrong" },
			func(t *testing.T, q url.Values, _ login) {
				if iss := q.Get("iss"); iss == "" || iss == s.URL || q.Get("code") == "" {
					t.Errorf("query %v", q)
				}
			}},
		{"RedirectIss verbatim", func(f *astest.Faults) { f.RedirectIss = s.URL + "/" },
			func(t *testing.T, q url.Values, _ login) {
				if q.Get("iss") != s.URL+"/" {
					t.Errorf("query %v", q)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setFaults(t, s, tt.fault)
			l := newLogin()
			redirect, err := s.Authorize(l.url(cfg))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, redirect.Query(), l)
		})
	}
}

func TestTokenFaults(t *testing.T) {
	t.Parallel()
	s, cfg := start(t, oauth2.AuthStyleInHeader)
	tests := []struct {
		name    string
		fault   func(*astest.Faults)
		timeout time.Duration
		check   func(t *testing.T, err error, took time.Duration)
	}{
		{"TokenError invalid_grant", func(f *astest.Faults) { f.TokenError = "invalid_grant" }, 0,
			func(t *testing.T, err error, _ time.Duration) { wantOAuthErr(t, err, 400, "invalid_grant") }},
		{"TokenError invalid_scope", func(f *astest.Faults) { f.TokenError = "invalid_scope" }, 0,
			func(t *testing.T, err error, _ time.Duration) { wantOAuthErr(t, err, 400, "invalid_scope") }},
		{"TokenError invalid_client", func(f *astest.Faults) { f.TokenError = "invalid_client" }, 0,
			func(t *testing.T, err error, _ time.Duration) {
				wantOAuthErr(t, err, 401, "invalid_client")
				var re *oauth2.RetrieveError
				if errors.As(err, &re); re.Response.Header.Get("WWW-Authenticate") == "" {
					t.Error("no WWW-Authenticate")
				}
			}},
		{"TokenStatus 500", func(f *astest.Faults) { f.TokenStatus = 500 }, 0,
			func(t *testing.T, err error, _ time.Duration) { wantOAuthErr(t, err, 500, "server_error") }},
		{"TokenStatus 503", func(f *astest.Faults) { f.TokenStatus = 503 }, 0,
			func(t *testing.T, err error, _ time.Duration) { wantOAuthErr(t, err, 503, "temporarily_unavailable") }},
		{"TokenGarbage", func(f *astest.Faults) { f.TokenGarbage = true }, 0,
			func(t *testing.T, err error, _ time.Duration) {
				var re *oauth2.RetrieveError
				if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), "cannot parse json") {
					t.Errorf("got %v, want a JSON parse error", err)
				}
			}},
		{"TokenDelay outlasts the client", func(f *astest.Faults) { f.TokenDelay = time.Hour }, 100 * time.Millisecond,
			func(t *testing.T, err error, took time.Duration) {
				if !errors.Is(err, context.DeadlineExceeded) || took > 5*time.Second {
					t.Errorf("got %v after %v, want the client's deadline", err, took)
				}
			}},
		{"TokenDelay", func(f *astest.Faults) { f.TokenDelay = 200 * time.Millisecond }, 0,
			func(t *testing.T, err error, took time.Duration) {
				if err != nil || took < 200*time.Millisecond {
					t.Errorf("got %v after %v, want success after at least 200ms", err, took)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() { s.Set(reset) })
			l := newLogin()
			code := authorize(t, s, cfg, l)
			s.Set(tt.fault)
			ctx := t.Context()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			start := time.Now()
			_, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(l.verifier))
			tt.check(t, err, time.Since(start))
			if err == nil {
				return
			}
			// Faults come first: the refused request did not use the code.
			s.Set(reset)
			if _, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(l.verifier)); err != nil {
				t.Errorf("code unusable after a faulted request: %v", err)
			}
		})
	}

	t.Run("faults apply to refresh", func(t *testing.T) {
		t.Cleanup(func() { s.Set(reset) })
		tok, _ := signIn(t, s, cfg)
		s.Set(func(f *astest.Faults) { f.TokenError = "invalid_grant" })
		_, err := refresh(t, cfg, tok.RefreshToken)
		wantOAuthErr(t, err, 400, "invalid_grant")
		s.Set(reset)
		if _, err := refresh(t, cfg, tok.RefreshToken); err != nil {
			t.Errorf("refresh token unusable after a faulted request: %v", err)
		}
	})
}

func TestIDTokenFaults(t *testing.T) {
	t.Parallel()
	s, cfg := start(t, oauth2.AuthStyleInHeader)
	kid := keySet(t, s).Keys[0].KeyID
	tests := []struct {
		name  string
		fault func(*astest.Faults)
		// check gets the ID token and the nonce it should carry ("" on
		// refresh).
		check func(t *testing.T, id parsedJWT, nonce string)
	}{
		{"none", func(*astest.Faults) {}, func(t *testing.T, id parsedJWT, nonce string) {
			now := time.Now()
			if id.verifyErr != nil || id.str("iss") != s.URL || id.str("aud") != s.ClientID || id.str("azp") != s.ClientID ||
				id.str("nonce") != nonce || !id.time("exp").After(now) || id.time("iat").After(now.Add(time.Second)) {
				t.Errorf("claims %v, verify %v", id.claims, id.verifyErr)
			}
		}},
		{"IDTokenWrongIssuer", func(f *astest.Faults) { f.IDTokenWrongIssuer = true }, func(t *testing.T, id parsedJWT, _ string) {
			if id.verifyErr != nil || id.str("iss") == s.URL || id.str("iss") == "" {
				t.Errorf("iss %q, verify %v", id.str("iss"), id.verifyErr)
			}
		}},
		{"IDTokenBadSignature", func(f *astest.Faults) { f.IDTokenBadSignature = true }, func(t *testing.T, id parsedJWT, _ string) {
			if id.verifyErr == nil || id.header["kid"] != kid || id.header["alg"] != "RS256" {
				t.Errorf("header %v, verify %v", id.header, id.verifyErr)
			}
		}},
		{"IDTokenAlgNone", func(f *astest.Faults) { f.IDTokenAlgNone = true }, func(t *testing.T, id parsedJWT, _ string) {
			if id.verifyErr == nil || id.header["alg"] != "none" || !strings.HasSuffix(id.raw, ".") || id.str("sub") == "" {
				t.Errorf("header %v, verify %v", id.header, id.verifyErr)
			}
		}},
		{"IDTokenExpired", func(f *astest.Faults) { f.IDTokenExpired = true }, func(t *testing.T, id parsedJWT, _ string) {
			if id.verifyErr != nil || !id.time("exp").Before(time.Now()) {
				t.Errorf("exp %v", id.time("exp"))
			}
		}},
		{"IDTokenWrongNonce", func(f *astest.Faults) { f.IDTokenWrongNonce = true }, func(t *testing.T, id parsedJWT, nonce string) {
			if id.verifyErr != nil || id.str("nonce") == "" || id.str("nonce") == nonce {
				t.Errorf("nonce %q, sent %q", id.str("nonce"), nonce)
			}
		}},
		{"IDTokenWrongAudience", func(f *astest.Faults) { f.IDTokenWrongAudience = true }, func(t *testing.T, id parsedJWT, _ string) {
			if id.verifyErr != nil || id.str("aud") == s.ClientID || id.str("aud") == "" {
				t.Errorf("aud %q", id.str("aud"))
			}
		}},
		{"IDTokenWrongAzp", func(f *astest.Faults) { f.IDTokenWrongAzp = true }, func(t *testing.T, id parsedJWT, _ string) {
			if id.verifyErr != nil || id.str("azp") == s.ClientID || id.str("azp") == "" || id.str("aud") != s.ClientID {
				t.Errorf("azp %q aud %q", id.str("azp"), id.str("aud"))
			}
		}},
		{"IDTokenIssuedInFuture", func(f *astest.Faults) { f.IDTokenIssuedInFuture = true }, func(t *testing.T, id parsedJWT, _ string) {
			if id.verifyErr != nil || !id.time("iat").After(time.Now().Add(5*time.Minute)) {
				t.Errorf("iat %v", id.time("iat"))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setFaults(t, s, tt.fault)
			tok, l := signIn(t, s, cfg)
			t.Run("code", func(t *testing.T) { tt.check(t, idToken(t, s, tok), l.nonce) })
			next, err := refresh(t, cfg, tok.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			t.Run("refresh", func(t *testing.T) { tt.check(t, idToken(t, s, next), "") })
			// The access token is never affected.
			if resp, _ := userinfo(t, s, next.AccessToken); resp.StatusCode != http.StatusOK {
				t.Errorf("userinfo: %s", resp.Status)
			}
		})
	}
}

func TestAccessTokenSwitches(t *testing.T) {
	t.Parallel()
	s, cfg := start(t, oauth2.AuthStyleInHeader)

	t.Run("AccessTokenTTL", func(t *testing.T) {
		setFaults(t, s, func(f *astest.Faults) { f.AccessTokenTTL = 90 * time.Second })
		tok, _ := signIn(t, s, cfg)
		at := parseJWT(t, s, tok.AccessToken)
		if tok.Extra("expires_in") != 90.0 || at.time("exp").Sub(at.time("iat")) != 90*time.Second {
			t.Errorf("expires_in %v, exp-iat %v", tok.Extra("expires_in"), at.time("exp").Sub(at.time("iat")))
		}
	})
	t.Run("negative AccessTokenTTL", func(t *testing.T) {
		setFaults(t, s, func(f *astest.Faults) { f.AccessTokenTTL = -time.Minute })
		tok, _ := signIn(t, s, cfg)
		if resp, _ := userinfo(t, s, tok.AccessToken); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("userinfo with an expired access token: %s", resp.Status)
		}
		// Refresh is still possible: only the access token is expired.
		s.Set(reset)
		next, err := refresh(t, cfg, tok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if resp, _ := userinfo(t, s, next.AccessToken); resp.StatusCode != http.StatusOK {
			t.Errorf("userinfo after refresh: %s", resp.Status)
		}
	})
	t.Run("AccessTokenPadding", func(t *testing.T) {
		setFaults(t, s, func(f *astest.Faults) { f.AccessTokenPadding = 6 << 10 })
		tok, _ := signIn(t, s, cfg)
		at := parseJWT(t, s, tok.AccessToken)
		if len(at.str("pad")) != 6<<10 || len(tok.AccessToken) < 8<<10 || at.verifyErr != nil {
			t.Errorf("pad %d bytes, token %d bytes, verify %v", len(at.str("pad")), len(tok.AccessToken), at.verifyErr)
		}
		if resp, _ := userinfo(t, s, tok.AccessToken); resp.StatusCode != http.StatusOK {
			t.Errorf("userinfo with a padded token: %s", resp.Status)
		}
		s.Set(reset)
		plain, _ := signIn(t, s, cfg)
		if len(plain.AccessToken) > 2<<10 {
			t.Errorf("unpadded token is %d bytes", len(plain.AccessToken))
		}
	})
}

func TestUserinfo(t *testing.T) {
	t.Parallel()
	s, cfg := start(t, oauth2.AuthStyleInHeader)
	tok, _ := signIn(t, s, cfg)
	tests := []struct {
		name       string
		method     string
		auth       string
		fault      func(*astest.Faults)
		wantStatus int
	}{
		{"GET", http.MethodGet, "Bearer " + tok.AccessToken, nil, http.StatusOK},
		{"POST", http.MethodPost, "Bearer " + tok.AccessToken, nil, http.StatusOK},
		{"no token", http.MethodGet, "", nil, http.StatusUnauthorized},
		{"UserinfoStatus 503", http.MethodGet, "Bearer " + tok.AccessToken, func(f *astest.Faults) { f.UserinfoStatus = 503 }, http.StatusServiceUnavailable},
		{"UserinfoStatus 401", http.MethodGet, "Bearer " + tok.AccessToken, func(f *astest.Faults) { f.UserinfoStatus = 401 }, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() { s.Set(reset) })
			if tt.fault != nil {
				s.Set(tt.fault)
			}
			req := must(http.NewRequestWithContext(t.Context(), tt.method, s.URL+"/userinfo", nil))
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, body := do(t, req)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got %s %v, want %d", resp.Status, body, tt.wantStatus)
			}
			if got := s.LastUserinfo(); got.Method != tt.method || got.Body != "" {
				t.Errorf("LastUserinfo %+v, want method %s and no body", got, tt.method)
			}
			switch tt.wantStatus {
			case http.StatusOK:
				if body["sub"] != "demo-user" || body["email"] != "demo-user@example.com" || body["name"] != "Demo User" {
					t.Errorf("body %v", body)
				}
			case http.StatusUnauthorized:
				want := `Bearer error="invalid_token"`
				if tt.auth == "" {
					want = `Bearer realm="astest"` // RFC 6750 §3.1: no error code without a token
				}
				if got := resp.Header.Get("WWW-Authenticate"); got != want {
					t.Errorf("WWW-Authenticate %q", got)
				}
			}
		})
	}
	wantCounts(t, s, map[string]int{"userinfo": len(tests)})
}

func TestEndSession(t *testing.T) {
	t.Parallel()
	s := astest.New(t, astest.Options{})
	q := url.Values{
		"client_id":                {s.ClientID},
		"id_token_hint":            {"hint"},
		"post_logout_redirect_uri": {"http://www.example.localhost:3000/"},
		"state":                    {"xyz"},
	}
	resp, err := http.Get(s.URL + "/logout?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.HasPrefix(string(body), "<!doctype html>") {
		t.Errorf("got %s %q", resp.Status, body)
	}
	wantCounts(t, s, map[string]int{"end_session": 1})
}

// TestRevocation: what Revoked records, over the store's revocation
// (tested in internal/oidcfake).
func TestRevocation(t *testing.T) {
	t.Parallel()
	s, cfg := start(t, oauth2.AuthStyleInHeader)
	revoke := func(t *testing.T, token string, auth creds) (*http.Response, map[string]any) {
		t.Helper()
		return postForm(t, s.URL+"/revoke", url.Values{"token": {token}, "token_type_hint": {"refresh_token"}}, auth)
	}

	t.Run("refresh token", func(t *testing.T) {
		tok, _ := signIn(t, s, cfg)
		if s.Revoked(tok.RefreshToken) {
			t.Fatal("Revoked before revocation")
		}
		if resp, _ := revoke(t, tok.RefreshToken, basic(s.ClientID, s.ClientSecret)); resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %s", resp.Status)
		}
		if !s.Revoked(tok.RefreshToken) || s.Revoked(tok.AccessToken) || s.LastClientAuth() != "client_secret_basic" {
			t.Errorf("Revoked(refresh) %v, Revoked(access) %v, LastClientAuth %q",
				s.Revoked(tok.RefreshToken), s.Revoked(tok.AccessToken), s.LastClientAuth())
		}
		_, err := refresh(t, cfg, tok.RefreshToken)
		wantOAuthErr(t, err, http.StatusBadRequest, "invalid_grant")
		// RFC 7009 §2.1: the grant's access tokens go too.
		if resp, _ := userinfo(t, s, tok.AccessToken); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("userinfo: %s", resp.Status)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		tok, _ := signIn(t, s, cfg)
		resp, body := revoke(t, tok.RefreshToken, basic(s.ClientID, "wrong"))
		if resp.StatusCode != http.StatusUnauthorized || body["error"] != "invalid_client" || s.Revoked(tok.RefreshToken) {
			t.Errorf("got %s %v, Revoked %v", resp.Status, body, s.Revoked(tok.RefreshToken))
		}
		if _, err := refresh(t, cfg, tok.RefreshToken); err != nil {
			t.Errorf("refresh: %v", err)
		}
	})
	wantCounts(t, s, map[string]int{"revocation": 2})
}

func TestClose(t *testing.T) {
	t.Parallel()
	s, cfg := start(t, oauth2.AuthStyleInHeader)
	l := newLogin()
	code := authorize(t, s, cfg, l)
	s.Set(func(f *astest.Faults) { f.TokenDelay = time.Hour })
	done := make(chan error, 1)
	go func() {
		_, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(l.verifier))
		done <- err
	}()
	// Wait until the request is inside the server, then Close must not wait
	// out the delay.
	bintest.Eventually(t, 5*time.Second, "the token request", func() bool { return s.Count("token:authorization_code") > 0 })
	start := time.Now()
	s.Close()
	s.Close()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v", took)
	}
	if err := <-done; err == nil {
		t.Error("delayed exchange succeeded after Close")
	}
	if _, err := http.Get(s.URL + "/.well-known/openid-configuration"); err == nil {
		t.Error("server still answers after Close")
	}
}

// TestRotateKey: after a rotation new tokens carry the new kid, the JWKS
// publishes the new key first and keeps the old one, and access tokens
// issued before the rotation are still accepted.
func TestRotateKey(t *testing.T) {
	t.Parallel()
	s, cfg := start(t, 0)
	before, _ := signIn(t, s, cfg)
	oldKid := keySet(t, s).Keys[0].KeyID
	newKid, err := s.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	set := keySet(t, s)
	wantCounts(t, s, map[string]int{"jwks": 2})
	if newKid == oldKid || len(set.Keys) != 2 || set.Keys[0].KeyID != newKid || set.Keys[1].KeyID != oldKid {
		t.Fatalf("JWKS kids %v after rotating from %s to %s", []string{set.Keys[0].KeyID, set.Keys[len(set.Keys)-1].KeyID}, oldKid, newKid)
	}
	after, _ := signIn(t, s, cfg)
	if id := idToken(t, s, after); id.header["kid"] != newKid || id.verifyErr != nil {
		t.Errorf("ID token after rotation: kid %v, %v", id.header["kid"], id.verifyErr)
	}
	for _, tok := range []string{before.AccessToken, after.AccessToken} {
		if resp, _ := userinfo(t, s, tok); resp.StatusCode != 200 {
			t.Errorf("userinfo: %s", resp.Status)
		}
	}

	s.Set(func(f *astest.Faults) { f.IDTokenUnknownKid = true })
	tok, _ := signIn(t, s, cfg)
	if id := idToken(t, s, tok); id.header["kid"] == newKid || id.verifyErr == nil {
		t.Errorf("IDTokenUnknownKid: kid %v verifies against the JWKS", id.header["kid"])
	}
}

// TestSetSession: ID tokens of logins authorized after SetSession carry its
// sid; earlier and "" ones none.
func TestSetSession(t *testing.T) {
	s, cfg := start(t, oauth2.AuthStyleInHeader)
	tok, _ := signIn(t, s, cfg)
	if _, ok := idToken(t, s, tok).claims["sid"]; ok {
		t.Fatal("sid without SetSession")
	}
	s.SetSession("op-1")
	tok, _ = signIn(t, s, cfg)
	if got := idToken(t, s, tok).str("sid"); got != "op-1" {
		t.Fatalf("sid %q, want op-1", got)
	}
}

// TestSignLogoutToken: a logout token as §2.4 shapes it, signed as asked.
func TestSignLogoutToken(t *testing.T) {
	s := astest.New(t, astest.Options{})
	now := time.Now()
	c := s.LogoutClaims(s.Subject(), "op-1", now)
	raw, err := s.SignLogoutToken(c, astest.Signing{})
	if err != nil {
		t.Fatal(err)
	}
	p := parseJWT(t, s, raw)
	if p.verifyErr != nil || p.header["typ"] != "logout+jwt" || p.header["alg"] != "RS256" {
		t.Fatalf("header %v, verify %v", p.header, p.verifyErr)
	}
	events, _ := p.claims["events"].(map[string]any)
	if _, ok := events[astest.BackchannelLogoutEvent].(map[string]any); !ok || p.str("sid") != "op-1" ||
		p.str("sub") != s.Subject() || p.str("aud") != s.ClientID || p.str("jti") == "" || p.claims["nonce"] != nil {
		t.Fatalf("claims %v", p.claims)
	}
	if raw, _ := s.SignLogoutToken(c, astest.Signing{OtherKey: true}); parseJWT(t, s, raw).verifyErr == nil {
		t.Fatal("OtherKey: the signature verifies")
	}
	if raw, _ := s.SignLogoutToken(c, astest.Signing{Alg: "none", Typ: "-"}); raw[len(raw)-1] != '.' {
		t.Fatalf("alg none: %q", raw)
	}
	raw, _ = s.SignLogoutToken(c, astest.Signing{Alg: "RS512", Typ: "-"})
	if p := parseJWT(t, s, raw); p.header["alg"] != "RS512" || p.header["typ"] != nil {
		t.Fatalf("RS512 without typ: header %v", p.header)
	}
}
