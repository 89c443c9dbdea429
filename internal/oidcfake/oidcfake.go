// Package oidcfake is the core of the fake OpenID Providers that the test
// server (agent/astest) and the development one (examples/devidp) serve:
// the grant store (authorization codes with PKCE, refresh tokens with
// rotation and reuse detection, access tokens, revocation), client
// authentication, token and ID-token minting with rotating RS256 keys and
// their JWKS, the discovery document, and the OAuth error and JSON answers.
// The two providers add only their endpoints: astest its fault switches,
// devidp its login pages, sessions and back-channel logout. It needs only
// the standard library and go-jose, and is safe for concurrent use. It
// keeps everything in memory and MUST NOT be used as a real provider.
package oidcfake

import (
	"encoding/json"
	"net/http"
)

// WriteJSON answers with status and v as JSON. v must marshal: failing to is
// a programmer error.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("oidcfake: internal error: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// WriteError answers with an OAuth 2.0 error (RFC 6749 §5.2; RFC 6750 §3),
// setting WWW-Authenticate when wwwAuthenticate is not empty.
func WriteError(w http.ResponseWriter, status int, code, description, wwwAuthenticate string) {
	if wwwAuthenticate != "" {
		w.Header().Set("WWW-Authenticate", wwwAuthenticate)
	}
	WriteJSON(w, status, map[string]string{"error": code, "error_description": description})
}
