// Package api is the demo API of the development stack (make run): the
// resource server behind the OAuth Proxy. It accepts a request only with an
// access token in "Authorization: Bearer" (RFC 6750 §2.1), which it checks
// in one of two ways.
//
// JWT mode, the default: the API verifies the token on its own: the
// signature against the issuer's JWKS (fetched once, fetched again when a
// token names an unknown key), the algorithm against an allow-list (RS256,
// ES256, PS256, EdDSA; never "none" or HMAC), exp and nbf with 30 seconds
// of leeway, aud and iss against the configuration. Because aud must name
// this API, an ID token (aud = the client) is refused.
//
// Userinfo mode (Options.UserinfoURL), for opaque access tokens such as
// oidc-provider issues by default: the API presents the token to the
// issuer's userinfo endpoint (OpenID Connect Core §5.3); a 200 answer makes
// it valid, with the answer's sub as the subject, a 401 makes it invalid.
// Positive answers are reused for at most 10 seconds, keyed by the token's
// SHA-256.
//
//	GET  /api/<anything>   200 {"message","subject","name","path","time"}
//	POST /api/echo         200 the JSON body it got (also PUT and PATCH)
//	GET  /healthz          200 {"status":"ok"}, without a token
//
// A missing, invalid or expired token is answered 401
// {"code":"invalid_token","message":...} with a WWW-Authenticate challenge
// (RFC 6750 §3); a JWKS or userinfo endpoint that cannot be reached 503
// {"code":"server_error"}. The demo API is for development: it has no
// logging (so no token is ever written anywhere), rate limits or scopes.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/valyala/fasthttp"
)

// Options configures an API. Options is plain data and may be copied.
type Options struct {
	// Issuer is the iss every token must carry, exactly. Required in JWT
	// mode.
	Issuer string
	// JWKSURL is where the issuer publishes its signing keys (its
	// discovery document's jwks_uri). Required in JWT mode.
	JWKSURL string
	// Audience must be one of every token's aud values. Required in JWT
	// mode.
	Audience string

	// UserinfoURL, the issuer's userinfo_endpoint, selects userinfo mode
	// for opaque access tokens: a token is valid when that endpoint
	// answers it 200 with a sub, invalid when it answers 401 (or 403); no
	// answer, or another one, is 503 server_error. Issuer, JWKSURL and
	// Audience must then be empty: the endpoint checks issuer, lifetime
	// and revocation, but says nothing of the audience, so this mode
	// accepts any live token of the issuer that carries the openid scope,
	// also one meant for another API. For development with an
	// Authorization Server that does not issue JWT access tokens.
	UserinfoURL string
	// UserinfoCacheTTL is how long a positive userinfo answer is reused,
	// keyed by the SHA-256 of the token (the token itself is not kept).
	// 0 means UserinfoCacheTTL (10 s), also the most allowed; negative
	// turns the cache off. A JWT's exp shortens it, but the lifetime of an
	// opaque token is unknown here: an expired or revoked token passes
	// until its cached answer ages out, so keep this below the access
	// tokens' lifetime.
	UserinfoCacheTTL time.Duration

	// HTTPClient fetches the JWKS or calls the userinfo endpoint. The
	// default has a 10 second timeout, no proxy, and dials names under
	// .localhost on 127.0.0.1 (RFC 6761 §6.3), as browsers do.
	HTTPClient *http.Client
	// Now is the clock tokens are checked against; default time.Now.
	Now func() time.Time
	// Leeway is the clock skew allowed when checking exp, nbf and iat in
	// JWT mode; 0 means the default Leeway. The development stack shortens
	// it with short-lived tokens, so that an expired token is refused at
	// once.
	Leeway time.Duration
}

// Leeway is the default clock skew allowed when checking exp, nbf and iat.
const Leeway = 30 * time.Second

// allowedAlgs are the signature algorithms accepted: asymmetric only, so that
// a public key can never be used as an HMAC secret.
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.PS256, jose.EdDSA}

// API is the demo API. Build it with New. An API is safe for concurrent use
// and must not be copied.
type API struct {
	issuer, audience string
	keys             *oidc.RemoteKeySet
	fetch            *fetchWatch
	now              func() time.Time
	leeway           time.Duration
	userinfo         *userinfoVerifier // userinfo mode when set
}

// New validates opts and returns an API. It fetches nothing yet: the JWKS is
// fetched, or the userinfo endpoint called, on the first request with a
// token.
func New(opts Options) (*API, error) {
	client := opts.HTTPClient
	if client == nil {
		client = loopbackClient()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if opts.UserinfoURL != "" {
		return newUserinfoAPI(opts, client, now)
	}
	switch {
	case opts.Issuer == "":
		return nil, errors.New("api: Issuer is required")
	case opts.Audience == "":
		return nil, errors.New("api: Audience is required")
	case opts.JWKSURL == "":
		return nil, errors.New("api: JWKSURL is required")
	}
	if u, err := url.Parse(opts.JWKSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api: JWKSURL %q must be an absolute http or https URL", opts.JWKSURL)
	}
	c := *client
	watch := &fetchWatch{next: c.Transport}
	if watch.next == nil {
		watch.next = http.DefaultTransport
	}
	c.Transport = watch
	a := &API{
		issuer:   opts.Issuer,
		audience: opts.Audience,
		keys:     oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), &c), opts.JWKSURL),
		fetch:    watch,
		now:      now,
		leeway:   opts.Leeway,
	}
	if a.leeway <= 0 {
		a.leeway = Leeway
	}
	return a, nil
}

// loopbackClient dials names under .localhost on loopback, as browsers and
// curl do, since the system resolver may not know them.
func loopbackClient() *http.Client {
	const timeout = 10 * time.Second
	dialer := &net.Dialer{Timeout: timeout}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && isLocalhost(host) {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return dialer.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

func isLocalhost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// fetchWatch remembers whether the last JWKS fetch failed, so that a token
// that cannot be checked because the issuer is down is not called invalid.
type fetchWatch struct {
	next   http.RoundTripper
	failed atomic.Bool
}

func (f *fetchWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.next.RoundTrip(req)
	f.failed.Store(err != nil || resp.StatusCode != http.StatusOK)
	return resp, err
}

// apiError is an error answer: {"code","message"} with status and, for 401,
// a WWW-Authenticate challenge.
type apiError struct {
	status                   int
	code, message, challenge string
}

func (e *apiError) Error() string { return "api: " + e.message }

// The challenges of RFC 6750 §3: no error code when no token was sent
// (§3.1), invalid_token for any token that does not pass.
const (
	challengeNoToken = `Bearer realm="api"`
	challengeInvalid = `Bearer error="invalid_token"`
)

func invalid(msg string) *apiError {
	return &apiError{http.StatusUnauthorized, "invalid_token", msg, challengeInvalid}
}

var (
	errNoToken = &apiError{http.StatusUnauthorized, "invalid_token",
		"a bearer access token is required (Authorization: Bearer ...)", challengeNoToken}
	errMalformed = invalid("the access token is not a JWT signed with RS256, ES256, PS256 or EdDSA")
	errSignature = invalid("the access token's signature does not verify against the issuer's keys")
	errExpired   = invalid("the access token has expired")
	errNotYet    = invalid("the access token is not valid yet")
	errIssuer    = invalid("the access token comes from another issuer")
	errAudience  = invalid("the access token is not meant for this API (aud)")
	errClaims    = invalid("the access token has no sub or no exp")
	errKeys      = &apiError{http.StatusServiceUnavailable, "server_error",
		"the issuer's signing keys could not be fetched", ""}
	errNotFound = &apiError{http.StatusNotFound, "not_found", "no such resource", ""}
	errMethod   = &apiError{http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed", ""}
	errNotJSON  = &apiError{http.StatusBadRequest, "invalid_request", "the body must be JSON", ""}
	errInternal = &apiError{http.StatusInternalServerError, "server_error", "internal error", ""}
)

// Handler serves one request. It keeps nothing from ctx after it returns.
func (a *API) Handler(ctx *fasthttp.RequestCtx) {
	if err := a.serve(ctx); err != nil {
		writeError(ctx, err)
	}
}

func (a *API) serve(ctx *fasthttp.RequestCtx) error {
	path := string(ctx.Path())
	if path == "/healthz" {
		writeJSON(ctx, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	}
	if !strings.HasPrefix(path, "/api/") {
		return errNotFound
	}
	c, err := a.authenticate(ctx)
	if err != nil {
		return err
	}
	switch m := string(ctx.Method()); {
	case path == "/api/echo" && (m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch):
		body := ctx.PostBody()
		if !json.Valid(body) {
			return errNotJSON
		}
		ctx.SetStatusCode(http.StatusOK)
		ctx.SetContentType("application/json")
		ctx.Response.Header.Set("Cache-Control", "no-store")
		ctx.SetBody(body)
		return nil
	case m == http.MethodGet || m == http.MethodHead:
		writeJSON(ctx, http.StatusOK, hello{
			Message: "Hello from the demo API",
			Subject: c.Subject,
			Name:    c.Name,
			Path:    path,
			Time:    a.now().UTC().Format(time.RFC3339),
		})
		return nil
	}
	allow := "GET, HEAD"
	if path == "/api/echo" {
		allow = "GET, HEAD, POST, PUT, PATCH"
	}
	ctx.Response.Header.Set("Allow", allow)
	return errMethod
}

type hello struct {
	Message string `json:"message"`
	Subject string `json:"subject"`
	Name    string `json:"name"`
	Path    string `json:"path"`
	Time    string `json:"time"`
}

// claims are the access token claims the API reads.
type claims struct {
	jwt.Claims
	Name string `json:"name"`
}

// authenticate checks the bearer token: at the userinfo endpoint in
// userinfo mode, else as a JWT: algorithm, signature, then the claims, so
// that nothing about the claims of a forged token is told.
func (a *API) authenticate(ctx *fasthttp.RequestCtx) (*claims, error) {
	scheme, tok, ok := bytes.Cut(ctx.Request.Header.Peek("Authorization"), []byte(" "))
	if !ok || !bytes.EqualFold(scheme, []byte("Bearer")) {
		return nil, errNoToken
	}
	raw := string(bytes.TrimSpace(tok))
	if raw == "" {
		return nil, errNoToken
	}
	if a.userinfo != nil {
		return a.userinfo.verify(raw)
	}
	if _, err := jwt.ParseSigned(raw, allowedAlgs); err != nil {
		return nil, errMalformed
	}
	// The algorithm was checked just above, as RemoteKeySet requires.
	payload, err := a.keys.VerifySignature(context.Background(), raw)
	if err != nil {
		if a.fetch.failed.Load() {
			return nil, errKeys
		}
		return nil, errSignature
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, errMalformed
	}
	switch {
	case c.Issuer != a.issuer:
		return nil, errIssuer
	case !c.Audience.Contains(a.audience):
		return nil, errAudience
	case c.Subject == "" || c.Expiry == nil:
		return nil, errClaims
	}
	switch err := c.ValidateWithLeeway(jwt.Expected{Time: a.now()}, a.leeway); {
	case errors.Is(err, jwt.ErrExpired):
		return nil, errExpired
	case err != nil:
		return nil, errNotYet
	}
	return &c, nil
}

func writeError(ctx *fasthttp.RequestCtx, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		e = errInternal
	}
	if e.challenge != "" {
		ctx.Response.Header.Set("WWW-Authenticate", e.challenge)
	}
	writeJSON(ctx, e.status, map[string]string{"code": e.code, "message": e.message})
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("api: internal error: " + err.Error())
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(b)
}
