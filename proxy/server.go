package proxy

import (
	"context"
	"errors"
	"fmt"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/internal/daemon"
)

// Server runs a Proxy on its listener, and metrics and health endpoints on
// the metrics listener. Build it with NewServer, run Serve, stop it with
// BeginShutdown (optional: timeouts.shutdown_delay) and Shutdown. A Server
// is safe for concurrent use and must not be copied.
type Server struct {
	*daemon.Server // the listeners: Addr, MetricsAddr, BeginShutdown
	Proxy          *Proxy

	cfg *Config // the configuration the listeners were opened with
	log zerolog.Logger
}

// NewServer validates nothing more than New does, opens the listeners and
// returns a Server ready to Serve.
func NewServer(cfg *Config, log zerolog.Logger) (*Server, error) {
	reg := metrics.NewSet()
	p, err := New(cfg, reg, log)
	if err != nil {
		return nil, err
	}
	s := &Server{Proxy: p, cfg: cfg, log: log}
	s.Server, err = daemon.NewServer(daemon.ServerConfig{
		Listen:        cfg.Listen,
		MetricsListen: cfg.MetricsListen,
		ReusePort:     cfg.Worker != "",
		HTTP:          httpConfig(cfg, p.Handler),
		Registry:      reg,
		ReadyGauge:    "oauth_proxy_ready",
		Apps:          p.appsReady,
		ParkAfter:     cfg.Timeouts.Park,
		ParkedGauge:   "oauth_proxy_parked_connections",
		Log:           log,
	})
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("proxy: %w", err)
	}
	return s, nil
}

// httpConfig is what the proxy's listener serves h with.
func httpConfig(cfg *Config, h fasthttp.RequestHandler) daemon.HTTP {
	return daemon.HTTP{
		Handler: h, ParseError: parseError,
		Read: cfg.Timeouts.Read, Write: cfg.Timeouts.Write, Idle: cfg.Timeouts.Idle,
		ReadBufferSize:    cfg.Limits.MaxRequestHeaderBytes,
		StreamRequestBody: true,
		// With StreamRequestBody this is the size above which a body is
		// streamed instead of buffered; forward enforces the real limit.
		MaxRequestBodySize: min(cfg.Limits.MaxBodyBytes, 64<<10),
	}
}

// Serve serves until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve() error {
	e := s.log.Info().Str("listen", s.cfg.Listen).Str("metrics_listen", s.cfg.MetricsListen)
	if len(s.cfg.Apps) > 0 {
		e = e.Strs("apps", appNames(s.cfg)) // each one's settings vary
	} else {
		e = e.Int("routes", len(s.cfg.Routes)).Bool("auth_endpoint", s.cfg.AuthEndpoint).Stringer("cookie_format", s.cfg.CookieFormat)
	}
	e.Msg("oauth-proxy serving")
	warnNotFollowing(s.cfg.Revocation, s.log)
	return s.Server.Serve()
}

// Reload applies a new configuration to requests that start after it
// returns. Listen addresses, timeouts and limits belong to the open
// listeners: a change to them is logged and waits for a restart.
func (s *Server) Reload(cfg *Config) error {
	followed := s.Proxy.rev.following()
	if err := s.Proxy.Reload(cfg, s.log); err != nil {
		s.Proxy.metrics.reloads.failed.Inc()
		return err
	}
	if cfg.Listen != s.cfg.Listen || cfg.MetricsListen != s.cfg.MetricsListen || cfg.Timeouts != s.cfg.Timeouts || cfg.Limits != s.cfg.Limits {
		s.log.Warn().Msg("listen, metrics_listen, timeouts and limits changed: they take effect at the next restart")
	}
	if followed && !s.Proxy.rev.following() {
		warnNotFollowing(cfg.Revocation, s.log)
	}
	s.Server.AppsChanged()
	s.Proxy.metrics.reloads.ok.Inc()
	if len(cfg.Apps) > 0 {
		s.log.Info().Strs("apps", appNames(cfg)).Msg("configuration reloaded")
	} else {
		s.log.Info().Int("keys", cfg.Keys.Len()).Int("routes", len(cfg.Routes)).Msg("configuration reloaded")
	}
	return nil
}

// appNames returns the names of cfg's applications.
func appNames(cfg *Config) []string {
	names := make([]string, len(cfg.Apps))
	for i, a := range cfg.Apps {
		names[i] = a.Name
	}
	return names
}

// ReloadFile loads the configuration at path and applies it as Reload does.
// A file that does not load is counted as a failed reload and changes
// nothing.
func (s *Server) ReloadFile(path string, getenv func(string) string) error {
	cfg, err := LoadConfig(path, getenv)
	if err != nil {
		s.Proxy.metrics.reloads.failed.Inc()
		return err
	}
	return s.Reload(cfg)
}

// Shutdown stops accepting connections, lets requests in flight finish until
// ctx ends, then closes everything: the listeners, and what the Proxy owns
// (Proxy.Close).
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.Server.Shutdown(ctx)
	s.Proxy.Close()
	return err
}

// parseError answers requests fasthttp could not read, in the same JSON as
// every other error.
func parseError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		writeError(ctx, browser.AnswerHeadersTooLarge)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, browser.AnswerRequestTooLarge)
	default:
		writeError(ctx, browser.AnswerBadRequest)
	}
}
