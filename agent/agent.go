// Package agent is the OAuth Agent: the backend-for-frontend API the SPA calls
// to log in, refresh, read user info and claims, and log out (SPEC §5). It
// runs the OpenID Connect code flow with PKCE on the back channel and keeps
// every token in encrypted HttpOnly cookies.
package agent

import (
	"sync/atomic"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/metrics"
)

// Agent is the OAuth Agent's request handler. Build it with New; swap its
// configuration with Reload; stop its background work with Close. An Agent
// is safe for concurrent use and must not be copied.
type Agent struct {
	ready atomic.Bool
}

// New builds an Agent from a validated configuration. It does not wait for
// the Authorization Server: discovery runs in the background, retried with
// backoff, and Ready reports when it has succeeded.
func New(cfg *Config, reg *metrics.Registry, log zerolog.Logger) (*Agent, error) {
	return &Agent{}, nil
}

// Handler serves one request. It is a fasthttp.RequestHandler.
func (a *Agent) Handler(ctx *fasthttp.RequestCtx) {
	ctx.SetStatusCode(fasthttp.StatusNotImplemented)
}

// Ready reports whether the Authorization Server's metadata has been fetched.
func (a *Agent) Ready() bool { return a.ready.Load() }

// Reload swaps in a new configuration for requests that start after it
// returns. On error nothing changes.
func (a *Agent) Reload(cfg *Config, log zerolog.Logger) error { return nil }

// Close stops background work (discovery retries, cache expiry).
func (a *Agent) Close() {}
