// Package oidcfake holds the protocol pieces that the test OpenID Provider
// (agent/astest) and the development one (examples/devidp) share: PKCE
// verification, client authentication parsing, the OAuth error and JSON
// answers, the discovery document and RS256 signing with its JWKS. It needs
// only the standard library and go-jose. Everything in it is stateless and
// safe for concurrent use.
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
