package astest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// BackchannelLogoutEvent is the member of a logout token's events claim
// that makes it one (OpenID Connect Back-Channel Logout 1.0 §2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// SetSession makes sid the provider session of the logins authorized from
// now on: their ID tokens carry it as sid (OpenID Connect Front-Channel
// Logout 1.0 §3, which Back-Channel Logout 1.0 §2.1 reuses). "" (the
// default) issues ID tokens without sid. Logins already authorized keep
// the session they had.
func (s *Server) SetSession(sid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sid = sid
}

// Subject returns the logged-in user's sub.
func (s *Server) Subject() string { return s.subject }

// LogoutClaims returns the claims of a valid logout token for the user's
// session sid (OpenID Connect Back-Channel Logout 1.0 §2.4): iss, aud (the
// client), iat now, exp two minutes later, a fresh jti, the back-channel
// events member, and sub and sid unless they are "". Tests change the map
// before SignLogoutToken to make an invalid one.
func (s *Server) LogoutClaims(sub, sid string, now time.Time) map[string]any {
	c := map[string]any{
		"iss":    s.URL,
		"aud":    s.ClientID,
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

// Signing says how SignLogoutToken signs. The zero value signs as a
// Provider should: RS256 with the current key, typ "logout+jwt".
type Signing struct {
	// Alg is the JWS algorithm: "" or "RS256", another RSA algorithm
	// ("RS512", "PS256", ...), or "none" for an unsigned token.
	Alg string
	// Typ is the typ header; "" means "logout+jwt", "-" leaves it out.
	Typ string
	// OtherKey signs with a key the JWKS does not publish, under the
	// current kid: a bad signature.
	OtherKey bool
}

// SignLogoutToken signs claims as a logout token.
func (s *Server) SignLogoutToken(claims map[string]any, how Signing) (string, error) {
	typ := how.Typ
	switch typ {
	case "":
		typ = "logout+jwt"
	case "-":
		typ = ""
	}
	if how.Alg == "none" {
		header := map[string]string{"alg": "none"}
		if typ != "" {
			header["typ"] = typ
		}
		h, err := json.Marshal(header)
		if err != nil {
			return "", fmt.Errorf("astest: %w", err)
		}
		payload, err := json.Marshal(claims)
		if err != nil {
			return "", fmt.Errorf("astest: marshal claims: %w", err)
		}
		enc := base64.RawURLEncoding
		return enc.EncodeToString(h) + "." + enc.EncodeToString(payload) + ".", nil
	}
	alg := jose.SignatureAlgorithm(how.Alg)
	if alg == "" {
		alg = jose.RS256
	}
	key, kid := s.signingKey()
	if how.OtherKey {
		other, err := otherKey()
		if err != nil {
			return "", err
		}
		key = other
	}
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		return "", fmt.Errorf("astest: signer: %w", err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("astest: sign: %w", err)
	}
	return tok, nil
}
