package astest

import (
	"time"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// BackchannelLogoutEvent is the member of a logout token's events claim
// that makes it one (OpenID Connect Back-Channel Logout 1.0 §2.4).
const BackchannelLogoutEvent = oidcfake.BackchannelLogoutEvent

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
func (s *Server) Subject() string { return subject }

// user is the logged-in user, named "Demo User".
func (s *Server) user() oidcfake.User {
	return oidcfake.User{Subject: subject, Name: "Demo User", Email: subject + "@example.com"}
}

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
