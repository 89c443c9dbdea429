package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
	"golang.org/x/oauth2"

	"github.com/tokenhandler/tokenhandler/examples/api"
	"github.com/tokenhandler/tokenhandler/examples/devidp"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

const (
	clientID = "spa-client"
	secret   = "dev-secret"
	redirect = "http://www.example.localhost:3000/"
	audience = devidp.DefaultAudience
)

// idp is a running development IdP whose issuer is a .localhost name, as in
// the development stack: only the API's own HTTP client can reach it by
// that name.
type idp struct {
	issuer string // http://login.example.localhost:PORT
	base   string // http://127.0.0.1:PORT
}

func startIdP(t *testing.T) *idp {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	port := ts.Listener.Addr().(*net.TCPAddr).Port
	e := &idp{issuer: "http://login.example.localhost:" + strconv.Itoa(port), base: "http://" + ts.Listener.Addr().String()}
	s, err := devidp.New(devidp.Options{
		Issuer:  e.issuer,
		Clients: []devidp.Client{{ID: clientID, Secret: secret, RedirectURIs: []string{redirect}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	return e
}

// token signs in as user through the login page and returns the access
// token.
func (e *idp) token(t *testing.T, user string) string {
	t.Helper()
	cfg := &oauth2.Config{
		ClientID: clientID, ClientSecret: secret, RedirectURL: redirect, Scopes: []string{"openid", "profile"},
		Endpoint: oauth2.Endpoint{AuthURL: e.base + "/authorize", TokenURL: e.base + "/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
	verifier := oauth2.GenerateVerifier()
	loc, err := devidp.Login(t.Context(), nil, cfg.AuthCodeURL("state", oauth2.S256ChallengeOption(verifier)), user)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cfg.Exchange(t.Context(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// api is the API trusting the IdP's JWTs, with change applied to its
// options when not nil.
func (e *idp) api(t *testing.T, change func(*api.Options)) *api.API {
	t.Helper()
	return newAPI(t, api.Options{Issuer: e.issuer, JWKSURL: e.issuer + "/jwks", Audience: audience}, change)
}

// newAPI builds the API with opts, changed by change when not nil.
func newAPI(t *testing.T, opts api.Options, change func(*api.Options)) *api.API {
	t.Helper()
	if change != nil {
		change(&opts)
	}
	a, err := api.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// answer is a response of the API.
type answer struct {
	status int
	header map[string]string
	body   []byte
	json   map[string]any
}

// call runs the handler on one request, without a server.
func call(t *testing.T, a *api.API, method, path, auth string, body []byte) answer {
	t.Helper()
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBody(body)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	a.Handler(&ctx)
	r := answer{status: ctx.Response.StatusCode(), header: map[string]string{}, body: append([]byte(nil), ctx.Response.Body()...)}
	for _, k := range []string{"Content-Type", "Cache-Control", "WWW-Authenticate", "Allow"} {
		r.header[k] = string(ctx.Response.Header.Peek(k))
	}
	json.Unmarshal(r.body, &r.json)
	return r
}

// want401 checks an RFC 6750 §3 refusal.
func want401(t *testing.T, r answer, challenge string) {
	t.Helper()
	if r.status != http.StatusUnauthorized || r.json["code"] != "invalid_token" || r.json["message"] == "" {
		t.Errorf("got %d %s, want 401 invalid_token", r.status, r.body)
	}
	if r.header["WWW-Authenticate"] != challenge {
		t.Errorf("WWW-Authenticate %q, want %q", r.header["WWW-Authenticate"], challenge)
	}
	if r.header["Content-Type"] != "application/json" || r.header["Cache-Control"] != "no-store" {
		t.Errorf("headers %v", r.header)
	}
}

const invalidChallenge = `Bearer error="invalid_token"`

// unverified returns a JWT's claims without checking anything.
func unverified(t *testing.T, raw string) map[string]any {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := tok.UnsafeClaimsWithoutVerification(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func kid(t *testing.T, raw string) string {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Headers[0].KeyID
}

// sign makes a compact JWS of claims with key under alg and kid.
func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unsigned is an alg "none" JWT (RFC 7519 §6), which go-jose will not make.
func unsigned(claims any) string {
	b, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + enc.EncodeToString(b) + "."
}

// --- tests -------------------------------------------------------------------

func TestValidToken(t *testing.T) {
	e := startIdP(t)
	a := e.api(t, nil)
	tok := e.token(t, "alice")
	for _, path := range []string{"/api/hello", "/api/orders/42"} {
		r := call(t, a, http.MethodGet, path, "Bearer "+tok, nil)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		for k, want := range map[string]string{
			"message": "Hello from the demo API", "subject": "alice", "name": "Alice Anderson", "path": path,
		} {
			if r.json[k] != want {
				t.Errorf("%s: %s = %v, want %q", path, k, r.json[k], want)
			}
		}
		if ts, err := time.Parse(time.RFC3339, r.json["time"].(string)); err != nil || time.Since(ts) > time.Minute {
			t.Errorf("time %v: %v", r.json["time"], err)
		}
		if r.header["Content-Type"] != "application/json" || r.header["Cache-Control"] != "no-store" {
			t.Errorf("headers %v", r.header)
		}
	}
	// The scheme is case-insensitive (RFC 7235 §2.1).
	if r := call(t, a, http.MethodGet, "/api/hello", "bearer "+tok, nil); r.status != http.StatusOK {
		t.Errorf("lower-case scheme: %d", r.status)
	}
	if r := call(t, a, http.MethodHead, "/api/hello", "Bearer "+tok, nil); r.status != http.StatusOK {
		t.Errorf("HEAD: %d", r.status)
	}
}

func TestEcho(t *testing.T) {
	e := startIdP(t)
	a := e.api(t, nil)
	tok := "Bearer " + e.token(t, "bob")
	body := []byte(`{"order":{"id":42,"items":["a","b"]},"note":"ünïcode"}`)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch} {
		r := call(t, a, m, "/api/echo", tok, body)
		if r.status != http.StatusOK || !bytes.Equal(r.body, body) || r.header["Content-Type"] != "application/json" {
			t.Errorf("%s: %d %s", m, r.status, r.body)
		}
	}
	if r := call(t, a, http.MethodPost, "/api/echo", tok, []byte("not json")); r.status != http.StatusBadRequest || r.json["code"] != "invalid_request" {
		t.Errorf("not JSON: %d %s", r.status, r.body)
	}
	// Data-changing calls need a token like any other.
	want401(t, call(t, a, http.MethodPost, "/api/echo", "", body), `Bearer realm="api"`)
	// Only echo takes a body.
	if r := call(t, a, http.MethodPost, "/api/hello", tok, body); r.status != http.StatusMethodNotAllowed || r.header["Allow"] != "GET, HEAD" {
		t.Errorf("POST /api/hello: %d %v", r.status, r.header)
	}
	if r := call(t, a, http.MethodDelete, "/api/echo", tok, nil); r.status != http.StatusMethodNotAllowed || !strings.Contains(r.header["Allow"], "POST") {
		t.Errorf("DELETE /api/echo: %d %v", r.status, r.header)
	}
}

func TestOtherPaths(t *testing.T) {
	a := startIdP(t).api(t, nil)
	if r := call(t, a, http.MethodGet, "/healthz", "", nil); r.status != http.StatusOK || r.json["status"] != "ok" {
		t.Errorf("/healthz: %d %s", r.status, r.body)
	}
	for _, p := range []string{"/", "/api", "/apix/hello", "/oauth-agent/login/start"} {
		if r := call(t, a, http.MethodGet, p, "", nil); r.status != http.StatusNotFound || r.json["code"] != "not_found" {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
	}
}

// TestRefusedTokens uses real tokens of the development IdP, altered.
func TestRefusedTokens(t *testing.T) {
	e := startIdP(t)
	a := e.api(t, nil)
	tok := e.token(t, "alice")
	bobs := e.token(t, "bob")
	claims := unverified(t, tok)
	exp := time.Unix(int64(claims["exp"].(float64)), 0)
	iat := time.Unix(int64(claims["iat"].(float64)), 0)
	parts := strings.Split(tok, ".")
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// A token of another development IdP that claims the same issuer.
	imposter := func() string {
		ts := httptest.NewUnstartedServer(nil)
		s, err := devidp.New(devidp.Options{Issuer: e.issuer, Clients: []devidp.Client{{ID: clientID, Secret: secret, RedirectURIs: []string{redirect}}}})
		if err != nil {
			t.Fatal(err)
		}
		ts.Config.Handler = s.Handler()
		ts.Start()
		defer ts.Close()
		return (&idp{issuer: e.issuer, base: "http://" + ts.Listener.Addr().String()}).token(t, "alice")
	}()
	at := func(d time.Time) func() time.Time { return func() time.Time { return d } }

	for _, tc := range []struct {
		name      string
		api       *api.API
		auth      string
		challenge string
	}{
		{"no header", a, "", `Bearer realm="api"`},
		{"another scheme", a, "Basic YWxpY2U6c2VjcmV0", `Bearer realm="api"`},
		{"no token", a, "Bearer ", `Bearer realm="api"`},
		{"not a JWT", a, "Bearer abc.def", invalidChallenge},
		{"token without scheme", a, tok, `Bearer realm="api"`},
		{"signature altered", a, "Bearer " + parts[0] + "." + parts[1] + "." + flip(parts[2]), invalidChallenge},
		{"payload altered", a, "Bearer " + parts[0] + "." + strings.Split(bobs, ".")[1] + "." + parts[2], invalidChallenge},
		{"another key, same kid", a, "Bearer " + sign(t, jose.RS256, otherKey, kid(t, tok), claims), invalidChallenge},
		{"another IdP, same issuer", a, "Bearer " + imposter, invalidChallenge},
		{"alg none", a, "Bearer " + unsigned(claims), invalidChallenge},
		{"HS256", a, "Bearer " + sign(t, jose.HS256, []byte(strings.Repeat("k", 32)), kid(t, tok), claims), invalidChallenge},
		{"expired", e.api(t, func(o *api.Options) { o.Now = at(exp.Add(api.Leeway + time.Second)) }), "Bearer " + tok, invalidChallenge},
		{"issued in the future", e.api(t, func(o *api.Options) { o.Now = at(iat.Add(-api.Leeway - time.Second)) }), "Bearer " + tok, invalidChallenge},
		{"expired past a 1 s leeway", e.api(t, func(o *api.Options) { o.Leeway = time.Second; o.Now = at(exp.Add(2 * time.Second)) }), "Bearer " + tok, invalidChallenge},
		{"wrong audience", e.api(t, func(o *api.Options) { o.Audience = "another-api" }), "Bearer " + tok, invalidChallenge},
		{"wrong issuer", e.api(t, func(o *api.Options) { o.Issuer = "http://login.example.localhost" }), "Bearer " + tok, invalidChallenge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want401(t, call(t, tc.api, http.MethodGet, "/api/hello", tc.auth, nil), tc.challenge)
		})
	}

	// Within the leeway the token still passes.
	for name, now := range map[string]time.Time{
		"just expired":      exp.Add(api.Leeway - time.Second),
		"clock a bit early": iat.Add(-api.Leeway + time.Second),
	} {
		a := e.api(t, func(o *api.Options) { o.Now = at(now) })
		if r := call(t, a, http.MethodGet, "/api/hello", "Bearer "+tok, nil); r.status != http.StatusOK {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
}

// flip changes one character in the middle of a base64url string.
func flip(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// minter signs tokens with a key of each allowed type and serves their
// JWKS, for the algorithm allow-list and claims the IdP does not vary.
type minter struct {
	keys map[jose.SignatureAlgorithm]any
	jwks string
}

func newMinter(t *testing.T) *minter {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m := &minter{keys: map[jose.SignatureAlgorithm]any{
		jose.RS256: rsaKey, jose.PS256: rsaKey, jose.RS384: rsaKey, jose.ES256: ecKey, jose.EdDSA: edKey,
	}}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &rsaKey.PublicKey, KeyID: "rsa"},
		{Key: &ecKey.PublicKey, KeyID: "ec"},
		{Key: edKey.Public(), KeyID: "ed"},
	}}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	t.Cleanup(ts.Close)
	m.jwks = ts.URL
	return m
}

func (m *minter) mint(t *testing.T, alg jose.SignatureAlgorithm, claims map[string]any) string {
	t.Helper()
	kids := map[jose.SignatureAlgorithm]string{jose.RS256: "rsa", jose.PS256: "rsa", jose.RS384: "rsa", jose.ES256: "ec", jose.EdDSA: "ed"}
	return sign(t, alg, m.keys[alg], kids[alg], claims)
}

func TestAlgorithmsAndClaims(t *testing.T) {
	m := newMinter(t)
	const iss = "https://issuer.example"
	a, err := api.New(api.Options{Issuer: iss, JWKSURL: m.jwks, Audience: audience})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	good := func(change func(map[string]any)) map[string]any {
		c := map[string]any{"iss": iss, "sub": "zoe", "aud": audience, "exp": now + 60, "iat": now, "name": "Zoe"}
		if change != nil {
			change(c)
		}
		return c
	}
	for _, tc := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		c    map[string]any
		ok   bool
	}{
		{"RS256", jose.RS256, good(nil), true},
		{"PS256", jose.PS256, good(nil), true},
		{"ES256", jose.ES256, good(nil), true},
		{"EdDSA", jose.EdDSA, good(nil), true},
		{"RS384 is not allowed", jose.RS384, good(nil), false},
		{"aud list with this API", jose.ES256, good(func(c map[string]any) { c["aud"] = []string{"x", audience} }), true},
		{"aud list without", jose.ES256, good(func(c map[string]any) { c["aud"] = []string{"x", "y"} }), false},
		{"no aud", jose.ES256, good(func(c map[string]any) { delete(c, "aud") }), false},
		{"no sub", jose.ES256, good(func(c map[string]any) { delete(c, "sub") }), false},
		{"no exp", jose.ES256, good(func(c map[string]any) { delete(c, "exp") }), false},
		{"no iss", jose.ES256, good(func(c map[string]any) { delete(c, "iss") }), false},
		{"no name", jose.ES256, good(func(c map[string]any) { delete(c, "name") }), true},
		{"nbf ahead", jose.ES256, good(func(c map[string]any) { c["nbf"] = now + 120 }), false},
		{"nbf within leeway", jose.ES256, good(func(c map[string]any) { c["nbf"] = now + 5 }), true},
		{"expired long ago", jose.EdDSA, good(func(c map[string]any) { c["exp"] = now - 3600 }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, a, http.MethodGet, "/api/x", "Bearer "+m.mint(t, tc.alg, tc.c), nil)
			if !tc.ok {
				want401(t, r, invalidChallenge)
				return
			}
			if r.status != http.StatusOK || r.json["subject"] != "zoe" || r.json["name"] != tc.c["name"] && tc.c["name"] != nil {
				t.Errorf("%d %s", r.status, r.body)
			}
		})
	}
	// alg none and HMAC, even with a kid of the JWKS.
	want401(t, call(t, a, http.MethodGet, "/api/x", "Bearer "+unsigned(good(nil)), nil), invalidChallenge)
	want401(t, call(t, a, http.MethodGet, "/api/x", "Bearer "+sign(t, jose.HS256, []byte(strings.Repeat("k", 32)), "rsa", good(nil)), nil), invalidChallenge)
}

// countingClient counts the requests it makes.
func countingClient(n *atomic.Int32, status int) *http.Client {
	return &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		n.Add(1)
		if status != 0 {
			return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader("down")), Header: http.Header{}, Request: r}, nil
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestJWKSCached(t *testing.T) {
	e := startIdP(t)
	var fetches atomic.Int32
	a := e.api(t, func(o *api.Options) {
		o.JWKSURL = e.base + "/jwks"
		o.HTTPClient = countingClient(&fetches, 0)
	})
	tok := "Bearer " + e.token(t, "carol")
	for range 5 {
		if r := call(t, a, http.MethodGet, "/api/hello", tok, nil); r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d JWKS fetches for 5 requests, want 1", n)
	}
}

func TestJWKSUnavailable(t *testing.T) {
	e := startIdP(t)
	tok := "Bearer " + e.token(t, "carol")
	closed := "http://" + bintest.FreeTCPAddr(t) + "/jwks"
	var n atomic.Int32
	for name, change := range map[string]func(*api.Options){
		"connection refused": func(o *api.Options) { o.JWKSURL = closed },
		"500":                func(o *api.Options) { o.HTTPClient = countingClient(&n, http.StatusInternalServerError) },
	} {
		t.Run(name, func(t *testing.T) {
			r := call(t, e.api(t, change), http.MethodGet, "/api/hello", tok, nil)
			if r.status != http.StatusServiceUnavailable || r.json["code"] != "server_error" || r.header["WWW-Authenticate"] != "" {
				t.Errorf("%d %v %s", r.status, r.header, r.body)
			}
		})
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts api.Options
		want string
	}{
		{"no issuer", api.Options{JWKSURL: "http://a/jwks", Audience: "x"}, "Issuer"},
		{"no audience", api.Options{Issuer: "http://a", JWKSURL: "http://a/jwks"}, "Audience"},
		{"no JWKS URL", api.Options{Issuer: "http://a", Audience: "x"}, "JWKSURL"},
		{"relative JWKS URL", api.Options{Issuer: "http://a", JWKSURL: "/jwks", Audience: "x"}, "absolute"},
		{"userinfo with JWKS URL", api.Options{UserinfoURL: "http://a/me", JWKSURL: "http://a/jwks"}, "excludes"},
		{"userinfo with issuer", api.Options{UserinfoURL: "http://a/me", Issuer: "http://a"}, "excludes"},
		{"userinfo with audience", api.Options{UserinfoURL: "http://a/me", Audience: "x"}, "excludes"},
		{"relative userinfo URL", api.Options{UserinfoURL: "/me"}, "absolute"},
		{"userinfo URL not http", api.Options{UserinfoURL: "ftp://a/me"}, "absolute"},
		{"userinfo cache too long", api.Options{UserinfoURL: "http://a/me", UserinfoCacheTTL: api.UserinfoCacheTTL + time.Second}, "UserinfoCacheTTL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := api.New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "api: ") {
				t.Errorf("got %v, want an error about %s", err, tc.want)
			}
		})
	}
}

// TestServe runs the handler in a fasthttp server, with concurrent callers
// for the race detector.
func TestServe(t *testing.T) {
	e := startIdP(t)
	a := e.api(t, nil)
	tok := e.token(t, "alice")
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: a.Handler}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	client := &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		return ln.Dial()
	}}}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			auth := "Bearer " + tok
			if i%2 == 1 {
				auth = "Bearer " + flip(tok)
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://api.example.localhost/api/hello", nil)
			req.Header.Set("Authorization", auth)
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			want := http.StatusOK
			if i%2 == 1 {
				want = http.StatusUnauthorized
			}
			if resp.StatusCode != want {
				t.Errorf("%d: %s, want %d", i, resp.Status, want)
			}
		})
	}
	wg.Wait()
}
