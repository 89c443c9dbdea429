package oidcfake

// NewMetadata is the OpenID Provider Metadata (OpenID Connect Discovery 1.0
// §3), with the OAuth extensions clients look for, of a provider at issuer
// serving /authorize, /token, /userinfo, /jwks, /logout and /revoke below
// it: the code flow with S256 PKCE, RS256 ID tokens carrying claims, and
// ClientAuthMethods. Providers add their own members to the map.
func NewMetadata(issuer string, claims []string) map[string]any {
	return map[string]any{
		"issuer":                                     issuer,
		"authorization_endpoint":                     issuer + "/authorize",
		"token_endpoint":                             issuer + "/token",
		"userinfo_endpoint":                          issuer + "/userinfo",
		"jwks_uri":                                   issuer + "/jwks",
		"end_session_endpoint":                       issuer + "/logout",
		"revocation_endpoint":                        issuer + "/revoke",
		"response_types_supported":                   []string{"code"},
		"response_modes_supported":                   []string{"query"},
		"subject_types_supported":                    []string{"public"},
		"grant_types_supported":                      []string{"authorization_code", "refresh_token"},
		"scopes_supported":                           []string{"openid", "profile", "email", "offline_access"},
		"claims_supported":                           claims,
		"code_challenge_methods_supported":           []string{"S256"},
		"id_token_signing_alg_values_supported":      []string{"RS256"},
		"token_endpoint_auth_methods_supported":      ClientAuthMethods,
		"revocation_endpoint_auth_methods_supported": ClientAuthMethods,
		// RFC 9207 §3: clients must then require iss in authorization
		// responses.
		"authorization_response_iss_parameter_supported": true,
	}
}
