// Package proxy is the OAuth Proxy: the hot path of the token handler. Every
// API call from the SPA passes through it. It checks the Origin and, on
// data-changing methods, the CSRF header, decrypts the access-token cookie
// and forwards the call with Authorization: Bearer (contract §6), either to an
// upstream itself (upstream mode) or by answering NGINX's auth_request
// subrequest (auth_request mode).
//
// A v2 cookie opens only for the purpose it was sealed for, and the proxy
// refuses a request whose cookies are ambiguous (a name twice), belong to
// two sessions, or to a session older than session.max_lifetime (package
// session, issue #11).
//
// One proxy may serve several applications (a file with apps, issue #15):
// each request is an application's by its Host header, and each has its
// own keys, cookie names, origins, routes and metrics label; its cookies
// open nowhere else.
package proxy

import (
	"bytes"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/daemon"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/session"
)

// Proxy is the request handler. Build it with New; swap its configuration
// with Reload. A Proxy is safe for concurrent use and must not be copied.
type Proxy struct {
	apps    atomic.Pointer[apps]
	metrics *proxyMetrics
	rev     *revocations
	denials denialLog
	ids     requestIDs
	dial    fasthttp.DialFunc
	pools   pools      // the upstream pools of routes a reload replaced
	reload  sync.Mutex // one Reload at a time: each builds on the last
	close   sync.Once
	now     func() time.Time // time.Now; tests replace it before serving
}

// apps is what a configuration serves (issue #15): its applications, each
// found by the request's Host, swapped atomically as one on reload.
type apps struct {
	hosts  *settings.HostTable[*state]
	byName map[string]*state // every application, by Config.Name
	names  []string          // the names of a file with apps, sorted; nil without
	log    zerolog.Logger    // the process's, for requests of no application
	// trustedProxies are the process's trusted_proxies (every
	// application's too), for requests of no application.
	trustedProxies []netip.Prefix
}

// state is everything a request of one application reads: the one of a
// file without apps, or one of apps. It is built by Reload and read-only
// afterwards, but for its routes' pools.
type state struct {
	cfg         *Config // the application's
	codec       *session.Codec
	maxLifetime int64 // session.max_lifetime in seconds
	// failClosedAfter > 0: requests get 503 once the revocation list is
	// staler than this (revocation.fail_closed_after).
	failClosedAfter time.Duration
	names           browser.Names
	csrfField       []string // names.CSRFHeader, for dropRequestFields
	origins         browser.Origins
	cors            *browser.CORS
	authPath        string   // "" when the auth endpoint is off
	schemes         [][]byte // allow_token_schemes, for bytes.EqualFold
	routes          []*route // longest prefix first
	log             zerolog.Logger
	noRoute         *routeMetrics
	auth            *routeMetrics
	denied          *[denyCount]*metrics.Counter // by reason
}

// New builds a Proxy from a validated configuration. reg receives the
// proxy's metrics; a Set a previous Proxy used may be passed again: the
// counters are shared and the gauges report the new Proxy. log is the base
// logger (its level is taken from cfg).
func New(cfg *Config, reg *metrics.Set, log zerolog.Logger) (*Proxy, error) {
	return newProxy(cfg, reg, log, nil)
}

// newProxy is New with a dialer for the upstream pools, which tests point at
// in-memory listeners; nil dials TCP.
func newProxy(cfg *Config, reg *metrics.Set, log zerolog.Logger, dial fasthttp.DialFunc) (*Proxy, error) {
	p := &Proxy{metrics: newProxyMetrics(reg), denials: newDenialLog(), now: time.Now, dial: dial}
	p.ids.init()
	p.rev = newRevocations(reg, func() time.Time { return p.now() })
	if err := p.Reload(cfg, log); err != nil {
		return nil, err
	}
	return p, nil
}

// Reload swaps in a new configuration atomically: requests already running
// finish with the old one, later ones see the new one. On error nothing
// changes. Listen addresses, timeouts and limits are the server's and need a
// restart. The revocation follower keeps running unless the configuration
// changes where it follows from (revocation.feed, store or redis).
//
// Applications are matched by name: a route an application keeps as it was
// (and timeouts.upstream, timeouts.idle and limits.max_request_header_bytes
// with it) keeps its upstream pool and its connections; the pools of routes
// a reload changed or removed, those of removed applications included, are
// closed once requests still using them have had timeouts.upstream to
// finish.
func (p *Proxy) Reload(cfg *Config, log zerolog.Logger) error {
	p.reload.Lock()
	defer p.reload.Unlock()
	old := p.apps.Load()
	next := &apps{
		byName:         map[string]*state{},
		log:            log.Level(cfg.Log.Level),
		trustedProxies: cfg.TrustedProxies,
	}
	list := cfg.Applications()
	byHost := map[string]*state{}
	var maxLifetime time.Duration
	for i, app := range list {
		where := ""
		if len(cfg.Apps) > 0 {
			// ParseConfig checks these; a Config built in Go may not
			// have been, and a name or host given twice would make
			// one application answer for another.
			where = fmt.Sprintf("apps[%d]: ", i)
			if err := settings.CheckAppName(fmt.Sprintf("apps[%d].name", i), app.Name); err != nil {
				return fmt.Errorf("proxy: %w", err)
			}
			if next.byName[app.Name] != nil {
				return fmt.Errorf("proxy: %sthe name %q is another application's", where, app.Name)
			}
			if len(app.Hosts) == 0 {
				return fmt.Errorf("proxy: %sapplication %q has no hosts", where, app.Name)
			}
		}
		var prev *state
		if old != nil {
			prev = old.byName[app.Name]
		}
		st, err := p.newState(app, prev, log)
		if err != nil {
			return fmt.Errorf("proxy: %s%w", where, err)
		}
		for _, h := range app.Hosts {
			if other := byHost[h]; other != nil {
				return fmt.Errorf("proxy: %shost %q is application %q's too", where, h, other.cfg.Name)
			}
			byHost[h] = st
		}
		next.byName[app.Name] = st
		maxLifetime = max(maxLifetime, app.MaxLifetime)
	}
	if len(cfg.Apps) == 0 {
		next.hosts = settings.NewHostTable(next.byName[cfg.Name])
	} else {
		next.hosts = settings.NewHostTableOf(byHost)
		next.names = slices.Sorted(maps.Keys(next.byName))
	}
	if err := p.rev.apply(cfg.Revocation, maxLifetime, next.log); err != nil {
		return err
	}
	p.apps.Store(next)
	if old != nil {
		p.pools.retire(old.replacedBy(next), cfg.Timeouts.Upstream)
	}
	return nil
}

// newState builds the state of one application, keeping the routes of
// prev (its state before a reload, or nil) that did not change. Its
// errors come without the "proxy: " prefix.
func (p *Proxy) newState(cfg *Config, prev *state, log zerolog.Logger) (*state, error) {
	names, err := browser.NewNames(cfg.CookieNamePrefix, cfg.NamePrefix)
	if err != nil {
		return nil, err
	}
	codec, err := session.NewCodec(cfg.Keys, cfg.CookieFormat, cfg.CookieAccept...)
	if err != nil {
		return nil, err
	}
	log = log.Level(cfg.Log.Level)
	if cfg.Name != "" {
		log = log.With().Str("app", cfg.Name).Logger()
	}
	st := &state{
		cfg:             cfg,
		codec:           codec.WithApp(cfg.Name),
		maxLifetime:     settings.MaxLifetimeSeconds(cfg.MaxLifetime),
		failClosedAfter: cfg.Revocation.FailClosedAfter,
		names:           names,
		csrfField:       []string{names.CSRFHeader},
		origins:         browser.NewOrigins(cfg.TrustedWebOrigins),
		cors:            browser.NewCORS(cfg.CORS.Enabled, cfg.CORS.AllowMethods, cfg.CORS.AllowHeaders, cfg.CORS.ExposeHeaders, cfg.CORS.MaxAge),
		log:             log,
		noRoute:         p.metrics.route(cfg.Name, "none"),
		auth:            p.metrics.route(cfg.Name, "auth"),
		denied:          p.metrics.denials(cfg.Name),
	}
	if cfg.AuthEndpoint {
		st.authPath = cfg.AuthPath
	}
	for _, s := range cfg.AllowTokenSchemes {
		st.schemes = append(st.schemes, []byte(s))
	}
	var oldRoutes []*route
	if prev != nil {
		oldRoutes = prev.routes
	}
	st.routes = newRoutes(cfg, oldRoutes, p.metrics, p.dial)
	return st, nil
}

// routes returns the routes of every application.
func (a *apps) routes() []*route {
	var all []*route
	for _, st := range a.byName {
		all = append(all, st.routes...)
	}
	return all
}

// replacedBy returns the routes of a that next does not keep.
func (a *apps) replacedBy(next *apps) []*route {
	kept := map[*route]bool{}
	for _, r := range next.routes() {
		kept[r] = true
	}
	var gone []*route
	for _, r := range a.routes() {
		if !kept[r] {
			gone = append(gone, r)
		}
	}
	return gone
}

// appsReady lists, for a file with apps, each application by name, sorted,
// for /readyz: each is ready whenever the proxy is, since an application
// of the proxy depends on nothing the others do not. Nil for a file without
// apps.
func (p *Proxy) appsReady() []daemon.AppStatus {
	a := p.apps.Load()
	if a == nil || a.names == nil {
		return nil
	}
	out := make([]daemon.AppStatus, len(a.names))
	for i, name := range a.names {
		out[i] = daemon.AppStatus{Name: name, Ready: true}
	}
	return out
}

// Close stops what the Proxy owns: the revocation follower, and the
// upstream pools' keep-alive connections, those of routes a reload replaced
// included. Call it once requests have finished (after the server's
// drain); the Proxy must not serve or reload after it. Calls after the
// first do nothing. It returns nil.
//
// fasthttp ends a pool's cleaner goroutine only after its sleep, up to
// timeouts.idle after the pool's last connection closed.
func (p *Proxy) Close() error {
	p.close.Do(func() {
		p.rev.close()
		p.pools.close(p.apps.Load().routes())
	})
	return nil
}

// Handler serves one request. It is a fasthttp.RequestHandler.
func (p *Proxy) Handler(ctx *fasthttp.RequestCtx) {
	a := p.apps.Load()
	start := p.now()
	s := acquireScratch()
	defer releaseScratch(s)

	id := p.ids.set(ctx, s)
	// The application is the Host's (issue #15): the header, as NGINX
	// passes it, not a host in the request target (step 0 refuses those).
	st, ok := a.hosts.Lookup(ctx.Request.Header.Host())
	if !ok {
		p.unknownHost(ctx, a, s, id, start)
		return
	}
	rm, outcome := p.serve(ctx, st, s, start.Unix())
	status := ctx.Response.StatusCode()
	rm.observe(status, p.now().Sub(start))
	if outcome != denyNone {
		st.denied[outcome].Inc()
		p.logDenial(ctx, st, s, rm, id, outcome, start)
	}
	if e := st.log.Debug(); e != nil {
		e.Bytes("request_id", id).Bytes("method", ctx.Method()).Bytes("path", ctx.Path()).
			Int("status", status).Str("route", rm.name).Dur("duration", p.now().Sub(start)).
			Str("denied", denyReasons[outcome]).Msg("request")
	}
}

// serve runs the contract §6 pipeline and reports which route's metrics to
// count and, for a 401, why. now is the request's time in Unix seconds.
func (p *Proxy) serve(ctx *fasthttp.RequestCtx, st *state, s *scratch, now int64) (*routeMetrics, deny) {
	req := &ctx.Request.Header
	resp := &ctx.Response.Header
	origin := req.Peek(fasthttp.HeaderOrigin)
	trusted := st.origins.Trusted(origin)
	isAuth := st.isAuthEndpoint(req) && (ctx.IsGet() || ctx.IsHead())

	// 0. Nothing that two HTTP parsers could read differently goes on.
	if ambiguous(req) {
		st.cors.Response(resp, origin, trusted)
		writeError(ctx, browser.AnswerBadRequest)
		ctx.SetConnectionClose()
		return st.noRoute, denyNone
	}

	// 1. Preflight.
	if !isAuth && ctx.IsOptions() && st.cors.Enabled() {
		st.cors.Preflight(resp, origin, trusted, req.Peek(fasthttp.HeaderAccessControlRequestHeaders))
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return st.noRoute, denyNone
	}
	rm := st.noRoute
	var rt *route
	if isAuth {
		rm = st.auth
	} else if rt = st.match(ctx.Path()); rt != nil {
		rm = &rt.metrics
	}

	method := ctx.Method()
	if isAuth {
		if m := req.Peek("X-Original-Method"); len(m) > 0 {
			method = m
		}
	}
	// 7, for every answer from here on, errors included.
	st.cors.Response(resp, origin, trusted)

	// 2. A client that brings its own token (a mobile app) passes. So does
	// OPTIONS with CORS off: the proxy answers no preflight then, it is the
	// API's, and a preflight never carries cookies (Fetch §3.2.2). Such an
	// OPTIONS carries no Authorization on, unless allow_tokens accepts it:
	// what reaches the API as Authorization is the token handler's word.
	own := st.cfg.AllowTokens && st.ownToken(req.Peek(fasthttp.HeaderAuthorization))
	passThrough := own || !st.cors.Enabled() && string(method) == fasthttp.MethodOptions
	if !passThrough {
		// Fail closed (revocation.fail_closed_after): with a list this
		// stale, a session ended at the Provider could still pass.
		if p.rev.failClosed(st, now) {
			writeError(ctx, browser.AnswerRevocationUnavailable)
			return rm, denyNone
		}
		if why := p.authorize(ctx, st, s, method, trusted, now); why != denyNone {
			writeError(ctx, browser.AnswerUnauthorized)
			return rm, why
		}
	}

	if isAuth {
		if !passThrough {
			resp.SetBytesV(fasthttp.HeaderAuthorization, s.bearer)
		} else if own {
			resp.SetBytesV(fasthttp.HeaderAuthorization, req.Peek(fasthttp.HeaderAuthorization))
		}
		ctx.SetStatusCode(fasthttp.StatusOK)
		return rm, denyNone
	}

	if rt == nil {
		writeError(ctx, browser.AnswerNotFound)
		return rm, denyNone
	}
	if !passThrough {
		// 6. The token replaces the Authorization the browser sent, in
		// its place (step 0 refused two).
		req.SetBytesV(fasthttp.HeaderAuthorization, s.bearer)
		if st.cfg.RemoveCookieHeaders {
			stripTokenHandlerCookies(req, st, s)
		}
	} else {
		if !own {
			dropRequestFields(req, s, authorizationField, nil)
		}
		if st.cfg.RemoveCookieHeaders {
			s.cookies = browser.RawCookies(req.PeekAll(fasthttp.HeaderCookie))
			stripTokenHandlerCookies(req, st, s)
		}
	}
	p.forward(ctx, st, rt, s)
	return rm, denyNone
}

// isAuthEndpoint reports whether the request is for the auth endpoint: its
// request target, up to any query, is auth_path byte for byte. The raw
// target, not the normalised path the routes see: "/api/../_oauth-proxy/auth"
// or "/%5Foauth-proxy/auth" normalise to auth_path, and a browser that
// reaches the proxy through a front end passing such paths on must not get
// the token back in an answer header.
func (st *state) isAuthEndpoint(req *fasthttp.RequestHeader) bool {
	if st.authPath == "" {
		return false
	}
	uri := req.RequestURI()
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	return string(uri) == st.authPath
}

// authorize runs steps 3 to 5 and leaves "Bearer <token>" in s.bearer. now
// is the request's time in Unix seconds.
func (p *Proxy) authorize(ctx *fasthttp.RequestCtx, st *state, s *scratch, method []byte, trusted bool, now int64) deny {
	req := &ctx.Request.Header
	changing := browser.NeedsCSRF(method)
	// Read cookies from the raw headers: fasthttp's own cookie parsing
	// rewrites quoted values and reorders cookies when one is deleted.
	s.cookies = browser.RawCookies(req.PeekAll(fasthttp.HeaderCookie))

	// 3. Origin.
	if (st.cors.Enabled() || changing) && !trusted {
		return denyOrigin
	}
	// Every token-handler cookie, in one pass. A name that comes twice (a
	// cookie planted by a sibling subdomain beside the real one, say) is
	// refused, never resolved by order.
	st.names.Scan(&s.found, &s.cookies)
	if s.found.Ambiguous() {
		return denyAmbiguous
	}
	// 4. CSRF: the header must repeat the token sealed in the CSRF cookie.
	// The cookie is opened whenever it is sent, also on a GET, so that a
	// P-at of one session never passes beside the P-csrf of another
	// (below); on a GET one that does not open is left out, as if absent.
	var csrfFormat crypto.Format
	csrfOpened := false
	if changing || s.found.Present(&st.names.CSRF) {
		cookie, chunks, ok := s.found.AppendValue(s.cookie[:0], &st.names.CSRF)
		s.cookie = cookie
		if !ok && changing {
			return denyCSRFMissing
		}
		var err error
		s.csrf, csrfFormat, err = st.codec.Open(s.csrf[:0], s.cookie, session.CSRF, chunks, &s.csrfEnv)
		switch {
		case err == nil:
			csrfOpened = true
		case changing:
			return denyCSRFInvalid
		}
		if csrfOpened && csrfFormat == crypto.FormatV2 && !s.csrfEnv.Live(now, st.maxLifetime) {
			return denySessionExpired
		}
		if changing && !browser.CSRFMatches(req.Peek(st.names.CSRFHeader), s.csrf) {
			return denyCSRFMismatch
		}
	}
	// 5. The access token.
	cookie, chunks, ok := s.found.AppendValue(s.cookie[:0], &st.names.AccessToken)
	s.cookie = cookie
	if !ok || len(s.cookie) == 0 {
		return denyCookieMissing
	}
	bearer, format, err := st.codec.Open(append(s.bearer[:0], bearerPrefix...), s.cookie, session.AccessToken, chunks, &s.atEnv)
	s.bearer = bearer
	if err != nil {
		return denyDecrypt
	}
	// A v1 or DARE cookie (read only when cookie.format or cookie.accept
	// names it) says nothing about its session: the checks below are what
	// such deployments go without (docs/compatibility.md).
	if format == crypto.FormatV2 && !s.atEnv.Live(now, st.maxLifetime) {
		return denySessionExpired
	}
	// Ended by a back-channel logout (issue #13): the list is in memory,
	// kept current in the background; asking allocates nothing.
	if format == crypto.FormatV2 && p.rev.set.Revoked(&s.atEnv, now) {
		return denySessionRevoked
	}
	if csrfOpened && (csrfFormat != format || format == crypto.FormatV2 && s.csrfEnv.ID != s.atEnv.ID) {
		return denySessionMismatch
	}
	if !browser.ValidToken68(s.bearer[len(bearerPrefix):]) {
		return denyTokenFormat
	}
	return denyNone
}

// stripTokenHandlerCookies removes every token-handler cookie (chunks
// included) and the CSRF header. The other cookies stay, in order,
// duplicates included, joined into one Cookie header (fasthttp's own
// DelCookie would reorder them), except nameless ones: fasthttp writes a
// nameless cookie as its bare value, which can parse back as another cookie
// ("=a=b" as "a=b"). s.cookies must hold the Cookie headers.
func stripTokenHandlerCookies(req *fasthttp.RequestHeader, st *state, s *scratch) {
	s.buf = s.cookies.AppendWithout(s.buf[:0], st.names.All())
	req.Del(fasthttp.HeaderCookie) // kept apart by fasthttp: no other line moves
	if len(s.buf) > 0 {
		req.SetBytesV(fasthttp.HeaderCookie, s.buf)
	}
	dropRequestFields(req, s, st.csrfField, nil)
}

const bearerPrefix = "Bearer "

var authorizationField = []string{fasthttp.HeaderAuthorization}

var strBearer = []byte("Bearer")

// ownToken reports whether an Authorization value carries a client's own
// token that allow_tokens lets through: "<scheme> <credentials>" with the
// Bearer scheme or one of allow_token_schemes, compared case-insensitively
// (RFC 9110 §11.1: "bearer" is Bearer).
func (st *state) ownToken(auth []byte) bool {
	scheme, credentials, ok := bytes.Cut(auth, []byte{' '})
	if !ok || len(credentials) == 0 {
		return false
	}
	if bytes.EqualFold(scheme, strBearer) {
		return true
	}
	for _, s := range st.schemes {
		if bytes.EqualFold(scheme, s) {
			return true
		}
	}
	return false
}

// deny is why a request was refused, a metrics label.
type deny uint8

const (
	denyNone deny = iota
	denyOrigin
	denyCSRFMissing
	denyCSRFInvalid
	denyCSRFMismatch
	denyCookieMissing
	denyDecrypt
	denyTokenFormat
	denyAmbiguous
	denySessionExpired
	denySessionMismatch
	denySessionRevoked
	denyCount
)

var denyReasons = [denyCount]string{
	denyNone:            "",
	denyOrigin:          "origin",
	denyCSRFMissing:     "csrf_cookie_missing",
	denyCSRFInvalid:     "csrf_cookie_invalid",
	denyCSRFMismatch:    "csrf_header_mismatch",
	denyCookieMissing:   "access_token_cookie_missing",
	denyDecrypt:         "access_token_cookie_invalid",
	denyTokenFormat:     "access_token_not_token68",
	denyAmbiguous:       "cookie_ambiguous",
	denySessionExpired:  "session_expired",
	denySessionMismatch: "session_mismatch",
	denySessionRevoked:  "session_revoked",
}

// scratch holds one request's buffers. Pooled; nothing in it outlives the
// handler call.
type scratch struct {
	cookies browser.RawCookies // the request's Cookie header values
	found   browser.Found      // the token-handler cookies among them
	cookie  []byte             // a reassembled cookie value
	csrf    []byte             // the decrypted CSRF token
	bearer  []byte             // "Bearer " + the decrypted access token
	buf     []byte             // header values being built
	atEnv   session.Envelope   // the access-token cookie's, when v2
	csrfEnv session.Envelope   // the CSRF cookie's, when v2
	id      [maxRequestID]byte
	// Field lines copied while removing fields (fields.go).
	fields       []byte
	lines, drops []fieldLine
	names        [][]byte // the request's field names, while removing fields
}

// maxPooledScratch caps what goes back to the pool (golang/go#23199).
const maxPooledScratch = 64 << 10

var scratchPool = sync.Pool{New: func() any {
	// The CSRF token opens into csrf with its 64-byte v2 trailer.
	return &scratch{cookie: make([]byte, 0, 4096), csrf: make([]byte, 0, 256), bearer: make([]byte, 0, 4096), buf: make([]byte, 0, 256)}
}}

func acquireScratch() *scratch { return scratchPool.Get().(*scratch) }

func releaseScratch(s *scratch) {
	if cap(s.cookie)+cap(s.bearer)+cap(s.buf)+cap(s.csrf)+cap(s.fields) > maxPooledScratch {
		return
	}
	clear(s.bearer) // the token must not linger in pooled memory
	clear(s.csrf)
	clear(s.fields[:cap(s.fields)]) // field lines copied beside the token
	s.cookies = nil
	s.found = browser.Found{} // it points into the request's headers
	scratchPool.Put(s)
}
