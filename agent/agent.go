// Package agent is the OAuth Agent: the backend-for-frontend API the SPA calls
// to log in, refresh, read user info and claims, and log out (contract §5). It
// runs the OpenID Connect code flow with PKCE on the back channel and keeps
// every token in encrypted HttpOnly cookies.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/fasthttp/router"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/internal/daemon"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/session"
)

// DefaultGracePeriod is refresh.grace_period when left out. Tabs that send
// the same refresh token race within milliseconds of each other; a few
// seconds also covers a tab that was busy or a slow network. Every second
// more is a second in which a copy of the replaced refresh token still
// works for whoever holds its session's CSRF pair too.
const DefaultGracePeriod = 5 * time.Second

// Agent is the OAuth Agent's request handler. Build it with New; swap its
// configuration with Reload; stop its background work with Close. An Agent
// is safe for concurrent use and must not be copied.
//
// An Agent serves the applications of its configuration (Config.Apps,
// issue #15), or the one application of a file without apps. Each has its
// own state: cookie names, codec bound to its name, origins, Authorization
// Server, back-channel client and metrics. What outlives reloads and is
// shared by all of them is the revocation list, the back-channel logout's
// limits, the denial log's limiter and the refresher, whose keys include
// the application.
type Agent struct {
	table   atomic.Pointer[table]
	metrics *agentMetrics // the process's series: no app label
	// unknownHost counts requests no application answers.
	unknownHost *metrics.Counter
	reg         *metrics.Set
	denials     denialLog
	refresh     *refresher
	// rev is the revocation list, logouts the back-channel endpoint's
	// limits; both outlive reloads.
	rev     *revocations
	logouts logoutGuards

	now func() time.Time // Config.Now or time.Now

	reloadMu sync.Mutex // one Reload at a time: each builds on the table before it
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// table is what the Handler reads to pick a request's application, swapped
// as one on reload.
type table struct {
	// one is the application of a file without apps, which answers every
	// host and path; nil with apps.
	one *state
	// hosts are the applications of each host, longest base_path first.
	hosts *settings.HostTable[[]*state]
	// apps are every application, ordered by name.
	apps []*state
	log  zerolog.Logger
	// maxLifetime is the longest session.max_lifetime of the applications,
	// in seconds: how long a back-channel logout's entry must live.
	maxLifetime int64
	// sessionsEndBy is the Unix time by which every session this process
	// started under an earlier table has ended (its Started plus the
	// lifetime then, sealed as its Expires): a back-channel logout's entry
	// lives at least until then. After a lowered max_lifetime those
	// sessions are refused only while it stays low; raised again, they
	// would be live, and their logouts must still refuse them.
	sessionsEndBy int64
}

// revocationExpires returns when a back-channel logout's entry recorded at
// Unix time now may be forgotten: once no session it could end is live,
// whatever the configuration then (see sessionsEndBy).
func (t *table) revocationExpires(now int64) int64 {
	return max(now+t.maxLifetime, t.sessionsEndBy)
}

// app returns the application named name, or nil.
func (t *table) app(name string) *state {
	for _, st := range t.apps {
		if st.cfg.Name == name {
			return st
		}
	}
	return nil
}

// pick returns the application that answers a request for host and path:
// the one of a file without apps, else of the applications of the host the
// first whose base_path is a path-segment prefix of path. Nil when none
// does.
func (t *table) pick(host, path []byte) *state {
	if t.one != nil {
		return t.one
	}
	apps, _ := t.hosts.Lookup(host)
	for _, st := range apps {
		if settings.UnderBasePath(path, st.cfg.BasePath) {
			return st
		}
	}
	return nil
}

// state is one application's: everything a request to it reads. A reload
// builds it anew; its discovery may be the previous one's.
type state struct {
	cfg *Config
	jar *jar
	// maxLifetime is Config.Session.MaxLifetime in seconds, its default
	// applied.
	maxLifetime int64
	origins     browser.Origins
	cors        *browser.CORS
	router      fasthttp.RequestHandler
	log         zerolog.Logger // with app=<name> when the application has one
	metrics     *agentMetrics
	// as is the application's Authorization Server and back-channel
	// client, kept across reloads while its settings stay the same.
	as *discovery
}

// client is the application's back-channel client.
func (st *state) client() *http.Client { return st.as.client }

// discovery is one application's Authorization Server: its metadata, nil
// until discovery has succeeded, and the back-channel client that fetched
// it and makes every other call to it. A reload that leaves the
// application's AS settings alone keeps it, metadata and idle connections
// included; one that changes them, or removes the application, stops its
// loop.
type discovery struct {
	provider atomic.Pointer[provider]
	client   *http.Client
	done     chan struct{} // closed by stop
	stopOnce sync.Once
}

func (d *discovery) stop() {
	d.stopOnce.Do(func() {
		close(d.done)
		d.client.CloseIdleConnections()
	})
}

// New builds an Agent from a validated configuration. It does not wait for
// the Authorization Servers: discovery runs in the background, retried with
// backoff, and Ready reports when one application has its metadata. reg
// receives the agent's metrics; a Set a previous Agent used may be passed
// again: the counters are shared and the gauges report the new Agent.
func New(cfg *Config, reg *metrics.Set, log zerolog.Logger) (*Agent, error) {
	a := &Agent{
		metrics: newAgentMetrics(reg, ""), reg: reg, unknownHost: reg.GetOrCreateCounter("oauth_agent_unknown_host_total"),
		denials: newDenialLog(), logouts: newLogoutGuards(), now: time.Now, stop: make(chan struct{}),
	}
	if cfg.Now != nil {
		a.now = cfg.Now
	}
	// Before openRevocations, which reads every application's lifetime
	// (Reload checks again, for every later configuration).
	if _, err := checkApps(cfg); err != nil {
		return nil, err
	}
	a.refresh = newRefresher(a)
	rev, err := openRevocations(cfg, a.now, log)
	if err != nil {
		return nil, err
	}
	a.rev = rev
	if err := a.Reload(cfg, log); err != nil {
		rev.close()
		return nil, err
	}
	rev.gauges(reg, a.now)
	rev.start(a, log)
	a.wg.Go(func() { a.refresh.sweep(a.stop) })
	return a, nil
}

// checkApps refuses a configuration whose applications cannot be told
// apart: a name that is not one (settings.CheckAppName) or comes twice, an
// application without hosts, or two that answer the same host and
// base_path. LoadConfig refuses these too; a Config built in Go meets them
// here. It returns each application's hosts as settings.CheckHost lowers
// them, in the order of cfg.Apps.
func checkApps(cfg *Config) ([][]string, error) {
	if len(cfg.Apps) == 0 {
		return nil, nil
	}
	hosts := make([][]string, len(cfg.Apps))
	names := map[string]bool{}
	served := map[string]string{} // host + base_path → name
	for i, app := range cfg.Apps {
		setting := fmt.Sprintf("apps[%d]", i)
		if app == nil {
			return nil, fmt.Errorf("agent: config: %s: is empty", setting)
		}
		if err := settings.CheckAppName(setting+".name", app.Name); err != nil {
			return nil, fmt.Errorf("agent: config: %w", err)
		}
		switch {
		case names[app.Name]:
			return nil, fmt.Errorf("agent: config: %s.name: %q names two applications", setting, app.Name)
		case len(app.Apps) > 0:
			return nil, fmt.Errorf("agent: config: %s: an application cannot have apps", setting)
		case len(app.Hosts) == 0:
			return nil, fmt.Errorf("agent: config: %s.hosts: is required: the host names application %q answers", setting, app.Name)
		}
		names[app.Name] = true
		for j, h := range app.Hosts {
			host, err := settings.CheckHost(fmt.Sprintf("%s.hosts[%d]", setting, j), h)
			if err != nil {
				return nil, fmt.Errorf("agent: config: %w", err)
			}
			if other, ok := served[host+app.BasePath]; ok && other != app.Name {
				return nil, fmt.Errorf("agent: config: %s: applications %q and %q both answer %s%s: give them other hosts or base paths", setting, other, app.Name, host, app.BasePath)
			}
			served[host+app.BasePath] = app.Name
			hosts[i] = append(hosts[i], host)
		}
	}
	return hosts, nil
}

// Reload swaps in a new configuration for requests that start after it
// returns. Applications are added, changed and removed; requests to the
// others are not disturbed. An application whose Authorization Server
// settings did not change (sameAS) keeps its metadata and back-channel
// client and is not discovered again; one whose did is discovered anew,
// and answers 502 where it needs the AS until then. On error nothing
// changes.
func (a *Agent) Reload(cfg *Config, log zerolog.Logger) error {
	hosts, err := checkApps(cfg)
	if err != nil {
		return err
	}
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	old := a.table.Load()
	t := &table{log: log.Level(cfg.Log.Level)}
	var started []*discovery
	fail := func(err error) error {
		for _, d := range started {
			d.stop()
		}
		return err
	}
	for _, app := range cfg.Applications() {
		var prev *state
		if old != nil {
			prev = old.app(app.Name)
		}
		st, fresh, err := a.newState(cfg, app, prev, log)
		if err != nil {
			return fail(err)
		}
		if fresh {
			started = append(started, st.as)
		}
		t.apps = append(t.apps, st)
		t.maxLifetime = max(t.maxLifetime, st.maxLifetime)
	}
	if old != nil {
		t.sessionsEndBy = max(old.sessionsEndBy, a.now().Unix()+old.maxLifetime)
	}
	// Before the table is used: a logout it records is not capped at the
	// old lifetime (Redis followers, this agent's own included, load the
	// list again after a raise anyway).
	if err := a.rev.setMaxLifetime(t.maxLifetime); err != nil {
		return fail(err)
	}
	if len(cfg.Apps) == 0 {
		t.one = t.apps[0]
	} else {
		byHost := map[string][]*state{}
		for i, st := range t.apps { // in the order of cfg.Apps, as hosts
			for _, host := range hosts[i] {
				byHost[host] = append(byHost[host], st)
			}
		}
		for _, apps := range byHost {
			// Longest base_path first: /api/admin before /api.
			slices.SortStableFunc(apps, func(x, y *state) int { return len(y.cfg.BasePath) - len(x.cfg.BasePath) })
		}
		t.hosts = settings.NewHostTableOf(byHost)
		slices.SortFunc(t.apps, func(x, y *state) int { return strings.Compare(x.cfg.Name, y.cfg.Name) })
	}
	a.table.Store(t)
	for _, d := range started {
		a.wg.Go(func() { a.discoverLoop(t.appOf(d), d) })
	}
	if old != nil {
		// The old applications' discoveries nobody kept: their loops end,
		// their idle connections close. Requests in flight finish with
		// what they hold.
		for _, st := range old.apps {
			if !t.uses(st.as) {
				st.as.stop()
			}
		}
	}
	return nil
}

// appOf returns the application of t that uses d.
func (t *table) appOf(d *discovery) *state {
	for _, st := range t.apps {
		if st.as == d {
			return st
		}
	}
	return nil
}

// uses reports whether an application of t uses d.
func (t *table) uses(d *discovery) bool { return t.appOf(d) != nil }

// newState builds the state of the application cfg of the file top, with
// prev the state of the same name before the reload (nil for a new one).
// fresh is true when its discovery is new and needs its loop.
func (a *Agent) newState(top, cfg *Config, prev *state, log zerolog.Logger) (st *state, fresh bool, err error) {
	if cfg.Coordinator == nil {
		// revocation.store redis: the same Redis coordinates refreshes.
		co := top.Coordinator
		if co == nil {
			co = a.rev.coordinator
		}
		if co != nil {
			c := *cfg
			c.Coordinator = co
			cfg = &c
		}
	}
	names, err := browser.NewNames(cfg.CookieNamePrefix, cfg.Cookie.NamePrefix)
	if err != nil {
		return nil, false, appError(cfg, err)
	}
	codec, err := session.NewCodec(cfg.Keys, cfg.CookieFormat, cfg.CookieAccept...)
	if err != nil {
		return nil, false, appError(cfg, fmt.Errorf("agent: %w", err))
	}
	l := log.Level(cfg.Log.Level)
	if cfg.Name != "" {
		l = l.With().Str("app", cfg.Name).Logger()
	}
	st = &state{
		cfg:         cfg,
		jar:         newJar(cfg, names, codec.WithApp(cfg.Name)),
		maxLifetime: settings.MaxLifetimeSeconds(cfg.Session.MaxLifetime),
		origins:     browser.NewOrigins(cfg.TrustedWebOrigins),
		cors:        browser.NewCORS(cfg.CORSEnabled, []string{"GET", "POST", "OPTIONS"}, nil, nil, 86400),
		log:         l,
		metrics:     newAgentMetrics(a.reg, cfg.Name),
	}
	st.router = a.routes(st)
	if prev != nil && sameAS(prev.cfg, cfg) {
		// The same Authorization Server, client and back-channel timeout:
		// the metadata, its keys and the connections stay.
		st.as = prev.as
		return st, false, nil
	}
	// A new or changed Authorization Server: 502 until its metadata is
	// known.
	st.as = &discovery{client: newHTTPClient(cfg.Timeouts.AS, st.metrics), done: make(chan struct{})}
	return st, true, nil
}

// appError names the application an error is about, when it has a name.
func appError(cfg *Config, err error) error {
	if cfg.Name == "" {
		return err
	}
	return fmt.Errorf("application %q: %w", cfg.Name, err)
}

// sameAS reports whether two configurations of one application have the
// same Authorization Server settings, so that its metadata and client can
// be kept across a reload.
func sameAS(a, b *Config) bool {
	return a.Issuer == b.Issuer && a.Endpoints == b.Endpoints && a.ClientID == b.ClientID &&
		a.ClientSecret == b.ClientSecret && a.ClientAuthMethod == b.ClientAuthMethod && a.RedirectURI == b.RedirectURI &&
		a.Scope == b.Scope && a.PAR == b.PAR && a.Timeouts.AS == b.Timeouts.AS &&
		slices.Equal(a.IDToken.AllowedAlgs, b.IDToken.AllowedAlgs) && a.IDToken.ClockSkew == b.IDToken.ClockSkew
}

// discoverLoop fetches the AS metadata of the application st into d until
// it succeeds, d is stopped (a reload changed or removed the application)
// or the agent closes; backoff from 500 ms doubling to 30 s.
func (a *Agent) discoverLoop(st *state, d *discovery) {
	backoff := 500 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), st.cfg.Timeouts.AS)
		p, err := discover(ctx, st.cfg, d.client, a.now)
		cancel()
		if err == nil {
			d.provider.Store(p)
			st.log.Info().Str("issuer", st.cfg.Issuer).Msg("Authorization Server metadata loaded")
			return
		}
		st.log.Warn().Err(err).Dur("retry_in", backoff).Msg("Authorization Server not reachable; retrying")
		select {
		case <-a.stop:
			return
		case <-d.done:
			return // reloaded: the application changed or is gone
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// Ready reports whether an application has its Authorization Server's
// metadata: one is enough to serve (the others answer 502 alone).
func (a *Agent) Ready() bool {
	t := a.table.Load()
	if t == nil {
		return false
	}
	for _, st := range t.apps {
		if st.as.provider.Load() != nil {
			return true
		}
	}
	return false
}

// AppsReady reports, for a configuration with apps, whether each
// application has its Authorization Server's metadata, ordered by name; nil
// for a file without apps.
func (a *Agent) AppsReady() []daemon.AppStatus {
	t := a.table.Load()
	if t == nil || t.one != nil {
		return nil
	}
	out := make([]daemon.AppStatus, len(t.apps))
	for i, st := range t.apps {
		out[i] = daemon.AppStatus{Name: st.cfg.Name, Ready: st.as.provider.Load() != nil}
	}
	return out
}

// Close stops background work: discovery retries, cache expiry and
// following the revocation store, which it closes when the agent opened
// it. It also closes the idle keep-alive connections to the Authorization
// Servers, which would otherwise stay open, with a goroutine each, for
// their idle timeout.
func (a *Agent) Close() {
	a.stopOnce.Do(func() {
		close(a.stop)
		a.wg.Wait()
		if err := a.rev.close(); err != nil {
			a.table.Load().log.Warn().Err(err).Msg("revocation: closing the store failed")
		}
	})
	a.wg.Wait()
	if t := a.table.Load(); t != nil {
		for _, st := range t.apps {
			st.as.stop()
		}
	}
}

// RevocationFeed returns the handler of the embedded revocation store's
// feed (GET /revocations, served on the ops listener for the proxies to
// follow), or nil when the store is another one or off.
func (a *Agent) RevocationFeed() fasthttp.RequestHandler { return a.rev.feed }

// Handler serves one request. It is a fasthttp.RequestHandler.
func (a *Agent) Handler(ctx *fasthttp.RequestCtx) {
	t := a.table.Load()
	h := &ctx.Response.Header
	h.Set(fasthttp.HeaderCacheControl, "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	st := t.pick(ctx.Request.Header.Host(), ctx.Path())
	if st == nil {
		// No application answers this host and path: the answer of an
		// unknown path, counted; the host is the client's text, so it is
		// not logged.
		a.unknownHost.Inc()
		writeError(ctx, errNotFound)
		if ev := t.log.Debug(); ev != nil {
			ev.Str("request_id", requestID(ctx)).Msg("no application answers this host and path")
		}
		return
	}
	st.router(ctx)
}

// handler is one endpoint's logic: it reads the request and either writes
// its answer or returns an error for serve to write.
type handler func(ctx *fasthttp.RequestCtx, st *state, req *request) error

// endpoint wraps a handler with what every endpoint does: the Origin and
// Sec-Fetch-Site checks, the CORS headers, the error answer and the log line.
func (a *Agent) endpoint(st *state, name string, originAlways bool, h handler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		start := a.now()
		origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
		trusted := st.origins.Trusted(origin)
		st.cors.Response(&ctx.Response.Header, origin, trusted)
		req := &request{raw: browser.RawCookies(ctx.Request.Header.PeekAll(fasthttp.HeaderCookie))}
		st.jar.names.Scan(&req.found, &req.raw)
		var err error
		switch {
		case browser.CrossSite(ctx.Request.Header.Peek("Sec-Fetch-Site")):
			err = errUnauthorizedRequest.with(errCrossSite, "")
		case (originAlways || st.cfg.CORSEnabled) && !trusted:
			err = errUnauthorizedRequest.with(errUntrustedOrigin, "")
		default:
			err = h(ctx, st, req)
		}
		if err != nil {
			e := asError(err)
			if e.clear {
				st.jar.clearAll(ctx, &req.raw)
			}
			writeError(ctx, e)
			a.logDenial(ctx, st, name, e, start)
		}
		if req.foreign != "" {
			a.warnKeyMismatch(ctx, st, req.foreign, start)
		}
		st.metrics.requests(name, ctx.Response.StatusCode()).Inc()
		if ev := st.log.Debug(); ev != nil {
			ev.Str("endpoint", name).Int("status", ctx.Response.StatusCode()).Dur("duration", a.now().Sub(start)).Msg("request")
		}
	}
}

// routes builds the router of one configuration.
func (a *Agent) routes(st *state) fasthttp.RequestHandler {
	r := router.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleOPTIONS = true
	r.GlobalOPTIONS = func(ctx *fasthttp.RequestCtx) {
		origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
		st.cors.Preflight(&ctx.Response.Header, origin, st.cfg.CORSEnabled && st.origins.Trusted(origin), ctx.Request.Header.Peek(fasthttp.HeaderAccessControlRequestHeaders))
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	}
	answer := func(e *apiError) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) {
			origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
			st.cors.Response(&ctx.Response.Header, origin, st.origins.Trusted(origin))
			writeError(ctx, e)
		}
	}
	r.NotFound = answer(errNotFound)
	r.MethodNotAllowed = answer(errMethodNotAllowed)
	base := st.cfg.BasePath
	r.POST(base+"/login/start", a.endpoint(st, "login_start", true, a.loginStart))
	r.POST(base+"/login/end", a.endpoint(st, "login_end", true, a.loginEnd))
	r.GET(base+"/userInfo", a.endpoint(st, "userinfo", false, a.userInfo))
	r.GET(base+"/claims", a.endpoint(st, "claims", false, a.claims))
	r.POST(base+"/refresh", a.endpoint(st, "refresh", true, a.refreshTokens))
	r.POST(base+"/logout", a.endpoint(st, "logout", true, a.logout))
	if a.rev.store != nil {
		// Server to server (OpenID Connect Back-Channel Logout 1.0 §2.5):
		// no Origin, CSRF or cookie, so not an endpoint of the SPA's.
		r.POST(base+"/backchannel-logout", a.backchannelLogout(st))
	}
	return r.Handler
}

// providerOf returns the AS, or a 502 while it is unknown.
func providerOf(st *state) (*provider, error) {
	if p := st.as.provider.Load(); p != nil {
		return p, nil
	}
	return nil, errorf(errASUnavailable, "the Authorization Server's metadata is not loaded yet")
}

// sessionFor opens the session of a request to an endpoint that acts on
// one (userInfo, claims, refresh, logout), as session does, and requires
// the CSRF header to match the session's CSRF cookie on every method but
// GET, HEAD and OPTIONS (browser.NeedsCSRF, the rule the proxy applies
// too): which endpoint takes which method is the router's business, the
// CSRF rule is not.
//
// login/start and login/end are the exceptions: they run before a session
// has a CSRF token (login/end is where the SPA gets it), so they rest on
// the Origin check, which they make on every request, and on the login's
// state.
func (a *Agent) sessionFor(ctx *fasthttp.RequestCtx, st *state, req *request, need ...*browser.Cookie) (*userSession, error) {
	csrf := browser.NeedsCSRF(ctx.Method())
	if csrf {
		need = append(need, &st.jar.names.CSRF)
	}
	s, err := a.session(st, req, need...)
	if err != nil {
		return nil, err
	}
	if csrf {
		if err := checkCSRF(ctx, st, s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// sessionAndProvider is sessionFor for the endpoints that then call the AS
// (userInfo, refresh, logout): it also returns the provider, whose metadata
// must be loaded by then.
func (a *Agent) sessionAndProvider(ctx *fasthttp.RequestCtx, st *state, req *request, need *browser.Cookie) (*userSession, *provider, error) {
	s, err := a.sessionFor(ctx, st, req, need)
	if err != nil {
		return nil, nil, err
	}
	p, err := providerOf(st)
	if err != nil {
		return nil, nil, err
	}
	return s, p, nil
}

// checkCSRF compares the CSRF header with the session's CSRF cookie in
// constant time.
func checkCSRF(ctx *fasthttp.RequestCtx, st *state, s *userSession) error {
	var token []byte
	if s.csrf != nil {
		token = s.csrf.value
	}
	if !browser.CSRFMatches(ctx.Request.Header.Peek(st.jar.names.CSRFHeader), token) {
		return errUnauthorizedRequest.with(errCSRFHeader, "")
	}
	return nil
}

var errNoCookie = errors.New("cookie missing or not decryptable")
