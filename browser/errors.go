package browser

// ErrorAnswer is one of the proxy's error answers to the browser: an HTTP
// status and the JSON body {"code","message"} of contract §6, built once.
// The proxy sends it, and the NGINX renderer writes it into the answers
// NGINX gives itself, so that a browser sees the same answer whichever of
// them gives it. An ErrorAnswer is immutable; do not modify Body.
type ErrorAnswer struct {
	Status int
	Code   string
	Body   []byte
}

// The proxy's error answers. The 401 body is the reference implementation's,
// byte for byte (contract §6).
var (
	AnswerUnauthorized        = newErrorAnswer(401, "unauthorized", "Access denied due to missing or invalid credentials")
	AnswerNotFound            = newErrorAnswer(404, "not_found", "No API route matches this path")
	AnswerUpstreamUnavailable = newErrorAnswer(502, "upstream_unavailable", "The API could not be reached")
	AnswerUpstreamTimeout     = newErrorAnswer(504, "upstream_timeout", "The API did not answer in time")
	AnswerRequestTooLarge     = newErrorAnswer(413, "request_too_large", "The request body is larger than the configured limit")
	AnswerHeadersTooLarge     = newErrorAnswer(431, "request_headers_too_large", "The request headers are larger than the configured limit")
	AnswerBadRequest          = newErrorAnswer(400, "bad_request", "The request could not be parsed")
	// AnswerRevocationUnavailable: revocation.fail_closed_after passed
	// without news from the revocation store.
	AnswerRevocationUnavailable = newErrorAnswer(503, "revocation_unavailable", "The list of ended sessions is out of date; try again later")
)

var errorAnswers = []*ErrorAnswer{AnswerUnauthorized, AnswerNotFound, AnswerUpstreamUnavailable, AnswerUpstreamTimeout,
	AnswerRequestTooLarge, AnswerHeadersTooLarge, AnswerBadRequest, AnswerRevocationUnavailable}

func newErrorAnswer(status int, code, message string) *ErrorAnswer {
	return &ErrorAnswer{status, code, []byte(`{"code":"` + code + `","message":"` + message + `"}`)}
}

// ErrorAnswerFor returns the proxy's error answer whose code is code, or
// nil when there is none: the NGINX renderer finds them so.
func ErrorAnswerFor(code string) *ErrorAnswer {
	for _, e := range errorAnswers {
		if e.Code == code {
			return e
		}
	}
	return nil
}
