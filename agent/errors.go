package agent

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"
)

// apiError is an answer of the contract §5 error table: {"code", "message"}.
// Handlers return one; Handler writes it.
type apiError struct {
	status  int
	code    string
	message string
	cause   error // logged, never sent
	clear   bool  // clear every token-handler cookie with the answer
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return e.code + ": " + e.message + ": " + e.cause.Error()
	}
	return e.code + ": " + e.message
}

func (e *apiError) Unwrap() error { return e.cause }

// The error codes of contract §5.
var (
	errUnauthorizedRequest = &apiError{status: 401, code: "unauthorized_request", message: "The request is missing a trusted origin, a CSRF token or a cookie"}
	errInvalidRequest      = &apiError{status: 400, code: "invalid_request", message: "The request is invalid"}
	errTokenExpired        = &apiError{status: 401, code: "token_expired", message: "The access token has expired"}
	errSessionExpired      = &apiError{status: 401, code: "session_expired", message: "The session has expired: log in again", clear: true}
	errASUnavailable       = &apiError{status: 502, code: "authorization_server_error", message: "The Authorization Server could not be reached or failed"}
	errServer              = &apiError{status: 500, code: "server_error", message: "The request could not be handled"}
	errNoIDToken           = &apiError{status: 404, code: "no_id_token", message: "This session has no ID token: the agent's scope has no openid"}
	errNotFound            = &apiError{status: 404, code: "not_found", message: "No such endpoint"}
	errMethodNotAllowed    = &apiError{status: 405, code: "method_not_allowed", message: "This endpoint does not take that method"}
)

// with returns a copy of e with a cause (for the log) and, when message is
// not empty, another message.
func (e *apiError) with(cause error, message string) *apiError {
	c := *e
	c.cause = cause
	if message != "" {
		c.message = message
	}
	return &c
}

// authorizationError is a 400 authorization_error for an AS 4xx answer.
func authorizationError(message string) *apiError {
	if message == "" {
		message = "The Authorization Server refused the request"
	}
	return &apiError{status: 400, code: "authorization_error", message: message}
}

// authorizationResponseError is the answer to an error response of the
// authorization endpoint that belongs to the login in progress: its code
// when it is one registered for that endpoint (400; 401 for
// login_required, as the reference answers a failed prompt=none), else 400
// authorization_error. The message is fixed: the response's
// error_description is never passed on.
func authorizationResponseError(code string) *apiError {
	known := authorizationEndpointErrorCode(code)
	e := &apiError{status: 400, code: known, message: "The Authorization Server refused the login"}
	if known == "" {
		e.code = "authorization_error"
		e.cause = errors.New("the authorization response's error is not a registered code")
	} else {
		e.message += ": " + known
		e.cause = fmt.Errorf("the authorization response's error is %s", known)
	}
	if known == "login_required" {
		e.status = 401
	}
	return e
}

// authorizationEndpointErrorCode returns code if it is registered for the
// authorization endpoint's error response, else "": RFC 6749 §4.1.2.1,
// OpenID Connect Core §3.1.2.6, and the IANA "OAuth Extensions Error
// Registry" entries whose usage location is the authorization endpoint
// (RFC 9126 §2.3 and RFC 9101 §6.3 invalid_request_uri and
// invalid_request_object, RFC 8707 §2 invalid_target, RFC 9396 §5
// invalid_authorization_details, OpenID Connect Core Unmet Authentication
// Requirements unmet_authentication_requirements). Anything else came from
// whoever wrote the link and is neither shown nor logged.
func authorizationEndpointErrorCode(code string) string {
	switch code {
	case "invalid_request", "unauthorized_client", "access_denied", "unsupported_response_type", "invalid_scope",
		"server_error", "temporarily_unavailable",
		"interaction_required", "login_required", "account_selection_required", "consent_required",
		"invalid_request_uri", "invalid_request_object", "request_not_supported", "request_uri_not_supported",
		"registration_not_supported",
		"invalid_target", "invalid_authorization_details", "unmet_authentication_requirements":
		return code
	}
	return ""
}

// asRefusal is the 400 authorization_error for a 4xx answer of the AS on
// the back channel (token endpoint, PAR). Its message names the OAuth error
// code but never repeats the AS's error_description: an AS may quote the
// request it refuses, and the code, PKCE verifier, refresh token or client
// secret in it must not reach JavaScript.
func asRefusal(code string) *apiError {
	msg := "The Authorization Server refused the request"
	if c := oauthErrorCode(code); c != "" {
		msg += ": " + c
	}
	return authorizationError(msg)
}

// oauthErrorCode returns code if it is a registered OAuth error code (IANA
// "OAuth Extensions Error Registry" and RFC 6749 §4.1.2.1, §5.2), else "":
// an unregistered value, like a description, could quote a secret.
func oauthErrorCode(code string) string {
	switch code {
	case "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type",
		"invalid_scope", "access_denied", "unsupported_response_type", "server_error", "temporarily_unavailable",
		"invalid_request_uri", "invalid_request_object", "invalid_target", "invalid_dpop_proof", "use_dpop_nonce",
		"invalid_authorization_details", "unsupported_token_type", "authorization_pending", "slow_down", "expired_token":
		return code
	}
	return ""
}

// writeError answers with e as JSON.
func writeError(ctx *fasthttp.RequestCtx, e *apiError) {
	body, err := json.Marshal(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{e.code, e.message})
	if err != nil {
		panic("agent: internal error: " + err.Error())
	}
	ctx.SetStatusCode(e.status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// asError maps any error to an apiError: apiErrors pass, the rest is a 500.
func asError(err error) *apiError {
	var e *apiError
	if errors.As(err, &e) {
		return e
	}
	return errServer.with(err, "")
}

func errorf(e *apiError, format string, args ...any) *apiError {
	return e.with(fmt.Errorf(format, args...), "")
}
