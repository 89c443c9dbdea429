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
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/fasthttp/router"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/browser"
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
type Agent struct {
	state   atomic.Pointer[state]
	metrics *agentMetrics
	denials denialLog
	refresh *refresher
	// rev is the revocation list, logouts the back-channel endpoint's
	// limits; both outlive reloads.
	rev     *revocations
	logouts logoutGuards

	now func() time.Time // Config.Now or time.Now

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// state is everything a request reads, swapped as one on reload.
type state struct {
	cfg *Config
	jar *jar
	// maxLifetime is Config.Session.MaxLifetime in seconds, its default
	// applied.
	maxLifetime int64
	origins     browser.Origins
	cors        *browser.CORS
	router      fasthttp.RequestHandler
	client      *http.Client
	log         zerolog.Logger
	// provider is nil until discovery has succeeded.
	provider atomic.Pointer[provider]
}

// New builds an Agent from a validated configuration. It does not wait for
// the Authorization Server: discovery runs in the background, retried with
// backoff, and Ready reports when it has succeeded. reg receives the
// agent's metrics; a Set a previous Agent used may be passed again: the
// counters are shared and the gauges report the new Agent.
func New(cfg *Config, reg *metrics.Set, log zerolog.Logger) (*Agent, error) {
	a := &Agent{metrics: newAgentMetrics(reg), denials: newDenialLog(), logouts: newLogoutGuards(), now: time.Now, stop: make(chan struct{})}
	if cfg.Now != nil {
		a.now = cfg.Now
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

// Reload swaps in a new configuration for requests that start after it
// returns, and discovers the Authorization Server anew. On error nothing
// changes.
func (a *Agent) Reload(cfg *Config, log zerolog.Logger) error {
	if cfg.Coordinator == nil && a.rev.coordinator != nil {
		// revocation.store redis: the same Redis coordinates refreshes.
		c := *cfg
		c.Coordinator = a.rev.coordinator
		cfg = &c
	}
	names, err := browser.NewNames(cfg.CookieNamePrefix, cfg.Cookie.NamePrefix)
	if err != nil {
		return err
	}
	codec, err := session.NewCodec(cfg.Keys, cfg.CookieFormat, cfg.CookieAccept...)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	st := &state{
		cfg:         cfg,
		jar:         newJar(cfg, names, codec),
		maxLifetime: settings.MaxLifetimeSeconds(cfg.Session.MaxLifetime),
		origins:     browser.NewOrigins(cfg.TrustedWebOrigins),
		cors:        browser.NewCORS(cfg.CORSEnabled, []string{"GET", "POST", "OPTIONS"}, nil, nil, 86400),
		client:      newHTTPClient(cfg.Timeouts.AS, a.metrics),
		log:         log.Level(cfg.Log.Level),
	}
	st.router = a.routes(st)
	// Keep serving with the old provider until the new one is known, when
	// the Authorization Server has not changed.
	if old := a.state.Load(); old != nil && sameAS(old.cfg, cfg) {
		st.provider.Store(old.provider.Load())
	}
	a.state.Store(st)
	a.wg.Go(func() { a.discoverLoop(st) })
	return nil
}

func sameAS(a, b *Config) bool {
	return a.Issuer == b.Issuer && a.Endpoints == b.Endpoints && a.ClientID == b.ClientID &&
		a.ClientSecret == b.ClientSecret && a.ClientAuthMethod == b.ClientAuthMethod && a.RedirectURI == b.RedirectURI
}

// discoverLoop fetches the AS metadata for st until it succeeds, st is
// replaced, or the agent closes; backoff from 500 ms doubling to 30 s.
func (a *Agent) discoverLoop(st *state) {
	backoff := 500 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), st.cfg.Timeouts.AS)
		p, err := discover(ctx, st.cfg, st.client, a.now)
		cancel()
		if err == nil {
			st.provider.Store(p)
			st.log.Info().Str("issuer", st.cfg.Issuer).Msg("Authorization Server metadata loaded")
			return
		}
		st.log.Warn().Err(err).Dur("retry_in", backoff).Msg("Authorization Server not reachable; retrying")
		select {
		case <-a.stop:
			return
		case <-time.After(backoff):
		}
		if a.state.Load() != st {
			return // reloaded: the new state has its own loop
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// Ready reports whether the Authorization Server's metadata has been fetched.
func (a *Agent) Ready() bool {
	st := a.state.Load()
	return st != nil && st.provider.Load() != nil
}

// Close stops background work: discovery retries, cache expiry and
// following the revocation store, which it closes when the agent opened
// it. It also closes the idle keep-alive connections to the Authorization
// Server, which would otherwise stay open, with a goroutine each, for
// their idle timeout.
func (a *Agent) Close() {
	a.stopOnce.Do(func() {
		close(a.stop)
		a.wg.Wait()
		if err := a.rev.close(); err != nil {
			a.state.Load().log.Warn().Err(err).Msg("revocation: closing the store failed")
		}
	})
	a.wg.Wait()
	if st := a.state.Load(); st != nil {
		st.client.CloseIdleConnections()
	}
}

// RevocationFeed returns the handler of the embedded revocation store's
// feed (GET /revocations, served on the ops listener for the proxies to
// follow), or nil when the store is another one or off.
func (a *Agent) RevocationFeed() fasthttp.RequestHandler { return a.rev.feed }

// Handler serves one request. It is a fasthttp.RequestHandler.
func (a *Agent) Handler(ctx *fasthttp.RequestCtx) {
	st := a.state.Load()
	h := &ctx.Response.Header
	h.Set(fasthttp.HeaderCacheControl, "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
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
		a.metrics.requests(name, ctx.Response.StatusCode()).Inc()
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
	if p := st.provider.Load(); p != nil {
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
