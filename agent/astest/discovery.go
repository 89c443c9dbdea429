package astest

import (
	"net/http"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// metadata is the shared OpenID Provider Metadata with the pushed
// authorization request extension (RFC 9126 §5) the agent uses.
type metadata struct {
	oidcfake.Metadata
	PushedAuthorizationRequestEndpoint string `json:"pushed_authorization_request_endpoint"`
	RequirePushedAuthorizationRequests bool   `json:"require_pushed_authorization_requests"`
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) error {
	f := s.snapshot("discovery")
	if f.DiscoveryStatus != 0 {
		return statusError(f.DiscoveryStatus, oidcfake.ErrInvalidToken)
	}
	oidcfake.WriteJSON(w, http.StatusOK, metadata{
		Metadata:                           oidcfake.NewMetadata(s.URL, []string{"iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "name", "email", "email_verified"}),
		PushedAuthorizationRequestEndpoint: s.URL + "/par",
		RequirePushedAuthorizationRequests: f.RequirePAR,
	})
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
