package proxy

import "github.com/valyala/fasthttp"

// apiError is an error answer with a fixed JSON body, built once.
type apiError struct {
	status int
	body   []byte
}

func newAPIError(status int, code, message string) *apiError {
	return &apiError{status, []byte(`{"code":"` + code + `","message":"` + message + `"}`)}
}

// The proxy's error answers. The 401 body is the reference implementation's,
// byte for byte (contract §6).
var (
	errUnauthorized   = newAPIError(fasthttp.StatusUnauthorized, "unauthorized", "Access denied due to missing or invalid credentials")
	errNoRoute        = newAPIError(fasthttp.StatusNotFound, "not_found", "No API route matches this path")
	errBadGateway     = newAPIError(fasthttp.StatusBadGateway, "upstream_unavailable", "The API could not be reached")
	errGatewayTimeout = newAPIError(fasthttp.StatusGatewayTimeout, "upstream_timeout", "The API did not answer in time")
	errTooLarge       = newAPIError(fasthttp.StatusRequestEntityTooLarge, "request_too_large", "The request body is larger than the configured limit")
	errHeaderTooBig   = newAPIError(fasthttp.StatusRequestHeaderFieldsTooLarge, "request_headers_too_large", "The request headers are larger than the configured limit")
	errBadRequest     = newAPIError(fasthttp.StatusBadRequest, "bad_request", "The request could not be parsed")
	// errRevocationUnavailable: revocation.fail_closed_after passed
	// without news from the revocation store.
	errRevocationUnavailable = newAPIError(fasthttp.StatusServiceUnavailable, "revocation_unavailable", "The list of ended sessions is out of date; try again later")
)

// apiErrors are the proxy's error answers, for ErrorBody.
var apiErrors = []*apiError{errUnauthorized, errNoRoute, errBadGateway, errGatewayTimeout, errTooLarge, errHeaderTooBig, errBadRequest, errRevocationUnavailable}

// ErrorBody returns the JSON body of the proxy's error answer with this
// HTTP status, or nil when the proxy has none. The NGINX renderer writes
// these into the answers NGINX gives itself, so that a browser sees the
// same answer whichever of NGINX and the proxy gives it. The slice is
// shared: do not modify it.
func ErrorBody(status int) []byte {
	for _, e := range apiErrors {
		if e.status == status {
			return e.body
		}
	}
	return nil
}

// writeError answers with e. The fasthttp server sends no body to HEAD.
func writeError(ctx *fasthttp.RequestCtx, e *apiError) {
	ctx.SetStatusCode(e.status)
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.Response.SetBodyRaw(e.body)
}
