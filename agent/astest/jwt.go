package astest

import (
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// apiAudience is the access tokens' aud.
const apiAudience = "api"

// otherIssuer and otherClient are what the wrong-issuer, wrong-audience and
// wrong-azp faults put in.
const (
	otherIssuer = "https://wrong-issuer.example"
	otherClient = "another-client"
)

// signID signs an ID token's claims with the ID token faults of f applied.
func (s *Server) signID(c oidcfake.IDClaims, now time.Time, f *Faults) (string, error) {
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
		c.IssuedAt = now.Add(-oidcfake.IDTokenTTL - time.Minute).Unix()
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
		c.Expiry = now.Add(10*time.Minute + oidcfake.IDTokenTTL).Unix()
	}
	if f.IDTokenNoIssuedAt {
		c.IssuedAt = 0
	}
	var how Signing
	kid := ""
	switch {
	case f.IDTokenAlgNone:
		how.Alg = "none"
	case f.IDTokenBadSignature:
		how.OtherKey = true
	case f.IDTokenUnknownKid:
		kid = "unknown-" + rand.Text()
	}
	return s.sign(c, "JWT", how, kid)
}

// sign signs claims as how says, with typ unless how.Typ sets another, and
// under kid instead of the current key's unless kid is "".
func (s *Server) sign(claims any, typ string, how Signing, kid string) (string, error) {
	switch how.Typ {
	case "":
	case "-":
		typ = ""
	default:
		typ = how.Typ
	}
	if how.Alg == "none" {
		return unsigned(typ, claims)
	}
	key, current := s.op.Keys.Current()
	if how.OtherKey {
		other, err := otherKey()
		if err != nil {
			return "", err
		}
		key = other
	}
	return oidcfake.Sign(jose.SignatureAlgorithm(cmp.Or(how.Alg, "RS256")), key, cmp.Or(kid, current), jose.ContentType(typ), claims)
}

// unsigned is an "alg": "none" JWT (RFC 7519 §6): no signature at all, which
// a relying party must refuse. go-jose will not make one, so it is built by
// hand. typ "" leaves the typ header out.
func unsigned(typ string, claims any) (string, error) {
	header := map[string]string{"alg": "none"}
	if typ != "" {
		header["typ"] = typ
	}
	h, _ := json.Marshal(header) // strings always marshal
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("astest: marshal claims: %w", err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(payload) + ".", nil
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

// RotateKey makes a new RSA signing key with a new kid, as an authorization
// server rotating its keys does (OpenID Connect Core §10.1.1): tokens issued
// from now on are signed with it, and the JWKS publishes it first, followed
// by the keys it replaced, so that tokens already issued still verify. It
// returns the new kid.
func (s *Server) RotateKey() (string, error) { return s.op.Keys.Rotate() }

// BackchannelLogoutEvent is the member of a logout token's events claim
// that makes it one (OpenID Connect Back-Channel Logout 1.0 §2.4).
const BackchannelLogoutEvent = oidcfake.BackchannelLogoutEvent

// LogoutClaims returns the claims of a valid logout token for the user's
// session sid (OpenID Connect Back-Channel Logout 1.0 §2.4): iss, aud (the
// client), iat now, exp two minutes later, a fresh jti, the back-channel
// events member, and sub and sid unless they are "". Tests change the map
// before SignLogoutToken to make an invalid one.
func (s *Server) LogoutClaims(sub, sid string, now time.Time) map[string]any {
	return s.op.LogoutClaims(s.ClientID, sub, sid, now)
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
	return s.sign(claims, "logout+jwt", how, "")
}
