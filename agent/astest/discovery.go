package astest

import (
	"net/http"
)

// metadata is the OpenID Provider Metadata (OpenID Connect Discovery 1.0 §3)
// with the OAuth extensions the agent uses.
type metadata struct {
	Issuer                             string   `json:"issuer"`
	AuthorizationEndpoint              string   `json:"authorization_endpoint"`
	TokenEndpoint                      string   `json:"token_endpoint"`
	UserinfoEndpoint                   string   `json:"userinfo_endpoint"`
	JWKSURI                            string   `json:"jwks_uri"`
	EndSessionEndpoint                 string   `json:"end_session_endpoint"`
	PushedAuthorizationRequestEndpoint string   `json:"pushed_authorization_request_endpoint"`
	RevocationEndpoint                 string   `json:"revocation_endpoint"`
	ResponseTypesSupported             []string `json:"response_types_supported"`
	ResponseModesSupported             []string `json:"response_modes_supported"`
	SubjectTypesSupported              []string `json:"subject_types_supported"`
	GrantTypesSupported                []string `json:"grant_types_supported"`
	ScopesSupported                    []string `json:"scopes_supported"`
	ClaimsSupported                    []string `json:"claims_supported"`
	CodeChallengeMethodsSupported      []string `json:"code_challenge_methods_supported"`
	IDTokenSigningAlgValuesSupported   []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported  []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods      []string `json:"revocation_endpoint_auth_methods_supported"`
	// RFC 9207 §3.
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
	// RFC 9126 §5.
	RequirePushedAuthorizationRequests bool `json:"require_pushed_authorization_requests"`
}

var clientAuthMethods = []string{authBasic, authPost}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) error {
	f := s.snapshot("discovery")
	if f.DiscoveryStatus != 0 {
		return statusError(f.DiscoveryStatus, errInvalidToken)
	}
	writeJSON(w, http.StatusOK, metadata{
		Issuer:                                     s.URL,
		AuthorizationEndpoint:                      s.URL + "/authorize",
		TokenEndpoint:                              s.URL + "/token",
		UserinfoEndpoint:                           s.URL + "/userinfo",
		JWKSURI:                                    s.URL + "/jwks",
		EndSessionEndpoint:                         s.URL + "/logout",
		PushedAuthorizationRequestEndpoint:         s.URL + "/par",
		RevocationEndpoint:                         s.URL + "/revoke",
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{"query"},
		SubjectTypesSupported:                      []string{"public"},
		GrantTypesSupported:                        []string{"authorization_code", "refresh_token"},
		ScopesSupported:                            []string{"openid", "profile", "email", "offline_access"},
		ClaimsSupported:                            []string{"iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "name", "email", "email_verified"},
		CodeChallengeMethodsSupported:              []string{"S256"},
		IDTokenSigningAlgValuesSupported:           []string{"RS256"},
		TokenEndpointAuthMethodsSupported:          clientAuthMethods,
		RevocationEndpointAuthMethods:              clientAuthMethods,
		AuthorizationResponseIssParameterSupported: true,
		RequirePushedAuthorizationRequests:         f.RequirePAR,
	})
	return nil
}

func (s *Server) jwksDocument(w http.ResponseWriter, r *http.Request) error {
	s.snapshot("jwks")
	w.Header().Set("Content-Type", "application/json")
	s.keyMu.RLock()
	jwks := s.jwks
	s.keyMu.RUnlock()
	w.Write(jwks)
	return nil
}

// statusError is the JSON error answer for a status forced by a fault; a 401
// is answered as unauthorized is, WWW-Authenticate included.
func statusError(status int, unauthorized *oauthError) *oauthError {
	code := "invalid_request"
	switch {
	case status == http.StatusUnauthorized:
		return &oauthError{status, unauthorized.code, "astest: simulated status", unauthorized.wwwAuthenticate}
	case status == http.StatusServiceUnavailable:
		code = "temporarily_unavailable"
	case status >= 500:
		code = "server_error"
	}
	return &oauthError{status, code, "astest: simulated status", ""}
}
