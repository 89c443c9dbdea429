package astest

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

// grant is one login: every token issued from one authorization code shares
// it, and revoking it revokes them all (the refresh-token family).
type grant struct {
	clientID, subject, scope string
	sid                      string // "" or the ID tokens' sid (SetSession)
	authTime                 time.Time
	revoked                  bool
}

// refreshToken is an opaque refresh token. A retired one was replaced by
// rotation; presenting it again is reuse.
type refreshToken struct {
	grant   *grant
	retired bool
}

// tokenResponse is the successful token answer (RFC 6749 §5.1, OpenID
// Connect Core §3.1.3.3).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

var (
	errUnknownCode = &oauthError{http.StatusBadRequest, "invalid_grant",
		"unknown, used or expired authorization code", ""}
	errCodeClient = &oauthError{http.StatusBadRequest, "invalid_grant",
		"authorization code was issued to another client", ""}
	errCodeRedirectURI = &oauthError{http.StatusBadRequest, "invalid_grant",
		"redirect_uri does not match the authorization request", ""}
	errPKCE = &oauthError{http.StatusBadRequest, "invalid_grant",
		"PKCE verification failed", ""}
	errUnknownRefresh = &oauthError{http.StatusBadRequest, "invalid_grant",
		"unknown or revoked refresh token", ""}
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
		s.snapshot("token:")
		return errBadForm
	}
	f := s.snapshot("token:" + r.PostForm.Get("grant_type"))
	s.recordClientAuth(r)

	if f.TokenDelay > 0 {
		t := time.NewTimer(f.TokenDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return errClientGone
		case <-s.done:
			return errClientGone
		}
	}
	if f.TokenStatus != 0 {
		return statusError(f.TokenStatus, errInvalidClient)
	}
	if f.TokenGarbage {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("<html><body>502 Bad Gateway</body></html>\n"))
		return nil
	}
	if f.TokenError != "" {
		e := &oauthError{http.StatusBadRequest, f.TokenError, "astest: simulated " + f.TokenError, ""}
		if f.TokenError == "invalid_client" {
			e.status, e.wwwAuthenticate = http.StatusUnauthorized, errInvalidClient.wwwAuthenticate
		}
		return e
	}

	clientID, err := s.authenticateClient(r)
	if err != nil {
		return err
	}
	var resp *tokenResponse
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		resp, err = s.redeemCode(clientID, r.PostForm, &f)
	case "refresh_token":
		resp, err = s.refresh(clientID, r.PostForm, &f)
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
func (s *Server) redeemCode(clientID string, form url.Values, f *Faults) (*tokenResponse, error) {
	code := form.Get("code")
	s.mu.Lock()
	ac, ok := s.codes[code]
	// Single use, even when this attempt fails, so a verifier cannot be
	// guessed by retrying.
	delete(s.codes, code)
	if !ok {
		// RFC 6749 §4.1.2: a code used twice SHOULD revoke the tokens
		// issued for it.
		if g := s.usedCodes[code]; g != nil {
			g.revoked = true
		}
		s.mu.Unlock()
		return nil, errUnknownCode
	}
	s.mu.Unlock()

	now := time.Now()
	switch {
	case now.After(ac.expires):
		return nil, errUnknownCode
	case ac.clientID != clientID:
		return nil, errCodeClient
	case form.Get("redirect_uri") != ac.redirectURI:
		return nil, errCodeRedirectURI
	case !oidcfake.PKCEValid(form.Get("code_verifier"), ac.challenge):
		return nil, errPKCE
	}
	g := &grant{clientID: clientID, subject: s.subject, scope: ac.scope, sid: ac.sid, authTime: now}
	s.mu.Lock()
	s.usedCodes[code] = g
	s.mu.Unlock()
	// An ID token only for an OpenID Connect request (OpenID Connect Core
	// §3.1.3.3); a plain OAuth 2.0 one gets none.
	withID := (openID(ac.scope) || f.IDTokenWithoutOpenID) && !f.IDTokenOmitted
	return s.issue(g, ac.scope, ac.nonce, true, withID, now, f)
}

// refresh is the refresh_token grant (RFC 6749 §6) with rotation and reuse
// detection (RFC 9700 §4.14.2).
func (s *Server) refresh(clientID string, form url.Values, f *Faults) (*tokenResponse, error) {
	old := form.Get("refresh_token")
	s.mu.Lock()
	rt, ok := s.refreshTokens[old]
	switch {
	case !ok || rt.grant.revoked || rt.grant.clientID != clientID:
		s.mu.Unlock()
		return nil, errUnknownRefresh
	case rt.retired:
		// Someone holds a token that was already exchanged: either the
		// client or an attacker has a stolen copy. Revoke the family so
		// neither can go on.
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
	if f.RotateRefreshTokens {
		rt.retired = true
	}
	s.mu.Unlock()
	// OpenID Connect Core §12.2: no nonce in refreshed ID tokens.
	return s.issue(g, scope, "", f.RotateRefreshTokens, f.IDTokenOnRefresh && (openID(g.scope) || f.IDTokenWithoutOpenID), time.Now(), f)
}

// openID reports whether scope asks for OpenID Connect.
func openID(scope string) bool { return slices.Contains(strings.Fields(scope), "openid") }

// issue mints an access token and, when asked, a refresh token and an ID
// token for g.
func (s *Server) issue(g *grant, scope, nonce string, withRefresh, withID bool, now time.Time, f *Faults) (*tokenResponse, error) {
	ttl := f.accessTokenTTL()
	jti := rand.Text()
	at, err := s.accessToken(g, scope, jti, now, f)
	if err != nil {
		return nil, err
	}
	resp := &tokenResponse{
		AccessToken: at,
		TokenType:   "Bearer",
		// Rounded up so that a sub-second TTL is not sent as 0, which
		// clients read as "no expiry".
		ExpiresIn: int64(math.Ceil(ttl.Seconds())),
		Scope:     scope,
	}
	if withID {
		if resp.IDToken, err = s.idToken(g, nonce, now, f); err != nil {
			return nil, err
		}
	}
	if withRefresh {
		resp.RefreshToken = rand.Text() + rand.Text()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accessTokens[jti] = g
	if withRefresh {
		s.refreshTokens[resp.RefreshToken] = &refreshToken{grant: g}
	}
	return resp, nil
}

// clientAuthMethod says which method r uses, without checking it.
func clientAuthMethod(r *http.Request) string {
	_, _, basic := r.BasicAuth()
	post := r.PostForm.Has("client_secret")
	switch {
	case basic && post:
		return "" // refused by authenticateClient
	case basic:
		return oidcfake.AuthBasic
	case post:
		return oidcfake.AuthPost
	}
	return ""
}

func (s *Server) recordClientAuth(r *http.Request) {
	m := clientAuthMethod(r)
	s.mu.Lock()
	s.lastClientAuth = m
	s.mu.Unlock()
}

// authenticateClient checks client_secret_basic or client_secret_post (RFC
// 6749 §2.3.1) and returns the client ID. r.ParseForm must have run.
func (s *Server) authenticateClient(r *http.Request) (string, error) {
	id, secret, err := oidcfake.ClientCredentials(r)
	switch {
	case errors.Is(err, oidcfake.ErrTwoClientAuths):
		return "", errTwoClientAuths
	case err != nil:
		return "", errInvalidClient
	}
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(s.ClientID))
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.ClientSecret))
	if idOK&secretOK != 1 {
		return "", errInvalidClient
	}
	return id, nil
}

// revoke is the revocation endpoint (RFC 7009 §2).
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) error {
	s.snapshot("revocation")
	if err := r.ParseForm(); err != nil {
		return errBadForm
	}
	s.recordClientAuth(r)
	clientID, err := s.authenticateClient(r)
	if err != nil {
		return err
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		return errMissingToken
	}
	s.mu.Lock()
	s.revoked[tok] = true
	// RFC 7009 §2.1: revoking a refresh token SHOULD also revoke the access
	// tokens of the same grant; here the whole family goes.
	if rt, ok := s.refreshTokens[tok]; ok && rt.grant.clientID == clientID {
		rt.grant.revoked = true
	}
	s.mu.Unlock()
	// RFC 7009 §2.2: 200 also for unknown or invalid tokens.
	w.WriteHeader(http.StatusOK)
	return nil
}
