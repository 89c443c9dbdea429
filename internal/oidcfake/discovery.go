package oidcfake

// Metadata is the OpenID Provider Metadata (OpenID Connect Discovery 1.0 §3)
// with the OAuth extensions clients look for. Providers embed it and add
// their own fields. It may be copied; its slices are shared.
type Metadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods     []string `json:"revocation_endpoint_auth_methods_supported"`
	// RFC 9207 §3: clients must then require iss in authorization responses.
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
}

// NewMetadata is the metadata of a provider at issuer serving /authorize,
// /token, /userinfo, /jwks, /logout and /revoke below it: the code flow
// with S256 PKCE, RS256 ID tokens carrying claims, and ClientAuthMethods.
func NewMetadata(issuer string, claims []string) Metadata {
	return Metadata{
		Issuer:                                     issuer,
		AuthorizationEndpoint:                      issuer + "/authorize",
		TokenEndpoint:                              issuer + "/token",
		UserinfoEndpoint:                           issuer + "/userinfo",
		JWKSURI:                                    issuer + "/jwks",
		EndSessionEndpoint:                         issuer + "/logout",
		RevocationEndpoint:                         issuer + "/revoke",
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{"query"},
		SubjectTypesSupported:                      []string{"public"},
		GrantTypesSupported:                        []string{"authorization_code", "refresh_token"},
		ScopesSupported:                            []string{"openid", "profile", "email", "offline_access"},
		ClaimsSupported:                            claims,
		CodeChallengeMethodsSupported:              []string{"S256"},
		IDTokenSigningAlgValuesSupported:           []string{"RS256"},
		TokenEndpointAuthMethodsSupported:          ClientAuthMethods,
		RevocationEndpointAuthMethods:              ClientAuthMethods,
		AuthorizationResponseIssParameterSupported: true,
	}
}
