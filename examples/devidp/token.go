package devidp

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// sessionTTL bounds a login: its refresh tokens stop working this long after
// the user signed in, however often they were rotated.
const sessionTTL = 12 * time.Hour

// grant is one login: every token issued from one authorization code shares
// it, and revoking it revokes them all (the refresh-token family).
type grant struct {
	clientID, scope   string
	sid               string // the provider session (opSession) it belongs to
	user              *User
	authTime, expires time.Time
	revoked           bool
}

// refreshToken is an opaque refresh token. A retired one was replaced by
// rotation; presenting it again is reuse.
type refreshToken struct {
	grant   *grant
	retired bool
}

// issuedAccess is an access token's server-side record, for userinfo and
// revocation; the API checks only the JWT.
type issuedAccess struct {
	grant   *grant
	expires time.Time
	revoked bool
}

// tokenResponse is the successful token answer (RFC 6749 §5.1, OpenID
// Connect Core §3.1.3.3).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope"`
}

var (
	errUnknownCode = &oauthError{http.StatusBadRequest, "invalid_grant",
		"unknown, used or expired authorization code", ""}
	errCodeClient = &oauthError{http.StatusBadRequest, "invalid_grant",
		"the authorization code was issued to another client", ""}
	errCodeRedirectURI = &oauthError{http.StatusBadRequest, "invalid_grant",
		"redirect_uri does not match the authorization request", ""}
	errPKCE = &oauthError{http.StatusBadRequest, "invalid_grant",
		"PKCE verification failed (code_verifier)", ""}
	errUnknownRefresh = &oauthError{http.StatusBadRequest, "invalid_grant",
		"unknown, expired or revoked refresh token", ""}
	errRefreshReuse = &oauthError{http.StatusBadRequest, "invalid_grant",
		"refresh token reuse detected; all tokens of this login are revoked", ""}
	errScopeWidened = &oauthError{http.StatusBadRequest, "invalid_scope",
		"requested scope exceeds the granted scope", ""}
	errUnsupportedGrant = &oauthError{http.StatusBadRequest, "unsupported_grant_type",
		"grant_type must be authorization_code or refresh_token", ""}
)

// token is the token endpoint (RFC 6749 §3.2).
func (s *Server) token(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return errBadForm
	}
	c, err := s.authenticateClient(r)
	if err != nil {
		return err
	}
	var resp *tokenResponse
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		resp, err = s.redeemCode(c, r.PostForm)
	case "refresh_token":
		resp, err = s.refresh(c, r.PostForm)
	default:
		return errUnsupportedGrant
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// redeemCode is the authorization_code grant (RFC 6749 §4.1.3).
func (s *Server) redeemCode(c *Client, form url.Values) (*tokenResponse, error) {
	code := form.Get("code")
	s.mu.Lock()
	ac := s.codes[code]
	// Single use, even when this attempt fails, so that a verifier cannot
	// be guessed by retrying.
	delete(s.codes, code)
	s.mu.Unlock()
	now := time.Now()
	switch {
	case ac == nil, now.After(ac.expires):
		return nil, errUnknownCode
	case ac.clientID != c.ID:
		return nil, errCodeClient
	case form.Get("redirect_uri") != ac.redirectURI:
		return nil, errCodeRedirectURI
	case !oidcfake.PKCEValid(form.Get("code_verifier"), ac.challenge):
		return nil, errPKCE
	}
	g := &grant{clientID: c.ID, scope: ac.scope, sid: ac.sid, user: ac.user, authTime: ac.authTime, expires: ac.authTime.Add(sessionTTL)}
	s.mu.Lock()
	sess := s.sessions[ac.sid]
	if sess != nil {
		sess.grants = append(sess.grants, g)
	}
	s.mu.Unlock()
	if sess == nil {
		// The session ended (logged out on the index page) between the
		// sign-in and the code's redemption.
		return nil, errUnknownCode
	}
	return s.issue(g, ac.scope, ac.nonce, now)
}

// refresh is the refresh_token grant (RFC 6749 §6), always rotating, with
// reuse detection (RFC 9700 §4.14.2).
func (s *Server) refresh(c *Client, form url.Values) (*tokenResponse, error) {
	now := time.Now()
	s.mu.Lock()
	rt := s.refreshTokens[form.Get("refresh_token")]
	switch {
	case rt == nil, rt.grant.revoked, rt.grant.clientID != c.ID, now.After(rt.grant.expires):
		s.mu.Unlock()
		return nil, errUnknownRefresh
	case rt.retired:
		// Someone holds a token that was already exchanged: the client or
		// an attacker has a stolen copy. Revoke the family so that neither
		// can go on.
		rt.grant.revoked = true
		s.mu.Unlock()
		return nil, errRefreshReuse
	}
	g := rt.grant
	// RFC 6749 §6: a narrower scope may be asked for, never a wider one.
	scope := g.scope
	if req := form.Get("scope"); req != "" {
		granted := strings.Fields(g.scope)
		for _, sc := range strings.Fields(req) {
			if !slices.Contains(granted, sc) {
				s.mu.Unlock()
				return nil, errScopeWidened
			}
		}
		scope = req
	}
	rt.retired = true
	s.mu.Unlock()
	// OpenID Connect Core §12.2: no nonce in refreshed ID tokens.
	return s.issue(g, scope, "", now)
}

// issue mints an access token, a refresh token and, for the openid scope,
// an ID token for g.
func (s *Server) issue(g *grant, scope, nonce string, now time.Time) (*tokenResponse, error) {
	jti := rand.Text()
	at, err := s.accessToken(g, scope, jti, now)
	if err != nil {
		return nil, err
	}
	resp := &tokenResponse{
		AccessToken: at,
		TokenType:   "Bearer",
		// Rounded up so that a sub-second TTL is not sent as 0, which
		// clients read as "no expiry".
		ExpiresIn:    int64(math.Ceil(s.ttl.Seconds())),
		RefreshToken: rand.Text() + rand.Text(),
		Scope:        scope,
	}
	if hasScope(scope, "openid") {
		if resp.IDToken, err = s.idToken(g, scope, nonce, now); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	s.accessTokens[jti] = &issuedAccess{grant: g, expires: now.Add(s.ttl)}
	s.refreshTokens[resp.RefreshToken] = &refreshToken{grant: g}
	return resp, nil
}

func hasScope(scope, want string) bool { return slices.Contains(strings.Fields(scope), want) }

// authenticateClient checks client_secret_basic or client_secret_post (RFC
// 6749 §2.3.1) and returns the client. r.ParseForm must have run.
func (s *Server) authenticateClient(r *http.Request) (*Client, error) {
	id, secret, err := oidcfake.ClientCredentials(r)
	switch {
	case errors.Is(err, oidcfake.ErrTwoClientAuths):
		return nil, errTwoClientAuths
	case err != nil:
		return nil, errInvalidClient
	}
	c := s.clients[id]
	if c == nil || subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		return nil, errInvalidClient
	}
	return c, nil
}

// revoke is the revocation endpoint (RFC 7009 §2).
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return errBadForm
	}
	c, err := s.authenticateClient(r)
	if err != nil {
		return err
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		return errMissingToken
	}
	// The hint only speeds up the search (RFC 7009 §2.1); both kinds are
	// tried whatever it says.
	jti, client, _ := s.verifyAccessToken(tok, time.Time{})
	s.mu.Lock()
	if rt := s.refreshTokens[tok]; rt != nil && rt.grant.clientID == c.ID {
		// RFC 7009 §2.1: revoking a refresh token SHOULD also revoke the
		// access tokens of the same grant; here the whole family goes.
		rt.grant.revoked = true
	}
	if at := s.accessTokens[jti]; at != nil && client == c.ID {
		at.revoked = true
	}
	s.mu.Unlock()
	// RFC 7009 §2.2: 200 also for unknown, invalid or foreign tokens.
	w.WriteHeader(http.StatusOK)
	return nil
}
