package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/internal/daemon"
)

// Server runs a Proxy on its listener, and metrics and health endpoints on
// the metrics listener. Build it with NewServer, run Serve, stop it with
// Shutdown. A Server is safe for concurrent use.
type Server struct {
	Proxy *Proxy

	cfg *Config // the configuration the listeners were opened with
	log zerolog.Logger
	srv *daemon.Server
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
	s.srv, err = daemon.NewServer(daemon.ServerConfig{
		Listen:        cfg.Listen,
		MetricsListen: cfg.MetricsListen,
		HTTP:          newHTTPServer(cfg, p.Handler, log),
		Registry:      reg,
		ReadyGauge:    "oauth_proxy_ready",
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

// newHTTPServer returns the fasthttp server for the proxy's listener.
func newHTTPServer(cfg *Config, h fasthttp.RequestHandler, log zerolog.Logger) *fasthttp.Server {
	srv := daemon.NewHTTPServer(h, parseError, cfg.Timeouts.Read, cfg.Timeouts.Write, cfg.Timeouts.Idle, log)
	srv.ReadBufferSize = cfg.Limits.MaxRequestHeaderBytes
	srv.StreamRequestBody = true
	// With StreamRequestBody this is the size above which a body is
	// streamed instead of buffered; forward enforces the real limit.
	srv.MaxRequestBodySize = min(cfg.Limits.MaxBodyBytes, 64<<10)
	return srv
}

// Addr returns the proxy listener's address.
func (s *Server) Addr() net.Addr { return s.srv.Addr() }

// MetricsAddr returns the metrics listener's address, or nil.
func (s *Server) MetricsAddr() net.Addr { return s.srv.MetricsAddr() }

// Serve serves until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve() error {
	s.log.Info().Str("listen", s.cfg.Listen).Str("metrics_listen", s.cfg.MetricsListen).Int("routes", len(s.cfg.Routes)).
		Bool("auth_endpoint", s.cfg.AuthEndpoint).Stringer("cookie_format", s.cfg.CookieFormat).Msg("oauth-proxy serving")
	warnNotFollowing(s.cfg.Revocation, s.log)
	return s.srv.Serve()
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
	s.Proxy.metrics.reloads.ok.Inc()
	s.log.Info().Int("keys", cfg.Keys.Len()).Int("routes", len(cfg.Routes)).Msg("configuration reloaded")
	return nil
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
// ctx ends, then closes everything.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	s.Proxy.Close()
	// The keep-alive connections to the APIs would otherwise stay open
	// until timeouts.idle.
	for _, r := range s.Proxy.state.Load().routes {
		for _, h := range r.hosts {
			h.CloseIdleConnections()
		}
	}
	return err
}

// parseError answers requests fasthttp could not read, in the same JSON as
// every other error.
func parseError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		writeError(ctx, errHeaderTooBig)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, errTooLarge)
	default:
		writeError(ctx, errBadRequest)
	}
}

// NewLogger returns the zerolog logger the configuration asks for, writing
// to w: JSON lines, or human-readable console lines.
func NewLogger(cfg Log, w io.Writer) zerolog.Logger {
	return daemon.NewLogger(cfg.Level, cfg.Format, w)
}
