package agent

import (
	"errors"
	"net"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/internal/daemon"
)

// Refused requests are logged, 4xx at info and 5xx at warn, so that an
// operator sees why a login or a refresh failed without turning on debug
// (issue #16). A client sending one bad request after another must not
// flood the log: the lines go through a limiter, at most
// daemon.DeniedLinesPerSecond per reason per second, then a line saying how many
// were suppressed once the next second lets one through: 11 lines a second
// per reason at most, whatever the attack (limitedReasons lists the
// reasons). The oauth_agent_requests_total and oauth_agent_denied_total
// counters still count every answer.

// Why a request was refused, when its cause says more than its code; the
// cause is what the handlers return, the reason what the log shows.
var (
	errCrossSite       = errors.New("Sec-Fetch-Site: cross-site")
	errUntrustedOrigin = errors.New("missing or untrusted Origin")
	errCSRFHeader      = errors.New("missing or wrong CSRF header")
)

// causeReasons names the causes that refine a code, in the order they are
// tested.
var causeReasons = []struct {
	cause  error
	reason string
}{
	{errCrossSite, "sec_fetch_site"},
	{errUntrustedOrigin, "origin"},
	{errCSRFHeader, "csrf_header_mismatch"},
	{errAmbiguous, "cookie_ambiguous"},
	{errSessionMismatch, "session_mismatch"},
	{errLifetime, "session_expired"},
	{errRevoked, "session_revoked"},
	{errStaleList, "revocation_stale"},
	{errIdentityChanged, "identity_changed"},
	{errNoCookie, "cookie_missing_or_invalid"},
}

// limitedReasons are the reasons the limiter keeps apart: the ones above
// and every code of contract §5 the agent answers with. Any other reason
// (none today) shares the last budget.
var limitedReasons = func() []string {
	var r []string
	for _, c := range causeReasons {
		r = append(r, c.reason)
	}
	return append(r, "unauthorized_request", "invalid_request", "token_expired", "session_expired",
		"authorization_server_error", "server_error", "no_id_token", "authorization_error",
		// Registered authorization-endpoint error codes
		// (authorizationResponseError).
		"unauthorized_client", "access_denied", "unsupported_response_type", "invalid_scope",
		"temporarily_unavailable", "interaction_required", "login_required", "account_selection_required",
		"consent_required", "invalid_request_uri", "invalid_request_object", "request_not_supported",
		"request_uri_not_supported", "registration_not_supported", "invalid_target",
		"invalid_authorization_details", "unmet_authentication_requirements",
		"other")
}()

// denialReason is the reason of e for the log: what its cause says, or its
// code.
func denialReason(e *apiError) string {
	for _, c := range causeReasons {
		if errors.Is(e.cause, c.cause) {
			return c.reason
		}
	}
	return e.code
}

// reasonKind is reason's limiter kind.
func reasonKind(reason string) int {
	for i, r := range limitedReasons {
		if r == reason {
			return i
		}
	}
	return len(limitedReasons) - 1
}

// denialLog limits the agent's refusal lines. It lives on the Agent, across
// reloads.
type denialLog struct {
	lines *daemon.LogLimiter // kind: reasonKind
	keys  *daemon.LogLimiter // one kind
}

func newDenialLog() denialLog {
	return denialLog{
		lines: daemon.NewLogLimiter(len(limitedReasons), daemon.DeniedLinesPerSecond, time.Second),
		keys:  daemon.NewLogLimiter(1, 1, daemon.KeyMismatchEvery),
	}
}

// logDenial logs a refused request: the endpoint, status, code and reason,
// the method and path (never the query: login/end's carries the code), the
// request ID NGINX set, the peer's address and the cause (which never holds
// a secret: see asRefusal and safeError). Behind NGINX the peer is NGINX;
// the request ID finds the client's address in NGINX's access log.
func (a *Agent) logDenial(ctx *fasthttp.RequestCtx, st *state, endpoint string, e *apiError, now time.Time) {
	level, msg := zerolog.InfoLevel, "request denied"
	if e.status >= 500 {
		level, msg = zerolog.WarnLevel, "request failed"
	}
	if st.log.GetLevel() > level {
		return
	}
	reason := denialReason(e)
	ok, suppressed := a.denials.lines.Allow(reasonKind(reason), now)
	if !ok {
		return
	}
	if suppressed > 0 {
		st.log.WithLevel(level).Str("reason", reason).Uint64("suppressed", suppressed).Msg("suppressed similar denials")
	}
	st.log.WithLevel(level).Str("endpoint", endpoint).Int("status", e.status).Str("code", e.code).Str("reason", reason).
		Bytes("method", ctx.Method()).Bytes("path", ctx.Path()).
		Str("request_id", requestID(ctx)).Str("client", peerIP(ctx)).AnErr("cause", e.cause).Msg(msg)
}

// warnKeyMismatch warns, at most once per daemon.KeyMismatchEvery, that cookie
// (its name) was well-formed but opened with no configured key.
func (a *Agent) warnKeyMismatch(ctx *fasthttp.RequestCtx, st *state, cookie string, now time.Time) {
	if st.log.GetLevel() > zerolog.WarnLevel {
		return
	}
	if ok, suppressed := a.denials.keys.Allow(0, now); ok {
		st.log.Warn().Str("cookie", cookie).Int("keys", st.cfg.Keys.Len()).Str("request_id", requestID(ctx)).
			Uint64("suppressed", suppressed).Msg(daemon.KeyMismatchMessage)
	}
}

// requestID is the request's X-Request-Id (NGINX sets $request_id) when it
// is one, else "": a client must not write arbitrary text into the log.
func requestID(ctx *fasthttp.RequestCtx) string {
	id := ctx.Request.Header.Peek("X-Request-Id")
	if len(id) == 0 || len(id) > 64 {
		return ""
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return ""
		}
	}
	return string(id)
}

// peerIP is the connection peer's IP address, or "unix".
func peerIP(ctx *fasthttp.RequestCtx) string {
	switch a := ctx.RemoteAddr().(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case *net.UnixAddr:
		return "unix"
	}
	return ""
}
