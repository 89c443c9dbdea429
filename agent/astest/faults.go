package astest

import "time"

// Faults are the switches that make a [Server] misbehave. They are read at the
// start of each request, so a change made with [Server.Set] applies to the
// next request. A Faults value is plain data and may be copied.
//
// The zero value, which New starts with, is a well-behaved authorization
// server: each refresh rotates the refresh token (a retired one presented
// again is treated as stolen and revokes every token of its login, RFC 9700
// §4.14.2) and answers an OpenID Connect grant with a new ID token, without
// nonce (OpenID Connect Core §12.2).
type Faults struct {
	// Token endpoint. The faults are checked in this order, before client
	// authentication and before any code or refresh token is looked at, so a
	// faulted request consumes nothing: TokenDelay, TokenStatus,
	// TokenGarbage, TokenError.

	// TokenError makes the token endpoint answer this OAuth error code
	// (RFC 6749 §5.2), e.g. "invalid_grant" or "invalid_scope", with status
	// 400; "invalid_client" is answered with 401 and a WWW-Authenticate
	// header.
	TokenError string
	// TokenStatus makes the token endpoint answer this HTTP status with a
	// JSON error body: "temporarily_unavailable" for 503, "server_error" for
	// other 5xx, "invalid_client" (with WWW-Authenticate) for 401,
	// "invalid_request" otherwise.
	TokenStatus int
	// TokenDelay makes the token endpoint wait this long before answering.
	// The wait ends early, without an answer, when the client gives up
	// (request context done) or the Server is closed.
	TokenDelay time.Duration
	// TokenGarbage makes the token endpoint answer 200 with
	// Content-Type application/json and a body that is not JSON.
	TokenGarbage bool

	// AccessTokenTTL is the access token lifetime: expires_in and the JWT's
	// exp. Zero means 5 minutes. A negative TTL issues access tokens that are
	// already expired, which /userinfo refuses.
	AccessTokenTTL time.Duration
	// AccessTokenPadding adds a "pad" claim of this many bytes to access
	// tokens, to make them large (the encoded JWT grows by about 4/3 of it).
	AccessTokenPadding int

	// ID token faults, applied to ID tokens from the authorization_code grant
	// and from refresh.

	// IDTokenWrongIssuer sets iss to another issuer.
	IDTokenWrongIssuer bool
	// IDTokenBadSignature signs with another RSA key under the same kid, so
	// the signature does not verify against the JWKS.
	IDTokenBadSignature bool
	// IDTokenAlgNone produces an unsigned JWT with header alg "none" and an
	// empty signature.
	IDTokenAlgNone bool
	// IDTokenExpired sets exp one minute in the past (and iat six).
	IDTokenExpired bool
	// IDTokenWrongNonce sets nonce to a value the client did not send (also
	// on refresh, where a nonce must otherwise be absent).
	IDTokenWrongNonce bool
	// IDTokenWrongAudience sets aud to another client.
	IDTokenWrongAudience bool
	// IDTokenWrongAzp sets azp to another client (aud stays correct).
	IDTokenWrongAzp bool
	// IDTokenIssuedInFuture sets iat (and auth_time) ten minutes ahead.
	IDTokenIssuedInFuture bool
	// IDTokenSubject, when set, names this subject in ID tokens instead of
	// the logged-in user (a refresh that switches users).
	IDTokenSubject string
	// IDTokenNoSubject and IDTokenNoIssuedAt leave sub or iat out of ID
	// tokens; both are REQUIRED (OpenID Connect Core §2).
	IDTokenNoSubject, IDTokenNoIssuedAt bool
	// IDTokenOmitted leaves the ID token out of code-grant answers, even of
	// an OpenID Connect request (where OpenID Connect Core §3.1.3.3 requires
	// it).
	IDTokenOmitted bool
	// IDTokenWithoutOpenID issues ID tokens to plain OAuth 2.0 grants too
	// (no openid in the scope), from the code grant and from refresh.
	IDTokenWithoutOpenID bool
	// IDTokenUnknownKid signs with the current key but names a random kid
	// that is in no JWKS, as a flood of forged tokens would.
	IDTokenUnknownKid bool

	// Authorization endpoint.

	// AuthorizeError makes /authorize redirect with this error (e.g.
	// "login_required", "access_denied"), an error_description, the state
	// and iss, after the request itself has been validated.
	AuthorizeError string
	// RedirectIss controls the RFC 9207 iss parameter of authorization
	// responses: "" the correct issuer, "missing" leave it out, "wrong" a
	// different issuer; any other value is sent as is.
	RedirectIss string
	// RequirePAR makes discovery advertise
	// require_pushed_authorization_requests (RFC 9126 §5) and /authorize
	// refuse requests without a request_uri (redirect error=invalid_request).
	RequirePAR bool

	// Other endpoints.

	// UserinfoStatus, when non-zero, makes /userinfo answer this status with
	// a JSON error body (401 also with WWW-Authenticate).
	UserinfoStatus int
	// DiscoveryStatus, when non-zero, makes the discovery document answer
	// this status, as if the authorization server were down.
	DiscoveryStatus int
}
