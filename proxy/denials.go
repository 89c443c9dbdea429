package proxy

import (
	"bytes"
	"net"
	"net/netip"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/internal/daemon"
	"github.com/tokenhandler/tokenhandler/internal/settings"
)

// Refused requests are logged at info, so that an operator sees why a 401
// happened without turning on debug (issue #16). A client sending one bad
// request after another must not flood the log, so the lines go through a
// limiter: at most daemon.DeniedLinesPerSecond per reason per second, then a line
// saying how many were suppressed once the next second lets one through.
// With the eleven reasons and unknown hosts that bounds the proxy's denial
// lines to 12 × 10 + 12 summary lines a second, whatever the attack and
// however many applications share the limiter; the oauth_proxy_denied_total counter still counts
// every refusal. A request for a host no application has (issue #15) is
// logged the same way, as one more kind, and counted in
// oauth_proxy_unknown_host_total.

// denialLog limits the proxy's denial lines. It lives on the Proxy, across
// reloads.
type denialLog struct {
	lines *daemon.LogLimiter // kind: the deny reason
	keys  *daemon.LogLimiter // one kind
}

func newDenialLog() denialLog {
	return denialLog{
		lines: daemon.NewLogLimiter(int(denyCount)+1, daemon.DeniedLinesPerSecond, time.Second), // + unknownHostKind
		keys:  daemon.NewLogLimiter(1, 1, daemon.KeyMismatchEvery),
	}
}

// logDenial logs a refused request at info: the reason, the method and path
// (without the query, which may hold anything), the request ID, the client's
// address and the route; never a cookie, header value or token. When the
// refused cookie is well-formed but opened with no key it also warns, once
// per daemon.KeyMismatchEvery. s.cookie must still hold the cookie that did not
// open. It allocates nothing.
func (p *Proxy) logDenial(ctx *fasthttp.RequestCtx, st *state, s *scratch, rm *routeMetrics, id []byte, why deny, now time.Time) {
	if enabled(st.log, zerolog.InfoLevel) {
		if ok, suppressed := p.denials.lines.Allow(int(why), now); ok {
			if suppressed > 0 {
				st.log.Info().Str("reason", denyReasons[why]).Uint64("suppressed", suppressed).
					Msg("suppressed similar denials")
			}
			method, path := ctx.Method(), ctx.Path()
			if rm == st.auth {
				// NGINX's auth_request subrequest: the request it asks
				// about is the one to name.
				if m := ctx.Request.Header.Peek("X-Original-Method"); len(m) > 0 {
					method = m
				}
				path = ctx.Request.Header.Peek("X-Original-URI")
				if i := bytes.IndexByte(path, '?'); i >= 0 {
					path = path[:i]
				}
			}
			s.buf = appendClient(s.buf[:0], ctx, st.cfg.TrustedProxies)
			st.log.Info().Str("reason", denyReasons[why]).Int("status", ctx.Response.StatusCode()).
				Bytes("method", method).Bytes("path", path).Bytes("request_id", id).Bytes("client", s.buf).
				Str("route", rm.name).Msg("request denied")
		}
	}
	if (why == denyDecrypt || why == denyCSRFInvalid) && enabled(st.log, zerolog.WarnLevel) && st.codec.WellFormed(s.cookie) {
		if ok, suppressed := p.denials.keys.Allow(0, now); ok {
			cookie := st.names.AccessToken.Name
			if why == denyCSRFInvalid {
				cookie = st.names.CSRF.Name
			}
			st.log.Warn().Str("cookie", cookie).Int("keys", st.cfg.Keys.Len()).Bytes("request_id", id).
				Uint64("suppressed", suppressed).Msg(daemon.KeyMismatchMessage)
		}
	}
}

// unknownHostKind is the denial log's kind for requests of unknown hosts,
// after the deny reasons.
const unknownHostKind = int(denyCount)

// unknownHost answers a request whose Host no application has (issue #15)
// 404 with the usual JSON body, as a path no route has, counts it and logs
// it at info through the denial log's limiter: the host (cut to the
// longest host name; it is the client's text, not a secret), the method
// and path, the request ID and the client. The answer has no CORS headers:
// without an application there are no trusted origins. It allocates
// nothing.
func (p *Proxy) unknownHost(ctx *fasthttp.RequestCtx, a *apps, s *scratch, id []byte, now time.Time) {
	writeError(ctx, browser.AnswerNotFound)
	p.metrics.unknownHost.Inc()
	if !enabled(a.log, zerolog.InfoLevel) {
		return
	}
	ok, suppressed := p.denials.lines.Allow(unknownHostKind, now)
	if !ok {
		return
	}
	if suppressed > 0 {
		a.log.Info().Uint64("suppressed", suppressed).Msg("suppressed similar requests for unknown hosts")
	}
	host := ctx.Request.Header.Host()
	host = host[:min(len(host), settings.MaxHostLen+len(":65535"))]
	s.buf = appendClient(s.buf[:0], ctx, a.trustedProxies)
	a.log.Info().Bytes("host", host).Int("status", ctx.Response.StatusCode()).Bytes("method", ctx.Method()).
		Bytes("path", ctx.Path()).Bytes("request_id", id).Bytes("client", s.buf).Msg("request for an unknown host")
}

// appendClient appends the client's address: the last X-Forwarded-For entry
// when the peer is a trusted proxy (one of proxies, trusted_proxies) that
// sent one (what NGINX saw), else the peer's IP, or "unix" for a
// Unix-socket peer without one. An entry that is not made of IP address
// characters is not used: the header is not ours.
func appendClient(dst []byte, ctx *fasthttp.RequestCtx, proxies []netip.Prefix) []byte {
	peer := ctx.RemoteAddr()
	if trustedPeer(peer, proxies) {
		if all := ctx.Request.Header.PeekAll(fasthttp.HeaderXForwardedFor); len(all) > 0 {
			last := all[len(all)-1]
			if i := bytes.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if last = browser.TrimOWS(last); ipShaped(last) {
				return append(dst, last...)
			}
		}
	}
	switch a := peer.(type) {
	case *net.TCPAddr:
		return appendIP(dst, a.IP)
	case *net.UnixAddr:
		return append(dst, "unix"...)
	}
	return dst
}

// ipShaped reports whether b is made of the characters of an IPv4 or IPv6
// address (a zone aside) and no longer than one.
func ipShaped(b []byte) bool {
	if len(b) == 0 || len(b) > len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255") {
		return false
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.') {
			return false
		}
	}
	return true
}

// enabled reports whether log writes events of level lvl, without taking
// an event from zerolog's pool.
func enabled(log zerolog.Logger, lvl zerolog.Level) bool {
	return log.GetLevel() <= lvl && zerolog.GlobalLevel() <= lvl
}
