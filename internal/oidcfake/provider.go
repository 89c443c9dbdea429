package oidcfake

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Config configures a Provider. It is plain data and may be copied.
type Config struct {
	// Issuer is the iss of every token. Required.
	Issuer string
	// Audience is the access tokens' aud. Required.
	Audience string
	// Realm names the provider in WWW-Authenticate challenges.
	Realm string
	// GrantTTL bounds a login: its refresh tokens stop working this long
	// after the user signed in, however often they were rotated. Zero means
	// no bound.
	GrantTTL time.Duration
}

// IDTokenTTL is the ID tokens' lifetime, independent of the access tokens'.
const IDTokenTTL = 5 * time.Minute

// User is a signed-in user: the sub claim and the claims of the profile and
// email scopes (OpenID Connect Core §5.4). It is plain data and may be
// copied.
type User struct{ Subject, Name, Email string }

// code is an authorization request that was granted, stored under its
// authorization code until redeemed.
type code struct {
	params   url.Values // the request's client_id, redirect_uri, code_challenge, scope and nonce
	user     User
	sid      string // "" or the provider session (Back-Channel Logout 1.0 §2.1)
	authTime time.Time
}

// codeTTL bounds authorization codes (RFC 6749 §4.1.2 recommends at most 10
// minutes).
const codeTTL = time.Minute

// Grant is one login: every token issued from one authorization code
// shares it, and revoking it revokes them all (the refresh-token family).
// Its fields are set when it is made and must not be changed.
type Grant struct {
	ClientID, Scope, SID string
	User                 User
	AuthTime             time.Time
	Expires              time.Time // zero: never

	revoked bool // guarded by Provider.mu
}

// refreshToken is an opaque refresh token. A retired one was replaced by
// rotation; presenting it again is reuse.
type refreshToken struct {
	grant   *Grant
	retired bool
}

// issuedAccess is an access token's record, for userinfo and revocation.
type issuedAccess struct {
	grant   *Grant
	expires time.Time
	revoked bool
}

// Provider is the grant store of a fake OpenID Provider: authorization
// codes, refresh tokens with rotation and reuse detection, access tokens,
// client authentication, and the tokens it signs with its Keys. It has no
// endpoints of its own: agent/astest and examples/devidp serve them. Build
// it with New; it is safe for concurrent use and must not be copied. It
// keeps everything in memory, dropping what expired at most once a minute.
type Provider struct {
	Config
	Keys *Keys
	// ErrInvalidClient is the 401 invalid_client answer, with the realm.
	ErrInvalidClient *Error

	errNoBearer *Error

	mu        sync.Mutex
	codes     map[string]*code
	usedCodes map[string]*Grant // redeemed codes, for reuse revocation
	refresh   map[string]*refreshToken
	access    map[string]*issuedAccess // by jti
	nextSweep time.Time
}

// New builds a Provider with a fresh signing key.
func New(cfg Config) (*Provider, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("oidcfake: Issuer and Audience are required")
	}
	keys, err := NewKeys()
	if err != nil {
		return nil, err
	}
	return &Provider{
		Config: cfg,
		Keys:   keys,
		ErrInvalidClient: &Error{http.StatusUnauthorized, "invalid_client",
			"client authentication failed", `Basic realm="` + cfg.Realm + `"`},
		// RFC 6750 §3.1: no error code when no token was sent.
		errNoBearer: &Error{http.StatusUnauthorized, "invalid_request",
			"a bearer access token is required (RFC 6750 §2.1)", `Bearer realm="` + cfg.Realm + `"`},
		codes:     make(map[string]*code),
		usedCodes: make(map[string]*Grant),
		refresh:   make(map[string]*refreshToken),
		access:    make(map[string]*issuedAccess),
	}, nil
}

// Authenticate parses r's form and checks client_secret_basic or
// client_secret_post (RFC 6749 §2.3.1) against secret, which returns the
// registered secret of a client ID, and returns the client ID.
func (p *Provider) Authenticate(r *http.Request, secret func(clientID string) (string, bool)) (string, error) {
	if err := r.ParseForm(); err != nil {
		return "", ErrBadForm
	}
	id, got, _, err := ClientCredentials(r)
	switch {
	case errors.Is(err, ErrTwoClientAuths):
		return "", errTwoClientAuthsAnswer
	case err != nil:
		return "", p.ErrInvalidClient
	}
	want, ok := secret(id)
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return "", p.ErrInvalidClient
	}
	return id, nil
}

// NewCode stores the validated authorization request params, which user
// granted at now in the provider session sid ("" for none), and returns its
// authorization code, single use for a minute.
func (p *Provider) NewCode(params url.Values, user User, sid string, now time.Time) string {
	c := rand.Text()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked(now)
	p.codes[c] = &code{params: params, user: user, sid: sid, authTime: now}
	return c
}

// Redeem is the authorization_code grant (RFC 6749 §4.1.3) for the
// authenticated clientID: it checks the code, redirect_uri and PKCE
// code_verifier of form and returns the new Grant and the request's nonce.
func (p *Provider) Redeem(clientID string, form url.Values, now time.Time) (*Grant, string, error) {
	code := form.Get("code")
	// One critical section from taking the code to recording its grant, so
	// that EndSession either drops the code first or finds the grant.
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.codes[code]
	// Single use, even when this attempt fails, so that a verifier cannot
	// be guessed by retrying.
	delete(p.codes, code)
	switch {
	case c == nil:
		// RFC 6749 §4.1.2: a code used twice SHOULD revoke the tokens
		// issued for it.
		if g := p.usedCodes[code]; g != nil {
			g.revoked = true
		}
		return nil, "", ErrUnknownCode
	case now.After(c.authTime.Add(codeTTL)):
		return nil, "", ErrUnknownCode
	case c.params.Get("client_id") != clientID:
		return nil, "", ErrCodeClient
	case form.Get("redirect_uri") != c.params.Get("redirect_uri"):
		return nil, "", ErrCodeRedirectURI
	case !PKCEValid(form.Get("code_verifier"), c.params.Get("code_challenge")):
		return nil, "", ErrPKCE
	}
	g := &Grant{ClientID: clientID, Scope: c.params.Get("scope"), SID: c.sid, User: c.user, AuthTime: c.authTime}
	if p.GrantTTL > 0 {
		g.Expires = c.authTime.Add(p.GrantTTL)
	}
	p.usedCodes[code] = g
	return g, c.params.Get("nonce"), nil
}

// Refresh is the refresh_token grant (RFC 6749 §6) for the authenticated
// clientID: it returns the token's Grant and the scope asked for, which may
// narrow the granted one. The token is retired (rotation), and presenting
// it again is treated as theft: the whole family is revoked (RFC 9700
// §4.14.2).
func (p *Provider) Refresh(clientID string, form url.Values, now time.Time) (*Grant, string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rt := p.refresh[form.Get("refresh_token")]
	switch {
	case rt == nil, rt.grant.revoked, rt.grant.ClientID != clientID, expired(rt.grant, now):
		return nil, "", ErrUnknownRefresh
	case rt.retired:
		// Someone holds a token that was already exchanged: the client or
		// an attacker has a stolen copy. Revoke the family so that neither
		// can go on.
		rt.grant.revoked = true
		return nil, "", ErrRefreshReuse
	}
	g := rt.grant
	// RFC 6749 §6: a narrower scope may be asked for, never a wider one.
	scope := g.Scope
	if req := form.Get("scope"); req != "" {
		granted := strings.Fields(g.Scope)
		for _, sc := range strings.Fields(req) {
			if !slices.Contains(granted, sc) {
				return nil, "", ErrScopeWidened
			}
		}
		scope = req
	}
	rt.retired = true
	return g, scope, nil
}

func expired(g *Grant, now time.Time) bool { return !g.Expires.IsZero() && now.After(g.Expires) }

// Token answers a token request (RFC 6749 §3.2) of the authenticated
// clientID, whose form has been parsed: the authorization_code grant
// (Redeem) or the refresh_token grant (Refresh), answered with the tokens o
// says for the scope granted or asked for and the request's nonce, always
// with a refresh token (rotation) and, for the openid scope, with an ID
// token (OpenID Connect Core §3.1.3.3). adjust, unless nil, may change what
// is issued first.
func (p *Provider) Token(w http.ResponseWriter, r *http.Request, clientID string, o Issue, adjust func(*Grant, *Issue)) error {
	now := time.Now()
	var g *Grant
	var err error
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		if g, o.Nonce, err = p.Redeem(clientID, r.PostForm, now); err == nil {
			o.Scope = g.Scope
		}
	case "refresh_token":
		g, o.Scope, err = p.Refresh(clientID, r.PostForm, now)
	default:
		return ErrUnsupportedGrant
	}
	if err != nil {
		return err
	}
	o.IDToken = HasScope(o.Scope, "openid")
	if adjust != nil {
		adjust(g, &o)
	}
	resp, err := p.Issue(g, now, o)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, resp)
	return nil
}

// EndSession ends the provider session sid, not empty: it revokes every
// grant made in it with the tokens issued for them, and drops its codes
// not yet redeemed.
func (p *Provider) EndSession(sid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	maps.DeleteFunc(p.codes, func(_ string, c *code) bool { return c.sid == sid })
	// A redeemed code's grant may not have its tokens yet (Token is between
	// Redeem and Issue): it is revoked here, and Issue's tokens with it.
	for _, g := range p.usedCodes {
		if g.SID == sid {
			g.revoked = true
		}
	}
	for _, rt := range p.refresh {
		if rt.grant.SID == sid {
			rt.grant.revoked = true
		}
	}
	for _, at := range p.access {
		if at.grant.SID == sid {
			at.grant.revoked = true
		}
	}
}

// Revocation answers a revocation request (RFC 7009 §2) of the
// authenticated clientID, whose form has been parsed: it revokes the token,
// a refresh token with its whole family, and answers 200, also for
// unknown, invalid or other clients' tokens, which it ignores (§2.2).
func (p *Provider) Revocation(w http.ResponseWriter, r *http.Request, clientID string) error {
	tok := r.PostForm.Get("token")
	if tok == "" {
		return ErrMissingToken
	}
	// The hint only speeds up the search; both kinds are tried.
	var c accessClaims
	ok := p.Keys.Verify(tok, &c) == nil && c.Issuer == p.Issuer
	p.mu.Lock()
	if rt := p.refresh[tok]; rt != nil && rt.grant.ClientID == clientID {
		rt.grant.revoked = true
	}
	if at := p.access[c.ID]; ok && at != nil && c.ClientID == clientID {
		at.revoked = true
	}
	p.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	return nil
}

// TokenResponse is the successful token answer (RFC 6749 §5.1, OpenID
// Connect Core §3.1.3.3).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// accessClaims are the access token's claims, shaped like RFC 9068 §2.2,
// plus the user's name for an API to greet.
type accessClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	Name     string `json:"name,omitempty"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	AuthTime int64  `json:"auth_time"`
	ID       string `json:"jti"`
	Padding  string `json:"pad,omitempty"`
}

// IDClaims are an ID token's claims (OpenID Connect Core §2); the profile
// and email scopes add theirs (§5.4). It is plain data and may be copied.
type IDClaims struct {
	Issuer          string `json:"iss"`
	Subject         string `json:"sub,omitempty"`
	Audience        string `json:"aud"`
	AuthorizedParty string `json:"azp"`
	Expiry          int64  `json:"exp"`
	IssuedAt        int64  `json:"iat,omitempty"`
	AuthTime        int64  `json:"auth_time"`
	Nonce           string `json:"nonce,omitempty"`
	SID             string `json:"sid,omitempty"` // Back-Channel Logout 1.0 §2.1
	UserClaims
}

// UserClaims are the claims of the profile and email scopes (OpenID
// Connect Core §5.4), in ID tokens and userinfo answers.
type UserClaims struct {
	Name              string `json:"name,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	Email             string `json:"email,omitempty"`
	EmailVerified     *bool  `json:"email_verified,omitempty"`
}

// Userinfo is a UserInfo answer (OpenID Connect Core §5.3.2).
type Userinfo struct {
	Subject string `json:"sub"`
	UserClaims
}

// ClaimsFor returns the claims of u that scope asks for.
func ClaimsFor(u User, scope string) UserClaims {
	var c UserClaims
	if HasScope(scope, "profile") {
		c.Name, c.PreferredUsername = u.Name, u.Subject
	}
	if HasScope(scope, "email") {
		t := true
		c.Email, c.EmailVerified = u.Email, &t
	}
	return c
}

// HasScope reports whether the space-separated scope holds want.
func HasScope(scope, want string) bool { return slices.Contains(strings.Fields(scope), want) }

// Issue says what Provider.Issue mints. It is plain data and may be copied.
type Issue struct {
	Scope, Nonce string
	// AccessTTL is the access token's lifetime; negative issues tokens that
	// have already expired.
	AccessTTL time.Duration
	// IDToken adds an ID token.
	IDToken bool
	// Padding adds a "pad" claim of this many bytes to the access token.
	Padding int
	// SignID signs the ID token's claims; nil signs them as they are with
	// the current key, typ "JWT". A test provider changes them here.
	SignID func(IDClaims) (string, error)
}

// Issue mints tokens for g as o says, and a refresh token (a new one at
// every refresh: rotation).
func (p *Provider) Issue(g *Grant, now time.Time, o Issue) (*TokenResponse, error) {
	jti := rand.Text()
	at, err := p.Keys.Sign("at+jwt", accessClaims{ // RFC 9068 §2.1: typed at+jwt
		Issuer:   p.Issuer,
		Subject:  g.User.Subject,
		Audience: p.Audience,
		ClientID: g.ClientID,
		Scope:    o.Scope,
		Name:     g.User.Name,
		IssuedAt: now.Unix(),
		Expiry:   now.Add(o.AccessTTL).Unix(),
		AuthTime: g.AuthTime.Unix(),
		ID:       jti,
		Padding:  strings.Repeat("x", o.Padding),
	})
	if err != nil {
		return nil, err
	}
	resp := &TokenResponse{
		AccessToken: at,
		TokenType:   "Bearer",
		// Rounded up so that a sub-second TTL is not sent as 0, which
		// clients read as "no expiry".
		ExpiresIn: int64(math.Ceil(o.AccessTTL.Seconds())),
		Scope:     o.Scope,
	}
	if o.IDToken {
		c := IDClaims{
			Issuer:          p.Issuer,
			Subject:         g.User.Subject,
			Audience:        g.ClientID,
			AuthorizedParty: g.ClientID,
			Expiry:          now.Add(IDTokenTTL).Unix(),
			IssuedAt:        now.Unix(),
			AuthTime:        g.AuthTime.Unix(),
			Nonce:           o.Nonce,
			SID:             g.SID,
			UserClaims:      ClaimsFor(g.User, o.Scope),
		}
		sign := o.SignID
		if sign == nil {
			sign = func(c IDClaims) (string, error) { return p.Keys.Sign("JWT", c) }
		}
		if resp.IDToken, err = sign(c); err != nil {
			return nil, err
		}
	}
	resp.RefreshToken = rand.Text() + rand.Text()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked(now)
	p.access[jti] = &issuedAccess{grant: g, expires: now.Add(o.AccessTTL)}
	p.refresh[resp.RefreshToken] = &refreshToken{grant: g}
	return resp, nil
}

// Bearer returns the Grant of r's bearer access token (RFC 6750 §2.1),
// which must be signed by this provider, issued by it for its Audience,
// unexpired (no leeway) and not revoked.
func (p *Provider) Bearer(r *http.Request, now time.Time) (*Grant, error) {
	scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return nil, p.errNoBearer
	}
	var c jwt.Claims
	if p.Keys.Verify(raw, &c) != nil || c.ID == "" || c.Expiry == nil {
		return nil, ErrInvalidToken
	}
	want := jwt.Expected{Issuer: p.Issuer, AnyAudience: jwt.Audience{p.Audience}, Time: now}
	if c.ValidateWithLeeway(want, 0) != nil {
		return nil, ErrInvalidToken
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.access[c.ID]
	if at == nil || at.revoked || at.grant.revoked {
		return nil, ErrInvalidToken
	}
	return at.grant, nil
}

// ServeUserinfo is the UserInfo endpoint (OpenID Connect Core §5.3) with
// the bearer token in the Authorization header (RFC 6750 §2.1): it answers
// the claims the token's scope allows (§5.4).
func (p *Provider) ServeUserinfo(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return ErrMethod
	}
	g, err := p.Bearer(r, time.Now())
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, Userinfo{Subject: g.User.Subject, UserClaims: ClaimsFor(g.User, g.Scope)})
	return nil
}

// BackchannelLogoutEvent is the member of a logout token's events claim
// that makes it one (OpenID Connect Back-Channel Logout 1.0 §2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutClaims returns the claims of a logout token to clientID for the
// user sub's session sid (Back-Channel Logout 1.0 §2.4): iss, aud, iat now,
// exp two minutes later (the spec's recommended most), a fresh jti, the
// events member, and sub and sid unless they are "". A test changes the
// map to make an invalid one.
func (p *Provider) LogoutClaims(clientID, sub, sid string, now time.Time) map[string]any {
	c := map[string]any{
		"iss":    p.Issuer,
		"aud":    clientID,
		"iat":    now.Unix(),
		"exp":    now.Add(2 * time.Minute).Unix(),
		"jti":    rand.Text(),
		"events": map[string]any{BackchannelLogoutEvent: map[string]any{}},
	}
	if sub != "" {
		c["sub"] = sub
	}
	if sid != "" {
		c["sid"] = sid
	}
	return c
}

// SignLogoutToken signs claims as a logout token, explicitly typed (§2.4).
func (p *Provider) SignLogoutToken(claims map[string]any) (string, error) {
	return p.Keys.Sign(jose.ContentType("logout+jwt"), claims)
}

// sweepLocked drops whatever has expired, at most once a minute, so that a
// provider left running for days does not grow. p.mu must be held.
func (p *Provider) sweepLocked(now time.Time) {
	if now.Before(p.nextSweep) {
		return
	}
	p.nextSweep = now.Add(time.Minute)
	maps.DeleteFunc(p.codes, func(_ string, c *code) bool { return now.After(c.authTime.Add(codeTTL)) })
	maps.DeleteFunc(p.usedCodes, func(_ string, g *Grant) bool { return expired(g, now) })
	maps.DeleteFunc(p.refresh, func(_ string, rt *refreshToken) bool { return expired(rt.grant, now) })
	maps.DeleteFunc(p.access, func(_ string, at *issuedAccess) bool { return now.After(at.expires) })
}
