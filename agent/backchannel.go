package agent

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/internal/daemon"
	"github.com/tokenhandler/tokenhandler/revocation"
	"github.com/tokenhandler/tokenhandler/session"
)

// OpenID Connect Back-Channel Logout 1.0: the Provider POSTs a logout
// token to <base_path>/backchannel-logout when a user's session at it
// ends (§2.5), server to server. The agent checks the token (§2.6),
// records the session as revoked in its store, and from then on every
// agent endpoint refuses that session, and every proxy following the store
// too. The endpoint has no Origin or CSRF check (the browser is not
// involved; the token's signature is the authentication), but a body size
// limit, a rate limit and a memory of the jti values it has accepted.

// backchannelLogoutEvent is the events member of a logout token (§2.4).
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

const (
	// maxLogoutBody bounds the request body: a logout token is a signed
	// JWT of a few hundred bytes; 16 KiB leaves room for large keys and
	// many claims.
	maxLogoutBody = 16 << 10
	// logoutTokenMaxAge is how old (by iat) a logout token may be. The
	// Provider sends it at once and may retry a failed delivery for a
	// while; a token older than this is refused, so the jti memory need
	// keep no jti longer than this plus the clock skew.
	logoutTokenMaxAge = 10 * time.Minute
	// maxSeenJTIs bounds the jti memory. The rate limit fills it at most
	// backchannelRate per second: 100 × 600 s = 60,000 in logoutTokenMaxAge.
	// When it is full of live entries, logouts answer 503 (the Provider
	// retries) rather than forget a jti.
	maxSeenJTIs = 1 << 16
	// backchannelRate and backchannelBurst are the token bucket of the
	// endpoint's valid logout tokens, shared by every caller (behind NGINX
	// every caller is NGINX): a Provider ending many sessions at once
	// sends a burst. It bounds what reaches the store; junk never spends
	// it.
	backchannelRate  = 100
	backchannelBurst = 200
	// revokeTimeout bounds the store's Revoke.
	revokeTimeout = 5 * time.Second
)

// The outcomes of a back-channel logout: the label result of
// oauth_agent_backchannel_logouts_total and the log's.
const (
	bclOK           = iota // recorded
	bclMalformed           // not a form POST with one logout_token
	bclInvalidToken        // the token is not a valid logout token
	bclReplayed            // its jti was accepted before
	bclTooLarge            // the body is over maxLogoutBody
	bclRateLimited         // over the rate limit
	bclUnavailable         // the AS's keys or the store could not be used: retry
	bclResults
)

var bclResultNames = [bclResults]string{"ok", "malformed", "invalid_token", "replayed", "too_large", "rate_limited", "unavailable"}

// logoutError is a refused back-channel logout: its status, its result and
// a fixed description, sent as error_description (§2.8). The description
// never quotes the request; cause is logged and never holds the token.
type logoutError struct {
	status      int
	result      int
	description string
	cause       error
}

func (e *logoutError) Error() string { return e.description }

// Why a logout token is refused: the descriptions are fixed text.
var (
	errLogoutTooLarge    = &logoutError{fasthttp.StatusRequestEntityTooLarge, bclTooLarge, "The request body is too large", nil}
	errLogoutRate        = &logoutError{fasthttp.StatusTooManyRequests, bclRateLimited, "Too many requests: retry later", nil}
	errLogoutContentType = &logoutError{fasthttp.StatusBadRequest, bclMalformed, "The body must be application/x-www-form-urlencoded", nil}
	errLogoutParameter   = &logoutError{fasthttp.StatusBadRequest, bclMalformed, "The body must have exactly one logout_token", nil}
	errLogoutReplayed    = &logoutError{fasthttp.StatusBadRequest, bclReplayed, "The logout token was already used", nil}
	errLogoutNoProvider  = &logoutError{fasthttp.StatusServiceUnavailable, bclUnavailable, "The Authorization Server's metadata is not loaded yet", nil}
	errLogoutJTIsFull    = &logoutError{fasthttp.StatusServiceUnavailable, bclUnavailable, "Too many logouts in progress: retry later", nil}
	errLogoutStore       = &logoutError{fasthttp.StatusServiceUnavailable, bclUnavailable, "The logout could not be recorded: retry later", nil}
)

// invalidLogoutToken is the refusal of a token that is not a valid logout
// token; cause says why, for the log.
func invalidLogoutToken(cause error) *logoutError {
	return &logoutError{fasthttp.StatusBadRequest, bclInvalidToken, "The logout token is not valid", cause}
}

// logoutToken is what the agent keeps of a verified logout token.
type logoutToken struct {
	issuer, sub, sid, jti string
	iat                   time.Time
}

// verifyLogoutToken checks a logout token as §2.6 says: the signature
// against the Provider's JWKS with an allowed algorithm (go-oidc refuses
// "none"), iss the issuer, aud holding this client (go-oidc); then here
// the typ header, iat within logoutTokenMaxAge and the clock skew, exp
// when present, jti, the events member, no nonce, and sid or sub.
func (a *Agent) verifyLogoutToken(ctx context.Context, st *state, p *provider, raw string) (*logoutToken, error) {
	// §2.4 recommends explicit typing, "logout+jwt", so that no other JWT
	// of the Provider (an ID token, an access token) passes as one. Some
	// Providers send the generic "JWT", or none; the events claim and the
	// absence of nonce tell an ID token apart then (§2.6 items 4 and 5).
	typ, err := jwtType(raw)
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(typ) {
	case "", "jwt", "logout+jwt", "application/logout+jwt":
	default:
		return nil, errors.New("the typ header is neither logout+jwt nor JWT")
	}
	idt, err := p.logoutVerifier.Verify(oidc.ClientContext(ctx, st.client()), raw)
	if err != nil {
		return nil, err
	}
	var c struct {
		JTI    string                     `json:"jti"`
		SID    string                     `json:"sid"`
		Events map[string]json.RawMessage `json:"events"`
		Nonce  json.RawMessage            `json:"nonce"`
		EXP    json.RawMessage            `json:"exp"`
	}
	if err := idt.Claims(&c); err != nil {
		return nil, errors.New("the claims do not decode")
	}
	now := a.now()
	skew := st.cfg.IDToken.ClockSkew
	switch {
	case idt.IssuedAt.After(now.Add(skew)):
		return nil, errors.New("iat is in the future")
	case idt.IssuedAt.Before(now.Add(-logoutTokenMaxAge - skew)):
		// Also a token without iat (§2.4: REQUIRED), whose time is zero.
		return nil, errors.New("iat is too old, or missing")
	case c.EXP != nil && !idt.Expiry.After(now.Add(-skew)):
		return nil, errors.New("the token has expired")
	case c.JTI == "":
		return nil, errors.New("no jti")
	case c.Nonce != nil:
		// §2.4: "A nonce Claim MUST NOT be present", so that an ID token
		// cannot be passed off as a logout token.
		return nil, errors.New("a nonce is present")
	case idt.Subject == "" && c.SID == "":
		return nil, errors.New("neither sid nor sub")
	}
	// §2.4: the member's value is a JSON object ({} is fine); a missing
	// member is nil, which does not decode.
	var event map[string]json.RawMessage
	if json.Unmarshal(c.Events[backchannelLogoutEvent], &event) != nil || event == nil {
		return nil, errors.New("events has no back-channel logout member that is a JSON object")
	}
	return &logoutToken{issuer: idt.Issuer, sub: idt.Subject, sid: c.SID, jti: c.JTI, iat: idt.IssuedAt}, nil
}

// jwtType returns the typ header of a compact JWS.
func jwtType(raw string) (string, error) {
	h, _, ok := strings.Cut(raw, ".")
	if !ok {
		return "", errors.New("not a compact JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return "", errors.New("the header is not base64url")
	}
	var header struct {
		Typ *string `json:"typ"`
	}
	if err := json.Unmarshal(b, &header); err != nil {
		return "", errors.New("the header is not JSON")
	}
	if header.Typ == nil {
		return "", nil
	}
	return *header.Typ, nil
}

// backchannelLogout is the endpoint (§2.5, §2.8): 200 and an empty body
// when the logout is recorded, 400 {"error":"invalid_request"} for a
// request or token that is not valid, 503 when it cannot be recorded now
// (the Provider retries), 413 and 429 for the limits.
func (a *Agent) backchannelLogout(st *state) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		start := a.now()
		kind, err := a.handleLogout(ctx, st, start)
		result := bclOK
		if err != nil {
			e, ok := err.(*logoutError)
			if !ok {
				e = &logoutError{fasthttp.StatusInternalServerError, bclUnavailable, "The logout could not be handled", err}
			}
			result = e.result
			writeLogoutError(ctx, e)
			a.logLogout(ctx, st, e.status, result, kind, e.cause, start)
		} else {
			ctx.SetStatusCode(fasthttp.StatusOK)
			ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
			ctx.ResetBody()
			a.logLogout(ctx, st, fasthttp.StatusOK, result, kind, nil, start)
		}
		st.metrics.backchannelLogouts(bclResultNames[result]).Inc()
		st.metrics.requests("backchannel_logout", ctx.Response.StatusCode()).Inc()
	}
}

// handleLogout checks and records one back-channel logout; kind is "sid"
// or "sub" once the token named what to revoke.
func (a *Agent) handleLogout(ctx *fasthttp.RequestCtx, st *state, now time.Time) (kind string, err error) {
	if len(ctx.PostBody()) > maxLogoutBody {
		return "", errLogoutTooLarge
	}
	mt, _, err := mime.ParseMediaType(string(ctx.Request.Header.ContentType()))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return "", errLogoutContentType
	}
	// Parsed here: fasthttp's PostArgs takes any content type that starts
	// like this one, and no other spelling of it.
	var form fasthttp.Args
	form.ParseBytes(ctx.PostBody())
	tokens := form.PeekMulti("logout_token")
	if len(tokens) != 1 || len(tokens[0]) == 0 {
		return "", errLogoutParameter
	}
	p := st.as.provider.Load()
	if p == nil {
		return "", errLogoutNoProvider
	}
	c, cancel := context.WithTimeout(context.Background(), st.cfg.Timeouts.AS)
	defer cancel()
	tok, err := a.verifyLogoutToken(c, st, p, string(tokens[0]))
	if err != nil {
		return "", invalidLogoutToken(err)
	}
	// The rate limit counts signed tokens only: charged before the check,
	// anyone who can reach the endpoint could spend it with junk and keep
	// the Provider's real logouts out (an attacker's review found 205 junk
	// POSTs enough to turn a valid token away). A junk request costs a
	// parse and at most one signature check with the cached keys, and its
	// log lines are limited.
	if !a.logouts.rate.allow(now) {
		return "", errLogoutRate
	}
	// The jti is kept until the token could no longer be accepted: iat
	// plus logoutTokenMaxAge plus the skew.
	skew := st.cfg.IDToken.ClockSkew
	jti := sha256.Sum256([]byte(tok.issuer + "\x00" + tok.jti))
	switch a.logouts.seen.reserve(jti, tok.iat.Add(logoutTokenMaxAge+skew).Unix(), now.Unix()) {
	case reserveReplayed:
		return "", errLogoutReplayed
	case reserveFull:
		return "", errLogoutJTIsFull
	}
	// §2.7: sid names the session (and with sub, the same one); sub alone
	// ends every session of the user started until the logout: until the
	// token's iat (plus the skew), not until it arrived, so that a
	// retried or replayed token (another agent, or this one after a
	// restart, has not seen its jti) cannot end a session begun after the
	// logout.
	at := min(tok.iat.Add(skew).Unix(), now.Unix())
	// The entry lives as long as the longest session it could end: every
	// application of the provider's issuer matches it, whatever the
	// max_lifetime of the one it was posted to, and so do sessions started
	// under an earlier configuration (table.sessionsEndBy).
	e := revocation.Entry{At: at, Expires: a.table.Load().revocationExpires(now.Unix())}
	if tok.sid != "" {
		kind, e.Kind, e.Digest = "sid", revocation.BySID, session.HashSID(tok.issuer, tok.sid)
	} else {
		kind, e.Kind, e.Digest = "sub", revocation.BySub, session.HashSub(tok.issuer, tok.sub)
	}
	if err := a.rev.record(e); err != nil {
		// Not recorded: forget the jti, so that the Provider's retry of
		// this very token is not refused as a replay.
		a.logouts.seen.release(jti)
		return kind, &logoutError{errLogoutStore.status, errLogoutStore.result, errLogoutStore.description, err}
	}
	return kind, nil
}

// writeLogoutError answers e in §2.8's shape, an OAuth 2.0 error (RFC 6749
// §5.2): {"error":"invalid_request","error_description":...}.
func writeLogoutError(ctx *fasthttp.RequestCtx, e *logoutError) {
	code := "invalid_request"
	switch {
	case e.status == fasthttp.StatusTooManyRequests:
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		code = "temporarily_unavailable"
	case e.status >= 500:
		code = "temporarily_unavailable"
	}
	body, err := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, e.description})
	if err != nil {
		panic("agent: internal error: " + err.Error())
	}
	ctx.SetStatusCode(e.status)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.SetBody(body)
}

// logLogout logs one back-channel logout: a recorded one at info, a refused
// one at info (4xx) or warn (5xx), never the token; at most
// daemon.DeniedLinesPerSecond lines per result per second.
func (a *Agent) logLogout(ctx *fasthttp.RequestCtx, st *state, status, result int, kind string, cause error, now time.Time) {
	level := zerolog.InfoLevel
	if status >= 500 {
		level = zerolog.WarnLevel
	}
	if st.log.GetLevel() > level {
		return
	}
	ok, suppressed := a.logouts.lines.Allow(result, now)
	if !ok {
		return
	}
	name := bclResultNames[result]
	if suppressed > 0 {
		st.log.WithLevel(level).Str("result", name).Uint64("suppressed", suppressed).Msg("suppressed similar back-channel logouts")
	}
	msg := "back-channel logout refused"
	if result == bclOK {
		msg = "back-channel logout recorded"
	}
	st.log.WithLevel(level).Str("endpoint", "backchannel_logout").Int("status", status).Str("result", name).
		Str("revoked", kind).Str("request_id", requestID(ctx)).Str("client", peerIP(ctx)).AnErr("cause", cause).Msg(msg)
}

// logoutGuards are the endpoint's limits, kept on the Agent across
// reloads.
type logoutGuards struct {
	rate  *tokenBucket
	seen  *jtiMemory
	lines *daemon.LogLimiter // kind: the result
}

func newLogoutGuards() logoutGuards {
	return logoutGuards{
		rate:  &tokenBucket{rate: backchannelRate, burst: backchannelBurst, tokens: backchannelBurst},
		seen:  &jtiMemory{seen: map[[32]byte]int64{}, max: maxSeenJTIs},
		lines: daemon.NewLogLimiter(bclResults, daemon.DeniedLinesPerSecond, time.Second),
	}
}

// tokenBucket allows rate events a second on average and burst at once.
// It is safe for concurrent use and must not be copied.
type tokenBucket struct {
	mu          sync.Mutex
	rate, burst float64
	tokens      float64
	last        time.Time
}

func (b *tokenBucket) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if b.last.IsZero() || now.After(b.last) {
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// jtiMemory remembers the jti digests of accepted logout tokens until
// they expire, at most max of them. It is safe for concurrent use and must
// not be copied.
type jtiMemory struct {
	mu   sync.Mutex
	seen map[[32]byte]int64 // digest → Unix time it may be forgotten
	max  int
}

const (
	reserveOK = iota
	reserveReplayed
	reserveFull
)

// reserve records jti until expires, unless it is there already (a
// replay) or the memory is full of unexpired entries.
func (m *jtiMemory) reserve(jti [32]byte, expires, now int64) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if exp, ok := m.seen[jti]; ok && now < exp {
		return reserveReplayed
	}
	if len(m.seen) >= m.max {
		for k, exp := range m.seen {
			if exp <= now {
				delete(m.seen, k)
			}
		}
		if len(m.seen) >= m.max {
			return reserveFull
		}
	}
	m.seen[jti] = expires
	return reserveOK
}

// release forgets jti: its logout was not recorded.
func (m *jtiMemory) release(jti [32]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.seen, jti)
}
