package astest

import (
	"net/http"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) error {
	f := s.snapshot("discovery")
	if f.DiscoveryStatus != 0 {
		return statusError(f.DiscoveryStatus, oidcfake.ErrInvalidToken)
	}
	md := oidcfake.NewMetadata(s.URL, []string{"iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "name", "email", "email_verified"})
	// The pushed authorization request extension (RFC 9126 §5) the agent uses.
	md["pushed_authorization_request_endpoint"] = s.URL + "/par"
	md["require_pushed_authorization_requests"] = f.RequirePAR
	oidcfake.WriteJSON(w, http.StatusOK, md)
	return nil
}

// statusError is the JSON error answer for a status forced by a fault; a 401
// is answered as unauthorized is, WWW-Authenticate included.
func statusError(status int, unauthorized *oidcfake.Error) *oidcfake.Error {
	code := "invalid_request"
	switch {
	case status == http.StatusUnauthorized:
		return &oidcfake.Error{Status: status, Code: unauthorized.Code, Description: "astest: simulated status",
			WWWAuthenticate: unauthorized.WWWAuthenticate}
	case status == http.StatusServiceUnavailable:
		code = "temporarily_unavailable"
	case status >= 500:
		code = "server_error"
	}
	return &oidcfake.Error{Status: status, Code: code, Description: "astest: simulated status"}
}

// RotateKey makes a new RSA signing key with a new kid, as an authorization
// server rotating its keys does (OpenID Connect Core §10.1.1): tokens issued
// from now on are signed with it, and the JWKS publishes it first, followed
// by the keys it replaced, so that tokens already issued still verify. It
// returns the new kid.
func (s *Server) RotateKey() (string, error) { return s.op.Keys.Rotate() }
