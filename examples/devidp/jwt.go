package devidp

import (
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// idTokenTTL is the ID tokens' lifetime, independent of AccessTokenTTL.
const idTokenTTL = 10 * time.Minute

// accessClaims are the access token's claims, shaped like RFC 9068 §2.2,
// plus the user's name for the demo API to greet.
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
}

// idClaims are the ID token's claims (OpenID Connect Core §2); the profile
// and email scopes add theirs (§5.4).
type idClaims struct {
	Issuer            string `json:"iss"`
	Subject           string `json:"sub"`
	Audience          string `json:"aud"`
	AuthorizedParty   string `json:"azp"`
	Expiry            int64  `json:"exp"`
	IssuedAt          int64  `json:"iat"`
	AuthTime          int64  `json:"auth_time"`
	Nonce             string `json:"nonce,omitempty"`
	SessionID         string `json:"sid"` // Back-Channel Logout 1.0 §2.1
	Name              string `json:"name,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	Email             string `json:"email,omitempty"`
	EmailVerified     *bool  `json:"email_verified,omitempty"`
}

// accessToken mints an RS256 access token for g.
func (s *Server) accessToken(g *grant, scope, jti string, now time.Time) (string, error) {
	return s.sign("at+jwt", accessClaims{ // RFC 9068 §2.1: typed at+jwt
		Issuer:   s.issuer,
		Subject:  g.user.Subject,
		Audience: s.audience,
		ClientID: g.clientID,
		Scope:    scope,
		Name:     g.user.Name,
		IssuedAt: now.Unix(),
		Expiry:   now.Add(s.ttl).Unix(),
		AuthTime: g.authTime.Unix(),
		ID:       jti,
	})
}

// idToken mints an ID token for g with the claims scope asks for.
func (s *Server) idToken(g *grant, scope, nonce string, now time.Time) (string, error) {
	c := idClaims{
		Issuer:          s.issuer,
		Subject:         g.user.Subject,
		Audience:        g.clientID,
		AuthorizedParty: g.clientID,
		Expiry:          now.Add(idTokenTTL).Unix(),
		IssuedAt:        now.Unix(),
		AuthTime:        g.authTime.Unix(),
		Nonce:           nonce,
		SessionID:       g.sid,
	}
	addUserClaims(g.user, scope, &c.Name, &c.PreferredUsername, &c.Email, &c.EmailVerified)
	return s.sign("JWT", c)
}

// addUserClaims fills the claims the profile and email scopes ask for
// (OpenID Connect Core §5.4).
func addUserClaims(u *User, scope string, name, username, email *string, verified **bool) {
	if hasScope(scope, "profile") {
		*name, *username = u.Name, u.Subject
	}
	if hasScope(scope, "email") {
		t := true
		*email, *verified = u.Email, &t
	}
}

// sign serialises claims as a compact RS256 JWS with the provider's key.
func (s *Server) sign(typ jose.ContentType, claims any) (string, error) {
	tok, err := oidcfake.Sign(s.key, s.kid, typ, claims)
	if err != nil {
		return "", fmt.Errorf("devidp: %w", err)
	}
	return tok, nil
}

var errNotOurs = errors.New("devidp: not a token of this provider")

// parseOwn verifies that raw is an RS256 JWT signed by this provider and
// issued by it, and decodes its claims into the standard claims and extra.
func (s *Server) parseOwn(raw string, extra any) (*jwt.Claims, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, errNotOurs
	}
	var c jwt.Claims
	out := []any{&c}
	if extra != nil {
		out = append(out, extra)
	}
	if err := tok.Claims(&s.key.PublicKey, out...); err != nil {
		return nil, errNotOurs
	}
	if c.Issuer != s.issuer {
		return nil, errNotOurs
	}
	return &c, nil
}

// verifyAccessToken checks an access token's signature, issuer and audience
// and, unless now is zero, its expiry with no leeway; it returns the jti and
// client_id.
func (s *Server) verifyAccessToken(raw string, now time.Time) (jti, clientID string, err error) {
	var extra struct {
		ClientID string `json:"client_id"`
	}
	c, err := s.parseOwn(raw, &extra)
	if err != nil || !c.Audience.Contains(s.audience) || c.ID == "" {
		return "", "", errInvalidToken
	}
	if !now.IsZero() {
		if err := c.ValidateWithLeeway(jwt.Expected{Time: now}, 0); err != nil || c.Expiry == nil {
			return "", "", errInvalidToken
		}
	}
	return c.ID, extra.ClientID, nil
}

// verifyIDTokenHint checks an id_token_hint and returns its audience and
// sid. An expired ID token is accepted (RP-Initiated Logout 1.0 §2): the
// user may log out long after signing in.
func (s *Server) verifyIDTokenHint(raw string) (aud []string, sid string, err error) {
	var extra struct {
		SessionID string `json:"sid"`
	}
	c, err := s.parseOwn(raw, &extra)
	if err != nil {
		return nil, "", err
	}
	return c.Audience, extra.SessionID, nil
}
