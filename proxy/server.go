package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/metrics"
)

// Server runs a Proxy on its listener, and metrics and health endpoints on
// the metrics listener. Build it with NewServer, run Serve, stop it with
// Shutdown. A Server is safe for concurrent use.
type Server struct {
	Proxy *Proxy

	cfg        *Config // the configuration the listeners were opened with
	log        zerolog.Logger
	reg        *metrics.Registry
	http       *fasthttp.Server
	metricsSrv *fasthttp.Server
	ln, mln    net.Listener
	ready      atomic.Bool
}

// NewServer validates nothing more than New does, opens the listeners and
// returns a Server ready to Serve.
func NewServer(cfg *Config, log zerolog.Logger) (*Server, error) {
	reg := metrics.NewRegistry()
	p, err := New(cfg, reg, log)
	if err != nil {
		return nil, err
	}
	s := &Server{Proxy: p, cfg: cfg, log: log, reg: reg}
	reg.GaugeFunc("oauth_proxy_ready", "1 when the proxy serves requests, 0 while it drains.", func() float64 {
		if s.ready.Load() {
			return 1
		}
		return 0
	})
	s.http = newHTTPServer(cfg, p.Handler, log)
	if s.ln, err = listen(cfg.Listen); err != nil {
		return nil, fmt.Errorf("proxy: listen: %w", err)
	}
	if cfg.MetricsListen != "" {
		if s.mln, err = listen(cfg.MetricsListen); err != nil {
			s.ln.Close()
			removeSocket(cfg.Listen)
			return nil, fmt.Errorf("proxy: metrics_listen: %w", err)
		}
		s.metricsSrv = &fasthttp.Server{Handler: s.opsHandler, NoDefaultServerHeader: true, Logger: fasthttpLogger{log}}
	}
	s.ready.Store(true)
	return s, nil
}

// newHTTPServer returns the fasthttp server for the proxy's listener.
func newHTTPServer(cfg *Config, h fasthttp.RequestHandler, log zerolog.Logger) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:           h,
		ErrorHandler:      parseError,
		ReadBufferSize:    cfg.Limits.MaxRequestHeaderBytes,
		WriteBufferSize:   16 << 10,
		ReadTimeout:       cfg.Timeouts.Read,
		WriteTimeout:      cfg.Timeouts.Write,
		IdleTimeout:       cfg.Timeouts.Idle,
		StreamRequestBody: true,
		// With StreamRequestBody this is the size above which a body is
		// streamed instead of buffered; forward enforces the real limit.
		MaxRequestBodySize:           min(cfg.Limits.MaxBodyBytes, 64<<10),
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		SecureErrorLogMessage:        true, // fasthttp would quote request bytes, cookies included
		Logger:                       fasthttpLogger{log},
	}
}

// Addr returns the proxy listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// MetricsAddr returns the metrics listener's address, or nil.
func (s *Server) MetricsAddr() net.Addr {
	if s.mln == nil {
		return nil
	}
	return s.mln.Addr()
}

// Serve serves until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve() error {
	if s.metricsSrv != nil {
		go func() {
			if err := s.metricsSrv.Serve(s.mln); err != nil {
				s.log.Error().Err(err).Msg("metrics listener failed")
			}
		}()
	}
	s.log.Info().Str("listen", s.cfg.Listen).Str("metrics_listen", s.cfg.MetricsListen).Int("routes", len(s.cfg.Routes)).Msg("oauth-proxy serving")
	return s.http.Serve(s.ln)
}

// Reload applies a new configuration to requests that start after it
// returns. Listen addresses, timeouts and limits belong to the open
// listeners: a change to them is logged and waits for a restart.
func (s *Server) Reload(cfg *Config) error {
	if err := s.Proxy.Reload(cfg, s.log); err != nil {
		s.Proxy.metrics.reloads.failed.Inc()
		return err
	}
	if cfg.Listen != s.cfg.Listen || cfg.MetricsListen != s.cfg.MetricsListen || cfg.Timeouts != s.cfg.Timeouts || cfg.Limits != s.cfg.Limits {
		s.log.Warn().Msg("listen, metrics_listen, timeouts and limits changed: they take effect at the next restart")
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
	s.ready.Store(false)
	err := s.http.ShutdownWithContext(ctx)
	if s.metricsSrv != nil {
		s.metricsSrv.ShutdownWithContext(ctx)
	}
	removeSocket(s.cfg.Listen)
	removeSocket(s.cfg.MetricsListen)
	return err
}

// opsHandler serves /metrics, /healthz and /readyz on the metrics listener.
func (s *Server) opsHandler(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	switch string(ctx.Path()) {
	case "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		s.reg.WritePrometheus(ctx)
	case "/healthz":
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"ok"}`)
	case "/readyz":
		ctx.SetContentType("application/json")
		if s.ready.Load() {
			ctx.SetBodyString(`{"status":"ready"}`)
		} else {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString(`{"status":"draining"}`)
		}
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
	}
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

// listen opens "host:port" as TCP or "unix:/path" as a Unix socket with mode
// 0660, removing a stale socket left by a previous run first.
func listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s is in use by another process", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	// Create the socket with mode 0660 from the start (no window in which
	// the process umask leaves it open to others). Umask is process-wide;
	// this runs at start-up, before anything else creates files.
	old := syscall.Umask(0o117)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func removeSocket(addr string) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		os.Remove(path)
	}
}

// NewLogger returns the zerolog logger the configuration asks for, writing
// to w: JSON lines, or human-readable console lines.
func NewLogger(cfg Log, w io.Writer) zerolog.Logger {
	if cfg.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w}
	}
	return zerolog.New(w).Level(cfg.Level).With().Timestamp().Logger()
}

// fasthttpLogger sends fasthttp's own messages to zerolog at warn.
type fasthttpLogger struct{ log zerolog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Warn().Str("component", "fasthttp").Msgf(format, args...)
}
