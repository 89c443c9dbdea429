package oidcfake

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"regexp"
)

// Client authentication methods (RFC 6749 §2.3.1, OpenID Connect Core §9).
const (
	AuthBasic = "client_secret_basic"
	AuthPost  = "client_secret_post"
)

// ClientAuthMethods are the token and revocation endpoints' methods, for
// discovery. The slice is shared: callers must not modify it.
var ClientAuthMethods = []string{AuthBasic, AuthPost}

var (
	// ErrTwoClientAuths: the request used client_secret_basic and
	// client_secret_post at once (RFC 6749 §2.3).
	ErrTwoClientAuths = errors.New("oidcfake: more than one client authentication method")
	// ErrBadClientAuth: no client credentials, or ones that do not decode.
	ErrBadClientAuth = errors.New("oidcfake: missing or malformed client credentials")
)

// ClientCredentials returns the client ID and secret of r and the method
// that sent them, client_secret_basic or client_secret_post (RFC 6749
// §2.3.1), without checking them. The method is "" when r uses none or
// both, and set also when the credentials do not decode. r.ParseForm must
// have run.
func ClientCredentials(r *http.Request) (id, secret, method string, err error) {
	user, pass, basic := r.BasicAuth()
	post := r.PostForm.Has("client_secret")
	switch {
	case basic && post:
		return "", "", "", ErrTwoClientAuths
	case basic:
		// The credentials are form-encoded before Base64 (RFC 6749 §2.3.1).
		var err1, err2 error
		id, err1 = url.QueryUnescape(user)
		secret, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return "", "", AuthBasic, ErrBadClientAuth
		}
		if fid := r.PostForm.Get("client_id"); fid != "" && fid != id {
			return "", "", AuthBasic, ErrBadClientAuth
		}
		return id, secret, AuthBasic, nil
	case post:
		return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), AuthPost, nil
	}
	return "", "", "", ErrBadClientAuth
}

// verifierSyntax is code_verifier = 43*128unreserved (RFC 7636 §4.1).
var verifierSyntax = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// PKCEValid checks BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) ==
// code_challenge (RFC 7636 §4.6), the S256 method.
func PKCEValid(verifier, challenge string) bool {
	if !verifierSyntax.MatchString(verifier) {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// challengeSyntax is an S256 code_challenge: BASE64URL of 32 bytes (RFC 7636
// §4.2).
var challengeSyntax = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// CheckAuthRequest checks what both providers require of an authorization
// request (RFC 6749 §4.1.1): response_type code and an S256 PKCE challenge.
// "plain", also the default when the method is left out (RFC 7636 §4.3),
// would send the verifier in the clear (RFC 9700 §2.1.1). The error is for
// the redirect back to the client (§4.1.2.1).
func CheckAuthRequest(q url.Values) *Error {
	switch {
	case q.Get("response_type") != "code":
		return BadRequest("unsupported_response_type", "response_type must be code")
	case q.Get("code_challenge") == "":
		return BadRequest("invalid_request", "code_challenge is required (PKCE, RFC 7636)")
	case q.Get("code_challenge_method") != "S256":
		return BadRequest("invalid_request", "code_challenge_method must be S256")
	case !challengeSyntax.MatchString(q.Get("code_challenge")):
		return BadRequest("invalid_request", "code_challenge is not an S256 challenge")
	}
	return nil
}
