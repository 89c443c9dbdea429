package proxy

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/browser"
)

// route is one entry of routes: a path prefix and its upstream pool.
type route struct {
	prefix  string
	strip   bool
	client  doer
	hosts   []*fasthttp.HostClient
	metrics routeMetrics
	// spec and pool are what the route was built from: a reload that
	// gives its application the same keeps the route and its pool.
	spec Route
	pool poolSettings
}

// poolSettings are the settings of a Config that an upstream pool is
// built with besides its Route. It may be copied and compared.
type poolSettings struct {
	upstream, idle time.Duration
	readBuffer     int
}

func poolSettingsOf(cfg *Config) poolSettings {
	return poolSettings{upstream: cfg.Timeouts.Upstream, idle: cfg.Timeouts.Idle, readBuffer: cfg.Limits.MaxRequestHeaderBytes}
}

// sameRoute reports whether r was built from spec with ps.
func (r *route) sameRoute(spec *Route, ps poolSettings) bool {
	return r.pool == ps && r.spec.PathPrefix == spec.PathPrefix && r.spec.StripPrefix == spec.StripPrefix &&
		slices.Equal(r.spec.Upstreams, spec.Upstreams)
}

// doer is fasthttp.HostClient (one upstream) or fasthttp.LBClient (several).
type doer interface {
	DoTimeout(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration) error
}

// newRoutes builds the routes of the application cfg, longest prefix first
// so that the first match is the longest: a route of old (the same
// application's before a reload) built from the same settings is kept,
// with its pool and its connections; every other route gets one new
// keep-alive pool per upstream address.
func newRoutes(cfg *Config, old []*route, m *proxyMetrics, dial fasthttp.DialFunc) []*route {
	routes := make([]*route, 0, len(cfg.Routes))
	ps := poolSettingsOf(cfg)
next:
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		for _, o := range old {
			if o.sameRoute(r, ps) {
				routes = append(routes, o)
				continue next
			}
		}
		rt := &route{prefix: r.PathPrefix, strip: r.StripPrefix, metrics: *m.route(cfg.Name, r.PathPrefix), spec: *r, pool: ps}
		for _, u := range r.Upstreams {
			hc := &fasthttp.HostClient{
				Addr:                     u.Addr,
				Dial:                     dial,
				IsTLS:                    u.TLS,
				NoDefaultUserAgentHeader: true,
				ReadTimeout:              cfg.Timeouts.Upstream,
				WriteTimeout:             cfg.Timeouts.Upstream,
				MaxIdleConnDuration:      cfg.Timeouts.Idle,
				MaxConns:                 4096,
				ReadBufferSize:           cfg.Limits.MaxRequestHeaderBytes,
			}
			hc.Transport = newTransport(hc, cfg.Timeouts.Upstream, hc.AcquireConn, hc.ReleaseConn, hc.CloseConn)
			rt.hosts = append(rt.hosts, hc)
		}
		if len(rt.hosts) == 1 {
			rt.client = rt.hosts[0]
		} else {
			lb := &fasthttp.LBClient{Timeout: cfg.Timeouts.Upstream}
			for _, h := range rt.hosts {
				lb.Clients = append(lb.Clients, h)
			}
			rt.client = lb
		}
		routes = append(routes, rt)
	}
	sort.SliceStable(routes, func(i, j int) bool { return len(routes[i].prefix) > len(routes[j].prefix) })
	return routes
}

// match returns the route with the longest prefix of path, or nil.
func (st *state) match(path []byte) *route {
	for _, r := range st.routes {
		if len(path) >= len(r.prefix) && string(path[:len(r.prefix)]) == r.prefix {
			return r
		}
	}
	return nil
}

// pools closes the idle connections of the upstream pools a Proxy retires:
// those of routes a reload replaced once requests still using them have
// had time to finish, and at close every one. The zero value is ready; it
// is safe for concurrent use and must not be copied.
type pools struct {
	mu      sync.Mutex
	closed  bool
	pending map[*time.Timer][]*route
}

// retire closes the idle connections of routes after d, or at close if
// that comes first.
func (ps *pools) retire(routes []*route, d time.Duration) {
	if len(routes) == 0 {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		closeRoutes(routes)
		return
	}
	if ps.pending == nil {
		ps.pending = map[*time.Timer][]*route{}
	}
	var t *time.Timer
	// The timer's function takes mu, which is held until t is set.
	t = time.AfterFunc(d, func() {
		ps.mu.Lock()
		delete(ps.pending, t)
		ps.mu.Unlock()
		closeRoutes(routes)
	})
	ps.pending[t] = routes
}

// close closes the idle connections of current and of every route still
// waiting in retire, now; routes retired later are closed at once.
func (ps *pools) close(current []*route) {
	ps.mu.Lock()
	ps.closed = true
	pending := ps.pending
	ps.pending = nil
	ps.mu.Unlock()
	for t, routes := range pending {
		if t.Stop() { // else its function runs and closes them
			closeRoutes(routes)
		}
	}
	closeRoutes(current)
}

// closeRoutes closes the idle connections of routes' pools.
func closeRoutes(routes []*route) {
	for _, r := range routes {
		for _, h := range r.hosts {
			h.CloseIdleConnections()
		}
	}
}

// hopByHop are the RFC 9110 §7.6.1 connection-specific fields a proxy must
// not forward. fasthttp manages Connection and Transfer-Encoding itself.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "TE", "Trailer", "Upgrade"}

var corsResponseHeaders = []string{
	fasthttp.HeaderAccessControlAllowOrigin, fasthttp.HeaderAccessControlAllowCredentials,
	fasthttp.HeaderAccessControlExposeHeaders, fasthttp.HeaderAccessControlAllowMethods,
	fasthttp.HeaderAccessControlAllowHeaders, fasthttp.HeaderAccessControlMaxAge,
}

// What forward removes from requests and answers, besides the fields a
// Connection header names. The X-Forwarded fields are written again; the
// answer's X-Request-Id is replaced by the request's.
var (
	requestDrop          = slices.Concat(hopByHop, []string{fasthttp.HeaderXForwardedFor, fasthttp.HeaderXForwardedProto, fasthttp.HeaderXForwardedHost})
	requestDropUntrusted = slices.Concat(requestDrop, []string{"Forwarded"})
	answerDrop           = fieldNames(slices.Concat(hopByHop, []string{HeaderRequestID})...)
	answerDropCORS       = fieldNames(slices.Concat(hopByHop, []string{HeaderRequestID}, corsResponseHeaders)...)
)

func fieldNames(names ...string) [][]byte {
	out := make([][]byte, len(names))
	for i, n := range names {
		out[i] = []byte(n)
	}
	return out
}

// forward sends the (already rewritten) request to the route's upstream and
// leaves its answer, streamed, in ctx.Response.
func (p *Proxy) forward(ctx *fasthttp.RequestCtx, st *state, rt *route, s *scratch) {
	req := &ctx.Request
	if cl := req.Header.ContentLength(); cl > st.cfg.Limits.MaxBodyBytes {
		writeError(ctx, browser.AnswerRequestTooLarge)
		return
	}
	closeAfter := req.Header.ConnectionClose()
	st.rewriteHopByHop(ctx, s)
	if rt.strip {
		// Keep the leading slash: /api/users under /api/ becomes /users.
		s.buf = append(s.buf[:0], ctx.Path()[len(rt.prefix)-1:]...)
		req.URI().SetPathBytes(s.buf)
	}

	err := rt.client.DoTimeout(req, &ctx.Response, st.cfg.Timeouts.Upstream)
	if err != nil {
		ctx.Response.Reset()
		if isTimeout(err) {
			rt.metrics.upstreamTimeouts.Inc()
			writeError(ctx, browser.AnswerUpstreamTimeout)
		} else {
			rt.metrics.upstreamErrors.Inc()
			writeError(ctx, browser.AnswerUpstreamUnavailable)
		}
		st.cors.Response(&ctx.Response.Header, req.Header.Peek(fasthttp.HeaderOrigin), st.origins.Trusted(req.Header.Peek(fasthttp.HeaderOrigin)))
		ctx.Response.Header.SetBytesV(HeaderRequestID, req.Header.Peek(HeaderRequestID)) // after Reset: the only copy
		st.log.Warn().Err(err).Str("route", rt.prefix).Bytes("request_id", req.Header.Peek(HeaderRequestID)).Msg("upstream request failed")
		return
	}
	resp := &ctx.Response.Header
	// RFC 9110 §7.6.1: what the answer's Connection names is for the hop
	// from the API to us, like the standard hop-by-hop fields: an API's
	// "Connection: X-Internal" with "X-Internal: secret" must not reach the
	// browser. The upstream's wish to close its connection to us is not the
	// browser's business either; the browser's own is honoured.
	s.buf = s.buf[:0]
	for _, v := range resp.PeekAll(fasthttp.HeaderConnection) {
		s.buf = append(append(s.buf, v...), ',')
	}
	// Step 7 again: the upstream's answer replaced the headers set earlier.
	// With CORS on, the proxy alone speaks CORS: an API's own "*" must not
	// reach the browser beside it. The API's own X-Request-Id, every copy,
	// gives way to ours.
	drop := answerDrop
	if st.cors.Enabled() {
		drop = answerDropCORS
	}
	dropResponseFields(resp, s, drop, s.buf)
	if closeAfter {
		ctx.SetConnectionClose()
	}
	origin := req.Header.Peek(fasthttp.HeaderOrigin)
	st.cors.Response(resp, origin, st.origins.Trusted(origin))
	resp.SetBytesV(HeaderRequestID, req.Header.Peek(HeaderRequestID))
}

// framingField reports whether a field name that Connection names is one
// the proxy keeps anyway: Content-Length, Transfer-Encoding and Host frame
// and address this very message (RFC 9112 §6, §3.2), fasthttp manages them,
// and removing them would change what the message is, not what the next hop
// sees of the last one.
func framingField(name []byte) bool {
	return bytes.EqualFold(name, strContentLength) || bytes.EqualFold(name, strTransferEncoding) || bytes.EqualFold(name, strHost)
}

var strHost = []byte(fasthttp.HeaderHost)

// tokens yields the comma-separated, trimmed tokens of a header value.
func tokens(v []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(v) > 0 {
			i := 0
			for i < len(v) && v[i] != ',' {
				i++
			}
			tok := browser.TrimOWS(v[:i])
			if i < len(v) {
				i++
			}
			v = v[i:]
			if len(tok) > 0 && !yield(tok) {
				return
			}
		}
	}
}

// rewriteHopByHop removes the request's hop-by-hop fields, those its
// Connection names included (RFC 9110 §7.6.1), and writes X-Forwarded-For,
// -Proto and -Host, one line each. From a trusted proxy (trusted_proxies, or
// a Unix-socket peer) what it sent is kept: its X-Forwarded-For lines,
// joined, get the peer's address appended, and its -Proto and -Host stay
// (the first line) when present. From anyone else they, and Forwarded (RFC
// 7239), are replaced: a client must not choose the address, scheme or host
// the API sees. Removing Connection also resets the request's
// Connection: close; forward restores it on the response side.
func (st *state) rewriteHopByHop(ctx *fasthttp.RequestCtx, s *scratch) {
	h := &ctx.Request.Header
	trusted := trustedPeer(ctx.RemoteAddr(), st.cfg.TrustedProxies)

	// s.buf: the Connection tokens, then the three values, copied before
	// the lines they come from go.
	s.buf = s.buf[:0]
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) { // every Connection line
		s.buf = append(append(s.buf, v...), ',')
	}
	named := len(s.buf)

	if trusted {
		for _, v := range h.PeekAll(fasthttp.HeaderXForwardedFor) {
			if v = browser.TrimOWS(v); len(v) > 0 {
				if len(s.buf) > named {
					s.buf = append(s.buf, ", "...)
				}
				s.buf = append(s.buf, v...)
			}
		}
	}
	if addr, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		if len(s.buf) > named {
			s.buf = append(s.buf, ", "...)
		}
		s.buf = appendIP(s.buf, addr.IP)
	}
	xff := len(s.buf)

	if trusted {
		s.buf = append(s.buf, h.Peek(fasthttp.HeaderXForwardedProto)...)
	}
	if len(s.buf) == xff {
		if ctx.IsTLS() {
			s.buf = append(s.buf, "https"...)
		} else {
			s.buf = append(s.buf, "http"...)
		}
	}
	proto := len(s.buf)

	if trusted {
		s.buf = append(s.buf, h.Peek(fasthttp.HeaderXForwardedHost)...)
	}
	if len(s.buf) == proto {
		s.buf = append(s.buf, h.Host()...)
	}

	drop := requestDrop
	if !trusted {
		drop = requestDropUntrusted
	}
	dropRequestFields(h, s, drop, s.buf[:named])
	if xff > named {
		h.SetBytesKV(fieldXForwardedFor, s.buf[named:xff])
	}
	h.SetBytesKV(fieldXForwardedProto, s.buf[xff:proto])
	if len(s.buf) > proto {
		h.SetBytesKV(fieldXForwardedHost, s.buf[proto:])
	}
}

// trustedPeer reports whether the connection's peer is a trusted proxy: a
// Unix-socket peer (only local processes the socket's mode admits can
// connect), or a TCP peer inside proxies (trusted_proxies). It allocates
// nothing.
func trustedPeer(addr net.Addr, proxies []netip.Prefix) bool {
	switch a := addr.(type) {
	case *net.UnixAddr:
		return true
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			return false
		}
		ip = ip.Unmap()
		for _, p := range proxies {
			if p.Contains(ip) {
				return true
			}
		}
	}
	return false
}

func appendIP(dst []byte, ip net.IP) []byte {
	if ip4 := ip.To4(); ip4 != nil {
		return fasthttp.AppendIPv4(dst, ip4)
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.AppendTo(dst)
}

func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
