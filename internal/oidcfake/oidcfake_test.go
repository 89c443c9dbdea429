package oidcfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestPKCEValid(t *testing.T) {
	// RFC 7636 Appendix B.
	const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	tests := []struct {
		name, verifier, challenge string
		want                      bool
	}{
		{"rfc7636 vector", verifier, challenge, true},
		{"wrong verifier", verifier[:42] + "Y", challenge, false},
		{"too short", verifier[:42], challenge, false},
		{"bad character", verifier[:42] + "+", challenge, false},
		{"plain not accepted", verifier, verifier, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PKCEValid(tt.verifier, tt.challenge); got != tt.want {
				t.Errorf("PKCEValid = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClientCredentials(t *testing.T) {
	tests := []struct {
		name            string
		user, pass      string // Basic, when user is not empty
		form            url.Values
		wantID, wantSec string
		wantMethod      string
		wantErr         error
	}{
		{name: "basic form-encoded", user: "my%3Aclient", pass: "s%C3%A9cret+1",
			wantID: "my:client", wantSec: "sécret 1", wantMethod: AuthBasic},
		{name: "basic with matching client_id", user: "c", pass: "s",
			form: url.Values{"client_id": {"c"}}, wantID: "c", wantSec: "s", wantMethod: AuthBasic},
		{name: "basic with other client_id", user: "c", pass: "s",
			form: url.Values{"client_id": {"d"}}, wantMethod: AuthBasic, wantErr: ErrBadClientAuth},
		{name: "basic bad escape", user: "c%zz", pass: "s", wantMethod: AuthBasic, wantErr: ErrBadClientAuth},
		{name: "post", form: url.Values{"client_id": {"c"}, "client_secret": {"s"}},
			wantID: "c", wantSec: "s", wantMethod: AuthPost},
		{name: "both", user: "c", pass: "s",
			form: url.Values{"client_id": {"c"}, "client_secret": {"s"}}, wantErr: ErrTwoClientAuths},
		{name: "none", form: url.Values{"client_id": {"c"}}, wantErr: ErrBadClientAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tokenRequest(tt.user, tt.pass, tt.form)
			if err := r.ParseForm(); err != nil {
				t.Fatal(err)
			}
			id, secret, method, err := ClientCredentials(r)
			if !errors.Is(err, tt.wantErr) || id != tt.wantID || secret != tt.wantSec || method != tt.wantMethod {
				t.Errorf("ClientCredentials = %q, %q, %q, %v; want %q, %q, %q, %v",
					id, secret, method, err, tt.wantID, tt.wantSec, tt.wantMethod, tt.wantErr)
			}
		})
	}
}

// tokenRequest is a POST of form to /token, with Basic authentication when
// user is not empty.
func tokenRequest(user, pass string, form url.Values) *http.Request {
	r := httptest.NewRequest("POST", "/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		r.SetBasicAuth(user, pass)
	}
	return r
}

func TestHandler(t *testing.T) {
	w := httptest.NewRecorder()
	Handler(func(http.ResponseWriter, *http.Request) error {
		return &Error{401, "invalid_client", "no", `Basic realm="x"`}
	}).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != `Basic realm="x"` ||
		w.Header().Get("Content-Type") != "application/json" ||
		w.Body.String() != `{"error":"invalid_client","error_description":"no"}` {
		t.Errorf("got %d %v %s", w.Code, w.Header(), w.Body)
	}
}

// The grant store's rules are tested here once; astest's and devidp's tests
// cover only what their layers add (faults; pages, sessions, back channel).

const (
	verifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" // RFC 7636 Appendix B
	challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	redirect  = "https://app.example/cb"
)

var alice = User{Subject: "alice", Name: "Alice", Email: "alice@example.com"}

func newProvider(t *testing.T, grantTTL time.Duration) *Provider {
	t.Helper()
	p, err := New(Config{Issuer: "https://op.example", Audience: "api", Realm: "test", GrantTTL: grantTTL})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// login stores a code for client c and returns it with the form that
// redeems it.
func login(p *Provider, c, scope string, now time.Time) (string, url.Values) {
	code := p.NewCode(url.Values{"client_id": {c}, "redirect_uri": {redirect}, "code_challenge": {challenge},
		"scope": {scope}, "nonce": {"n-1"}}, alice, "sid-1", now)
	return code, url.Values{"code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
}

// issue redeems a fresh code of client "c" and issues tokens with a
// refresh token.
func issue(t *testing.T, p *Provider, now time.Time) (*Grant, *TokenResponse) {
	t.Helper()
	_, form := login(p, "c", "openid profile", now)
	g, _, err := p.Redeem("c", form, now)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.Issue(g, now, Issue{Scope: g.Scope, AccessTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return g, resp
}

func bearer(p *Provider, tok string, now time.Time) error {
	return bearerAuth(p, "Bearer "+tok, now)
}

// bearerAuth checks p.Bearer with this Authorization header.
func bearerAuth(p *Provider, auth string, now time.Time) error {
	r := httptest.NewRequest("GET", "/userinfo", nil)
	if auth != "Bearer " {
		r.Header.Set("Authorization", auth)
	}
	_, err := p.Bearer(r, now)
	return err
}

func refreshForm(rt, scope string) url.Values {
	f := url.Values{"refresh_token": {rt}}
	if scope != "" {
		f.Set("scope", scope)
	}
	return f
}

// TestRedeem: the code grant's checks (RFC 6749 §4.1.3, RFC 7636 §4.6),
// each of which uses the code up, and what a good redemption mints.
func TestRedeem(t *testing.T) {
	p := newProvider(t, 0)
	now := time.Now()
	tests := []struct {
		name   string
		client string
		change func(url.Values)
		at     time.Time
		want   error
	}{
		{"wrong verifier", "c", func(f url.Values) { f.Set("code_verifier", verifier[:42]+"Y") }, now, ErrPKCE},
		{"no verifier", "c", func(f url.Values) { f.Del("code_verifier") }, now, ErrPKCE},
		{"challenge as verifier", "c", func(f url.Values) { f.Set("code_verifier", challenge) }, now, ErrPKCE},
		{"other redirect_uri", "c", func(f url.Values) { f.Set("redirect_uri", redirect+"/x") }, now, ErrCodeRedirectURI},
		{"other client", "d", nil, now, ErrCodeClient},
		{"expired", "c", nil, now.Add(2 * time.Minute), ErrUnknownCode},
		{"unknown code", "c", func(f url.Values) { f.Set("code", "x") }, now, ErrUnknownCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, form := login(p, "c", "openid", now)
			bad := url.Values{}
			for k, v := range form {
				bad[k] = v
			}
			if tt.change != nil {
				tt.change(bad)
			}
			if _, _, err := p.Redeem(tt.client, bad, tt.at); err != tt.want {
				t.Fatalf("Redeem = %v, want %v", err, tt.want)
			}
			// A failed attempt uses the code up, so that a verifier cannot
			// be guessed by retrying.
			_, _, err := p.Redeem("c", form, now)
			if tt.name == "unknown code" {
				if err != nil {
					t.Errorf("code unusable: %v", err)
				}
			} else if err != ErrUnknownCode {
				t.Errorf("second attempt: %v", err)
			}
		})
	}

	t.Run("tokens", func(t *testing.T) {
		_, form := login(p, "c", "openid profile", now)
		g, nonce, err := p.Redeem("c", form, now)
		if err != nil || nonce != "n-1" || g.SID != "sid-1" || g.User != alice {
			t.Fatalf("Redeem = %+v, %q, %v", g, nonce, err)
		}
		resp, err := p.Issue(g, now, Issue{Scope: g.Scope, Nonce: nonce, AccessTTL: 1500 * time.Millisecond, IDToken: true})
		if err != nil || resp.ExpiresIn != 2 || resp.RefreshToken == "" || resp.TokenType != "Bearer" {
			t.Fatalf("Issue = %+v, %v", resp, err)
		}
		tok, err := jwt.ParseSigned(resp.AccessToken, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil || tok.Headers[0].ExtraHeaders["typ"] != "at+jwt" {
			t.Fatalf("access token: %v", err)
		}
		var at accessClaims
		if err := p.Keys.Verify(resp.AccessToken, &at); err != nil {
			t.Fatal(err)
		}
		if at != (accessClaims{Issuer: p.Issuer, Subject: "alice", Audience: "api", ClientID: "c", Scope: "openid profile",
			Name: "Alice", IssuedAt: now.Unix(), Expiry: now.Add(1500 * time.Millisecond).Unix(), AuthTime: now.Unix(), ID: at.ID}) || at.ID == "" {
			t.Errorf("access token claims %+v", at)
		}
		var id IDClaims
		if err := p.Keys.Verify(resp.IDToken, &id); err != nil || id.Issuer != p.Issuer {
			t.Fatal(err)
		}
		if id.Subject != "alice" || id.Audience != "c" || id.AuthorizedParty != "c" || id.Nonce != "n-1" ||
			id.SID != "sid-1" || id.Name != "Alice" || id.Email != "" || id.Expiry != now.Add(IDTokenTTL).Unix() {
			t.Errorf("ID token claims %+v", id)
		}
	})

	t.Run("code reuse revokes the first tokens", func(t *testing.T) {
		_, form := login(p, "c", "openid", now)
		g, _, err := p.Redeem("c", form, now)
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := p.Issue(g, now, Issue{Scope: g.Scope, AccessTTL: time.Minute})
		if _, _, err := p.Redeem("c", form, now); err != ErrUnknownCode {
			t.Fatalf("reuse: %v", err)
		}
		// RFC 6749 §4.1.2: tokens already issued for the code are revoked.
		if _, _, err := p.Refresh("c", refreshForm(resp.RefreshToken, ""), now); err != ErrUnknownRefresh {
			t.Errorf("refresh after code reuse: %v", err)
		}
		if err := bearer(p, resp.AccessToken, now); err != ErrInvalidToken {
			t.Errorf("access token after code reuse: %v", err)
		}
	})
}

// TestRefresh: rotation with reuse detection (RFC 9700 §4.14.2), scope
// narrowing (RFC 6749 §6), the client binding and GrantTTL.
func TestRefresh(t *testing.T) {
	p := newProvider(t, time.Hour)
	now := time.Now()
	g, first := issue(t, p, now)

	g2, scope, err := p.Refresh("c", refreshForm(first.RefreshToken, ""), now)
	if err != nil || g2 != g || scope != "openid profile" {
		t.Fatalf("Refresh = %v, %q, %v", g2, scope, err)
	}
	second, _ := p.Issue(g, now, Issue{Scope: scope, AccessTTL: time.Minute})
	// Refused refreshes retire nothing.
	if _, _, err := p.Refresh("c", refreshForm(second.RefreshToken, "openid admin"), now); err != ErrScopeWidened {
		t.Errorf("widening: %v", err)
	}
	if _, _, err := p.Refresh("d", refreshForm(second.RefreshToken, ""), now); err != ErrUnknownRefresh {
		t.Errorf("another client: %v", err)
	}
	if _, _, err := p.Refresh("c", refreshForm(second.RefreshToken, ""), now.Add(2*time.Hour)); err != ErrUnknownRefresh {
		t.Errorf("after GrantTTL: %v", err)
	}
	if _, scope, err := p.Refresh("c", refreshForm(second.RefreshToken, "openid"), now); err != nil || scope != "openid" {
		t.Errorf("narrowing: %q, %v", scope, err)
	}
	// A retired token presented again: refused, and the family revoked.
	if _, _, err := p.Refresh("c", refreshForm(first.RefreshToken, ""), now); err != ErrRefreshReuse {
		t.Fatalf("reuse: %v", err)
	}
	if _, _, err := p.Refresh("c", refreshForm(second.RefreshToken, ""), now); err != ErrUnknownRefresh {
		t.Errorf("family's newest token: %v", err)
	}
	if err := bearer(p, second.AccessToken, now); err != ErrInvalidToken {
		t.Errorf("family's access token: %v", err)
	}
	// Another login is not affected.
	_, other := issue(t, p, now)
	if _, _, err := p.Refresh("c", refreshForm(other.RefreshToken, ""), now); err != nil {
		t.Errorf("other login: %v", err)
	}
}

// TestConcurrentRefresh: of refreshes racing with one rotating token,
// exactly one wins.
func TestConcurrentRefresh(t *testing.T) {
	p := newProvider(t, 0)
	now := time.Now()
	_, resp := issue(t, p, now)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for range 20 {
		wg.Go(func() {
			if _, _, err := p.Refresh("c", refreshForm(resp.RefreshToken, ""), now); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d refreshes won, want 1", wins)
	}
}

func TestAuthenticate(t *testing.T) {
	p := newProvider(t, 0)
	secrets := map[string]string{"c": "s", "d": "t"}
	lookup := func(id string) (string, bool) { s, ok := secrets[id]; return s, ok }
	tests := []struct {
		name       string
		user, pass string // Basic, when user is not empty
		form       url.Values
		want       string
		wantStatus int
	}{
		{name: "basic", user: "c", pass: "s", want: "c"},
		{name: "post", form: url.Values{"client_id": {"c"}, "client_secret": {"s"}}, want: "c"},
		{name: "wrong secret", user: "c", pass: "x", wantStatus: 401},
		{name: "another client's secret", user: "c", pass: "t", wantStatus: 401},
		{name: "unknown client", user: "e", pass: "s", wantStatus: 401},
		{name: "empty secret", form: url.Values{"client_id": {"c"}, "client_secret": {""}}, wantStatus: 401},
		{name: "none", form: url.Values{"client_id": {"c"}}, wantStatus: 401},
		{name: "both", user: "c", pass: "s", form: url.Values{"client_secret": {"s"}}, wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := p.Authenticate(tokenRequest(tt.user, tt.pass, tt.form), lookup)
			var e *Error
			switch {
			case tt.wantStatus == 0 && (err != nil || id != tt.want):
				t.Errorf("Authenticate = %q, %v; want %q", id, err, tt.want)
			case tt.wantStatus != 0 && (!errors.As(err, &e) || e.Status != tt.wantStatus):
				t.Errorf("Authenticate = %q, %v; want status %d", id, err, tt.wantStatus)
			case tt.wantStatus == 401 && e.WWWAuthenticate != `Basic realm="test"`:
				t.Errorf("WWW-Authenticate %q", e.WWWAuthenticate)
			}
		})
	}
}

// revoke sends tok to p's revocation endpoint as the authenticated clientID.
func revoke(p *Provider, clientID, tok string) {
	r := httptest.NewRequest(http.MethodPost, "/revoke", nil)
	r.PostForm = url.Values{"token": {tok}}
	p.Revocation(httptest.NewRecorder(), r, clientID)
}

// TestBearerAndRevocation: userinfo's access-token check, and revocation
// (RFC 7009 §2.1) of access and refresh tokens by their client only.
func TestBearerAndRevocation(t *testing.T) {
	p := newProvider(t, 0)
	now := time.Now()
	g, resp := issue(t, p, now)
	if err := bearer(p, resp.AccessToken, now); err != nil {
		t.Fatal(err)
	}
	idResp, _ := p.Issue(g, now, Issue{Scope: "openid", AccessTTL: time.Minute, IDToken: true})
	expired, _ := p.Issue(g, now, Issue{Scope: "openid", AccessTTL: -time.Second})
	for name, tc := range map[string]struct {
		tok  string
		want error
	}{
		"no token": {"", p.errNoBearer},
		"garbage":  {"a.b.c", ErrInvalidToken},
		"ID token": {idResp.IDToken, ErrInvalidToken},
		"expired":  {expired.AccessToken, ErrInvalidToken},
		"tampered": {resp.AccessToken[:len(resp.AccessToken)-4] + "AAAA", ErrInvalidToken},
	} {
		if err := bearer(p, tc.tok, now); err != tc.want {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if p.errNoBearer.WWWAuthenticate != `Bearer realm="test"` || p.errNoBearer.Status != http.StatusUnauthorized {
		t.Errorf("no bearer: %+v", p.errNoBearer)
	}
	// The scheme is case-insensitive (RFC 7235 §2.1); another one is none.
	if err := bearerAuth(p, "bearer "+resp.AccessToken, now); err != nil {
		t.Errorf("lower-case scheme: %v", err)
	}
	if err := bearerAuth(p, "Basic Zm9vOmJhcg==", now); err != p.errNoBearer {
		t.Errorf("Basic: %v", err)
	}

	revoke(p, "d", resp.AccessToken)
	revoke(p, "d", resp.RefreshToken)
	if err := bearer(p, resp.AccessToken, now); err != nil {
		t.Fatalf("another client's revocation took effect: %v", err)
	}
	revoke(p, "c", resp.AccessToken)
	if err := bearer(p, resp.AccessToken, now); err != ErrInvalidToken {
		t.Errorf("revoked access token: %v", err)
	}
	if _, _, err := p.Refresh("c", refreshForm(resp.RefreshToken, ""), now); err != nil {
		t.Fatalf("the refresh token should survive: %v", err)
	}
	revoke(p, "c", resp.RefreshToken)
	if _, _, err := p.Refresh("c", refreshForm(resp.RefreshToken, ""), now); err != ErrUnknownRefresh {
		t.Errorf("revoked refresh token: %v", err)
	}
	if err := bearer(p, idResp.AccessToken, now); err != ErrInvalidToken {
		t.Errorf("access token of a revoked family: %v", err)
	}
}

// TestKeysRotate: the JWKS publishes each key for RS256 signatures under
// its kid, after a rotation the new key first and then the old one, and
// tokens signed before still verify.
func TestKeysRotate(t *testing.T) {
	k, err := NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	_, oldKid := k.Current()
	before, _ := k.Sign("at+jwt", jwt.Claims{Subject: "a"})
	newKid, err := k.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	k.ServeHTTP(w, httptest.NewRequest("GET", "/jwks", nil))
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil || len(set.Keys) != 2 ||
		set.Keys[0].KeyID != newKid || set.Keys[1].KeyID != oldKid || newKid == oldKid ||
		set.Keys[0].Algorithm != "RS256" || set.Keys[0].Use != "sig" ||
		w.Header().Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("JWKS %s after rotating from %s to %s", w.Body, oldKid, newKid)
	}
	after, _ := k.Sign("JWT", jwt.Claims{Subject: "b"})
	for i, raw := range []string{after, before} {
		tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		var c jwt.Claims
		if h := tok.Headers[0]; h.KeyID != set.Keys[i].KeyID || tok.Claims(set.Keys[i].Key, &c) != nil ||
			tok.Claims(set.Keys[1-i].Key, &c) == nil || k.Verify(raw, &c) != nil {
			t.Errorf("token %d: header %+v does not verify with its key alone", i, h)
		}
		if typ := []string{"JWT", "at+jwt"}[i]; tok.Headers[0].ExtraHeaders["typ"] != typ {
			t.Errorf("token %d: typ %v, want %s", i, tok.Headers[0].ExtraHeaders["typ"], typ)
		}
	}
	other, _ := NewKeys()
	if err := other.Verify(after, &jwt.Claims{}); err == nil {
		t.Error("another key set verified the token")
	}
}

// TestNewMetadata: the discovery document both fakes serve (OpenID Connect
// Discovery 1.0 §3), endpoints below the issuer and its path.
func TestNewMetadata(t *testing.T) {
	const iss = "https://op.example/realm"
	b, err := json.Marshal(NewMetadata(iss, []string{"sub"}))
	if err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	json.Unmarshal(b, &md)
	for k, want := range map[string]string{
		"issuer":                                         iss,
		"authorization_endpoint":                         iss + "/authorize",
		"token_endpoint":                                 iss + "/token",
		"userinfo_endpoint":                              iss + "/userinfo",
		"jwks_uri":                                       iss + "/jwks",
		"end_session_endpoint":                           iss + "/logout",
		"revocation_endpoint":                            iss + "/revoke",
		"response_types_supported":                       "[code]",
		"code_challenge_methods_supported":               "[S256]",
		"id_token_signing_alg_values_supported":          "[RS256]",
		"grant_types_supported":                          "[authorization_code refresh_token]",
		"token_endpoint_auth_methods_supported":          "[client_secret_basic client_secret_post]",
		"claims_supported":                               "[sub]",
		"authorization_response_iss_parameter_supported": "true",
	} {
		if got := fmt.Sprint(md[k]); got != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
	if sc, _ := md["scopes_supported"].([]any); len(sc) == 0 || sc[0] != "openid" {
		t.Errorf("scopes_supported = %v", md["scopes_supported"])
	}
}

// TestCheckAuthRequest: the authorization request checks both fakes make;
// each fake's tests keep one row to show it calls them.
func TestCheckAuthRequest(t *testing.T) {
	tests := []struct {
		name   string
		change func(url.Values)
		want   string // the error code; "" accepted
	}{
		{"valid", func(url.Values) {}, ""},
		{"response_type token", func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
		{"no challenge", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "invalid_request"},
		{"plain", func(q url.Values) { q.Set("code_challenge", verifier); q.Set("code_challenge_method", "plain") }, "invalid_request"},
		{"no method (plain by default)", func(q url.Values) { q.Del("code_challenge_method") }, "invalid_request"},
		{"challenge not S256-shaped", func(q url.Values) { q.Set("code_challenge", "short") }, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"response_type": {"code"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
			tt.change(q)
			e := CheckAuthRequest(q)
			if (e == nil && tt.want != "") || (e != nil && (e.Code != tt.want || e.Status != http.StatusBadRequest)) {
				t.Errorf("CheckAuthRequest = %v, want %q", e, tt.want)
			}
		})
	}
}

// TestRequests: a waiting request is single use when taken, gone once
// expired, and Max bounds how many wait.
func TestRequests(t *testing.T) {
	now := time.Now()
	rs := Requests{TTL: time.Minute, Max: 2}
	a := rs.Put("urn:", url.Values{"state": {"a"}}, now)
	b := rs.Put("urn:", url.Values{"state": {"b"}}, now)
	if !strings.HasPrefix(a, "urn:") || a == b || rs.Put("urn:", nil, now) != "" {
		t.Fatalf("ids %q %q, or a third request was stored", a, b)
	}
	if rs.Get(a, false, now).Get("state") != "a" || rs.Get(a, true, now).Get("state") != "a" || rs.Get(a, true, now) != nil {
		t.Error("a peeked request is not there to take, or a taken one is there again")
	}
	if rs.Get(b, false, now.Add(2*time.Minute)) != nil || rs.Get(b, false, now) != nil {
		t.Error("an expired request is there")
	}
}

// TestEndSession: ending a provider session revokes its grants and drops
// its codes, and leaves other sessions alone.
func TestEndSession(t *testing.T) {
	p := newProvider(t, 0)
	now := time.Now()
	_, resp := issue(t, p, now) // in sid-1
	_, pending := login(p, "c", "openid", now)
	other := p.NewCode(url.Values{"client_id": {"c"}, "redirect_uri": {redirect}, "code_challenge": {challenge}}, alice, "sid-2", now)
	p.EndSession("sid-1")
	if _, _, err := p.Refresh("c", refreshForm(resp.RefreshToken, ""), now); err != ErrUnknownRefresh {
		t.Errorf("refresh token of an ended session: %v", err)
	}
	if err := bearer(p, resp.AccessToken, now); err != ErrInvalidToken {
		t.Errorf("access token of an ended session: %v", err)
	}
	if _, _, err := p.Redeem("c", pending, now); err != ErrUnknownCode {
		t.Errorf("code of an ended session: %v", err)
	}
	if _, _, err := p.Redeem("c", url.Values{"code": {other}, "redirect_uri": {redirect}, "code_verifier": {verifier}}, now); err != nil {
		t.Errorf("code of another session: %v", err)
	}
}

// TestEndSessionBetweenRedeemAndIssue: a session that ends while its code's
// token request is between Redeem and Issue leaves the tokens Issue then
// mints revoked, as they would be had they been issued first.
func TestEndSessionBetweenRedeemAndIssue(t *testing.T) {
	p := newProvider(t, 0)
	now := time.Now()
	_, form := login(p, "c", "openid", now)
	g, _, err := p.Redeem("c", form, now)
	if err != nil {
		t.Fatal(err)
	}
	p.EndSession("sid-1")
	resp, err := p.Issue(g, now, Issue{Scope: g.Scope, AccessTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Refresh("c", refreshForm(resp.RefreshToken, ""), now); err != ErrUnknownRefresh {
		t.Errorf("refresh token of a session ended before it was issued: %v", err)
	}
	if err := bearer(p, resp.AccessToken, now); err != ErrInvalidToken {
		t.Errorf("access token of a session ended before it was issued: %v", err)
	}
}
