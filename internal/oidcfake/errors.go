package oidcfake

import (
	"errors"
	"net/http"
)

// Error is an OAuth 2.0 error answer (RFC 6749 §4.1.2.1, §5.2; RFC 6750
// §3). It is plain data and may be copied.
type Error struct {
	Status          int
	Code            string
	Description     string
	WWWAuthenticate string // "" sends no WWW-Authenticate header
}

func (e *Error) Error() string { return "oidcfake: " + e.Code + ": " + e.Description }

// BadRequest is a 400 Error with code and description.
func BadRequest(code, description string) *Error {
	return &Error{http.StatusBadRequest, code, description, ""}
}

// The errors the grant store and the endpoints of both providers answer.
var (
	ErrBadForm         = BadRequest("invalid_request", "malformed form body")
	ErrMissingToken    = BadRequest("invalid_request", "missing token")
	ErrMethod          = &Error{http.StatusMethodNotAllowed, "invalid_request", "method not allowed", ""}
	ErrUnknownCode     = BadRequest("invalid_grant", "unknown, used or expired authorization code")
	ErrCodeClient      = BadRequest("invalid_grant", "the authorization code was issued to another client")
	ErrCodeRedirectURI = BadRequest("invalid_grant", "redirect_uri does not match the authorization request")
	ErrPKCE            = BadRequest("invalid_grant", "PKCE verification failed (code_verifier)")
	ErrUnknownRefresh  = BadRequest("invalid_grant", "unknown, expired or revoked refresh token")
	ErrRefreshReuse    = BadRequest("invalid_grant",
		"refresh token reuse detected; all tokens of this login are revoked")
	ErrScopeWidened     = BadRequest("invalid_scope", "requested scope exceeds the granted scope")
	ErrUnsupportedGrant = BadRequest("unsupported_grant_type",
		"grant_type must be authorization_code or refresh_token")
	errTwoClientAuthsAnswer = BadRequest("invalid_request",
		"more than one client authentication method (RFC 6749 §2.3)")
	ErrInvalidToken = &Error{http.StatusUnauthorized, "invalid_token",
		"the access token is invalid, expired or revoked", `Bearer error="invalid_token"`}
)

// ErrClientGone ends a request whose client has gone away: Handler writes
// nothing.
var ErrClientGone = errors.New("oidcfake: client gone")

// Handler adapts an endpoint that returns errors: an *Error is answered as
// it says, as JSON (RFC 6749 §5.2; RFC 6750 §3; ErrMethod with Allow: GET,
// POST), ErrClientGone not at all, any other error as a 500 server_error.
func Handler(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil || errors.Is(err, ErrClientGone) {
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{http.StatusInternalServerError, "server_error", "internal error", ""}
		}
		if e == ErrMethod {
			w.Header().Set("Allow", "GET, POST")
		}
		if e.WWWAuthenticate != "" {
			w.Header().Set("WWW-Authenticate", e.WWWAuthenticate)
		}
		WriteJSON(w, e.Status, map[string]string{"error": e.Code, "error_description": e.Description})
	})
}
