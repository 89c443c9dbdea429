package astest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// idTokenTTL is the ID token lifetime, independent of AccessTokenTTL.
const idTokenTTL = 5 * time.Minute

// apiAudience is the access tokens' aud.
const apiAudience = "api"

// otherIssuer and otherClient are what the wrong-issuer, wrong-audience and
// wrong-azp faults put in.
const (
	otherIssuer = "https://wrong-issuer.example"
	otherClient = "another-client"
)

// accessClaims are the access token's claims, shaped like RFC 9068 §2.2.
type accessClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	ID       string `json:"jti"`
	Padding  string `json:"pad,omitempty"`
}

// idClaims are the ID token's claims (OpenID Connect Core §2, §5.1).
type idClaims struct {
	Issuer          string `json:"iss"`
	Subject         string `json:"sub,omitempty"`
	Audience        string `json:"aud"`
	AuthorizedParty string `json:"azp"`
	Expiry          int64  `json:"exp"`
	IssuedAt        int64  `json:"iat,omitempty"`
	AuthTime        int64  `json:"auth_time"`
	Nonce           string `json:"nonce,omitempty"`
	SID             string `json:"sid,omitempty"`
	Name            string `json:"name"`
	Email           string `json:"email"`
	EmailVerified   bool   `json:"email_verified"`
}

// userName is the display name of the Subject in ID tokens and userinfo.
const userName = "Demo User"

func (s *Server) email() string { return s.subject + "@example.com" }

// accessToken mints an RS256 access token for g.
func (s *Server) accessToken(g *grant, scope, jti string, now time.Time, f *Faults) (string, error) {
	c := accessClaims{
		Issuer:   s.URL,
		Subject:  g.subject,
		Audience: apiAudience,
		ClientID: g.clientID,
		Scope:    scope,
		IssuedAt: now.Unix(),
		Expiry:   now.Add(f.accessTokenTTL()).Unix(),
		ID:       jti,
	}
	if f.AccessTokenPadding > 0 {
		c.Padding = strings.Repeat("x", f.AccessTokenPadding)
	}
	// RFC 9068 §2.1: access tokens are typed "at+jwt".
	key, kid := s.signingKey()
	return sign(key, kid, "at+jwt", c)
}

// idToken mints an ID token for g with the ID token faults of f applied.
func (s *Server) idToken(g *grant, nonce string, now time.Time, f *Faults) (string, error) {
	c := idClaims{
		Issuer:          s.URL,
		Subject:         g.subject,
		Audience:        g.clientID,
		AuthorizedParty: g.clientID,
		Expiry:          now.Add(idTokenTTL).Unix(),
		IssuedAt:        now.Unix(),
		AuthTime:        g.authTime.Unix(),
		Nonce:           nonce,
		SID:             g.sid,
		Name:            userName,
		Email:           s.email(),
		EmailVerified:   true,
	}
	if f.IDTokenWrongIssuer {
		c.Issuer = otherIssuer
	}
	if f.IDTokenSubject != "" {
		c.Subject = f.IDTokenSubject
	}
	if f.IDTokenNoSubject {
		c.Subject = ""
	}
	if f.IDTokenExpired {
		c.IssuedAt = now.Add(-idTokenTTL - time.Minute).Unix()
		c.Expiry = now.Add(-time.Minute).Unix()
	}
	if f.IDTokenWrongNonce {
		c.Nonce = "wrong-" + rand.Text()
	}
	if f.IDTokenWrongAudience {
		c.Audience = otherClient
	}
	if f.IDTokenWrongAzp {
		c.AuthorizedParty = otherClient
	}
	if f.IDTokenIssuedInFuture {
		c.IssuedAt = now.Add(10 * time.Minute).Unix()
		c.AuthTime = c.IssuedAt
		c.Expiry = now.Add(10*time.Minute + idTokenTTL).Unix()
	}
	if f.IDTokenNoIssuedAt {
		c.IssuedAt = 0
	}
	key, kid := s.signingKey()
	switch {
	case f.IDTokenAlgNone:
		return unsigned(c)
	case f.IDTokenBadSignature:
		other, err := otherKey()
		if err != nil {
			return "", err
		}
		return sign(other, kid, "JWT", c)
	case f.IDTokenUnknownKid:
		return sign(key, "unknown-"+rand.Text(), "JWT", c)
	}
	return sign(key, kid, "JWT", c)
}

// sign serialises claims as a compact RS256 JWS with kid and typ.
func sign(key *rsa.PrivateKey, kid string, typ jose.ContentType, claims any) (string, error) {
	tok, err := oidcfake.Sign(key, kid, typ, claims)
	if err != nil {
		return "", fmt.Errorf("astest: %w", err)
	}
	return tok, nil
}

// unsigned is an "alg": "none" JWT (RFC 7519 §6): no signature at all, which
// a relying party must refuse. go-jose will not make one, so it is built by
// hand.
func unsigned(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("astest: marshal claims: %w", err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + ".", nil
}

// otherKey is the key behind IDTokenBadSignature, shared by every Server
// and made on first use so that Servers that never need it start faster.
var otherKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("astest: generate key: %w", err)
	}
	return k, nil
})

// verifyAccessToken checks an access token's signature, issuer, audience and
// expiry, with no leeway, and returns its jti.
func (s *Server) verifyAccessToken(raw string, now time.Time) (string, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return "", errInvalidToken
	}
	var c jwt.Claims
	verified := false
	for _, pub := range s.publicKeys() {
		if tok.Claims(pub, &c) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return "", errInvalidToken
	}
	want := jwt.Expected{Issuer: s.URL, AnyAudience: jwt.Audience{apiAudience}, Time: now}
	if err := c.ValidateWithLeeway(want, 0); err != nil || c.ID == "" {
		return "", errInvalidToken
	}
	return c.ID, nil
}
