package proxy

import (
	"errors"
	"net"
	"net/netip"
	"sort"
	"time"

	"github.com/valyala/fasthttp"
)

// route is one entry of routes: a path prefix and its upstream pool.
type route struct {
	prefix  string
	strip   bool
	client  doer
	hosts   []*fasthttp.HostClient
	metrics routeMetrics
}

// doer is fasthttp.HostClient (one upstream) or fasthttp.LBClient (several).
type doer interface {
	DoTimeout(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration) error
}

// newRoutes builds one keep-alive pool per upstream address, longest prefix
// first so that the first match is the longest.
func newRoutes(cfg *Config, m *proxyMetrics, dial fasthttp.DialFunc) []*route {
	routes := make([]*route, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		rt := &route{prefix: r.PathPrefix, strip: r.StripPrefix, metrics: *m.route(r.PathPrefix)}
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

// closeRoutesLater closes the idle connections of routes replaced by a
// reload, once requests still using them have had time to finish.
func closeRoutesLater(routes []*route, after time.Duration) {
	if len(routes) == 0 {
		return
	}
	time.AfterFunc(after, func() {
		for _, r := range routes {
			for _, h := range r.hosts {
				h.CloseIdleConnections()
			}
		}
	})
}

// hopByHop are the RFC 9110 §7.6.1 connection-specific fields a proxy must
// not forward. fasthttp manages Connection and Transfer-Encoding itself.
var hopByHop = []string{"Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "TE", "Trailer", "Upgrade"}

var corsResponseHeaders = []string{
	fasthttp.HeaderAccessControlAllowOrigin, fasthttp.HeaderAccessControlAllowCredentials,
	fasthttp.HeaderAccessControlExposeHeaders, fasthttp.HeaderAccessControlAllowMethods,
	fasthttp.HeaderAccessControlAllowHeaders, fasthttp.HeaderAccessControlMaxAge,
}

// forward sends the (already rewritten) request to the route's upstream and
// leaves its answer, streamed, in ctx.Response.
func (p *Proxy) forward(ctx *fasthttp.RequestCtx, st *state, rt *route, s *scratch) {
	req := &ctx.Request
	if cl := req.Header.ContentLength(); cl > st.cfg.Limits.MaxBodyBytes {
		writeError(ctx, errTooLarge)
		return
	}
	closeAfter := req.Header.ConnectionClose()
	removeHopByHop(&req.Header, s)
	p.setForwarded(ctx, s)
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
			writeError(ctx, errGatewayTimeout)
		} else {
			rt.metrics.upstreamErrors.Inc()
			writeError(ctx, errBadGateway)
		}
		st.cors.Response(&ctx.Response.Header, req.Header.Peek(fasthttp.HeaderOrigin), st.origins.Trusted(req.Header.Peek(fasthttp.HeaderOrigin)))
		ctx.Response.Header.SetBytesV(HeaderRequestID, req.Header.Peek(HeaderRequestID))
		st.log.Warn().Err(err).Str("route", rt.prefix).Bytes("request_id", req.Header.Peek(HeaderRequestID)).Msg("upstream request failed")
		return
	}
	resp := &ctx.Response.Header
	// The upstream's wish to close its connection to us is not the browser's
	// business; the browser's own is honoured.
	resp.ResetConnectionClose()
	if closeAfter {
		ctx.SetConnectionClose()
	}
	for _, h := range hopByHop {
		resp.Del(h)
	}
	// Step 7 again: the upstream's answer replaced the headers set earlier.
	// With CORS on, the proxy alone speaks CORS: an API's own "*" must not
	// reach the browser beside it.
	if st.cors.Enabled() {
		for _, h := range corsResponseHeaders {
			resp.Del(h)
		}
	}
	origin := req.Header.Peek(fasthttp.HeaderOrigin)
	st.cors.Response(resp, origin, st.origins.Trusted(origin))
	resp.SetBytesV(HeaderRequestID, req.Header.Peek(HeaderRequestID))
}

// removeHopByHop deletes the hop-by-hop request headers, including those the
// Connection header names.
func removeHopByHop(h *fasthttp.RequestHeader, s *scratch) {
	if conn := h.Peek(fasthttp.HeaderConnection); len(conn) > 0 {
		s.buf = append(s.buf[:0], conn...)
		for tok := range tokens(s.buf) {
			h.DelBytes(tok)
		}
	}
	// Also resets the request's Connection: close; forward restores it on
	// the response side.
	h.Del(fasthttp.HeaderConnection)
	for _, name := range hopByHop {
		h.Del(name)
	}
}

// tokens yields the comma-separated, trimmed tokens of a header value.
func tokens(v []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(v) > 0 {
			i := 0
			for i < len(v) && v[i] != ',' {
				i++
			}
			tok := trimOWS(v[:i])
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

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// setForwarded appends the client address to X-Forwarded-For and sets
// X-Forwarded-Proto and -Host unless a proxy in front (NGINX) already did.
func (p *Proxy) setForwarded(ctx *fasthttp.RequestCtx, s *scratch) {
	h := &ctx.Request.Header
	if addr, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		s.buf = s.buf[:0]
		if prior := h.Peek(fasthttp.HeaderXForwardedFor); len(prior) > 0 {
			s.buf = append(append(s.buf, prior...), ", "...)
		}
		s.buf = appendIP(s.buf, addr.IP)
		h.SetBytesV(fasthttp.HeaderXForwardedFor, s.buf)
	}
	if len(h.Peek(fasthttp.HeaderXForwardedProto)) == 0 {
		if ctx.IsTLS() {
			h.Set(fasthttp.HeaderXForwardedProto, "https")
		} else {
			h.Set(fasthttp.HeaderXForwardedProto, "http")
		}
	}
	if len(h.Peek(fasthttp.HeaderXForwardedHost)) == 0 {
		h.SetBytesV(fasthttp.HeaderXForwardedHost, h.Host())
	}
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
