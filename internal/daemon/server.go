package daemon

import (
	"context"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/internal/park"
)

// HTTP is what a daemon's main listener needs of its fasthttp server; the
// rest both daemons share and [NewServer] sets. It may be copied.
type HTTP struct {
	// Handler answers requests, ParseError those fasthttp could not read.
	Handler    fasthttp.RequestHandler
	ParseError func(*fasthttp.RequestCtx, error)
	// Read, Write and Idle are the connection timeouts.
	Read, Write, Idle time.Duration
	// ReadBufferSize bounds the request line and headers (fasthttp's
	// default, 4 KiB, when 0). MaxRequestBodySize bounds a buffered body,
	// or, with StreamRequestBody, is the size above which the body is
	// streamed to the handler instead.
	ReadBufferSize, MaxRequestBodySize int
	StreamRequestBody                  bool
}

// Server returns the fasthttp server for h with the settings both daemons
// share; fasthttp's own messages go to log. NewServer builds its server
// with it; tests that serve a handler on an in-memory listener call it.
func (h HTTP) Server(log zerolog.Logger) *fasthttp.Server {
	s := &fasthttp.Server{
		Handler:                      h.Handler,
		ErrorHandler:                 h.ParseError,
		ReadBufferSize:               h.ReadBufferSize,
		WriteBufferSize:              16 << 10,
		ReadTimeout:                  h.Read,
		WriteTimeout:                 h.Write,
		IdleTimeout:                  h.Idle,
		MaxRequestBodySize:           h.MaxRequestBodySize,
		StreamRequestBody:            h.StreamRequestBody,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true, // Shutdown must not wait for idle keep-alive connections
		SecureErrorLogMessage:        true, // fasthttp would quote request bytes, cookies included
		Logger:                       FasthttpLogger{Log: log},
	}
	if reduceIdleMemory { // the measurement build only (idlecompare.go)
		s.ReduceMemoryUsage, s.WriteBufferSize = true, 4<<10
	}
	return s
}

// ServerConfig is what [NewServer] needs. It may be copied.
type ServerConfig struct {
	// Listen and MetricsListen are the addresses, as [Listen] takes them;
	// MetricsListen "" means no metrics listener.
	Listen, MetricsListen string
	// ReusePort binds a TCP Listen with SO_REUSEPORT, so that the workers
	// of a set (internal/workers) share its port and the kernel spreads
	// new connections across them.
	ReusePort bool
	// HTTP is what serves Listen.
	HTTP HTTP
	// Registry is served on /metrics. NewServer registers on it the gauge
	// ReadyGauge: 1 when /readyz answers 200, else 0.
	Registry   *metrics.Set
	ReadyGauge string
	// Ready reports whether the service is ready, besides the server not
	// draining; nil means it always is. It is called from any goroutine.
	Ready func() bool
	// Apps, when not nil, lists the applications of a configuration with
	// apps (issue #15) and whether each is ready, ordered by name; nil,
	// or an empty list, for a file without apps. /readyz then reports
	// each and answers /readyz?app=NAME, and each application has the
	// gauge ReadyGauge{app="NAME"}: 1 when it is ready and the server is
	// not draining ([Server.AppsChanged] follows a reload). Ready should
	// say whether one application is. It is called from any goroutine.
	Apps func() []AppStatus
	// ParkAfter > 0 parks keep-alive connections idle between requests
	// for that long (up to 1.5 times as long): their goroutine, request
	// context and buffers are released until the client's next request
	// (package park; elsewhere than on Linux, a warning is logged and
	// nothing parks). Idle worker goroutines then end after ParkAfter (at
	// least 1 s) instead of fasthttp's 10 s. ParkedGauge, unless "", counts
	// the parked connections: 0 while parking is off.
	ParkAfter   time.Duration
	ParkedGauge string
	// OpsRoutes are extra paths served on the metrics listener beside
	// [OpsHandler]'s, by exact path, as "/revocations" (the agent's
	// revocation feed). They are not served without a metrics listener. A
	// path that is not absolute or that is one of OpsHandler's is a
	// programmer error: NewServer panics.
	OpsRoutes map[string]fasthttp.RequestHandler
	Log       zerolog.Logger
}

// Server serves a daemon's handler on its listener, and the operations
// endpoints ([OpsHandler]) on its metrics listener. Build it with
// [NewServer], run Serve, stop it with BeginShutdown (optional) and
// Shutdown. A Server is safe for concurrent use and must not be copied.
type Server struct {
	cfg     ServerConfig
	http    *fasthttp.Server
	ops     *fasthttp.Server // nil without a metrics listener
	ln, mln net.Listener
	serving atomic.Bool // false once BeginShutdown or Shutdown has begun

	gaugesMu  sync.Mutex
	appGauges map[string]bool // the names of the per-application gauges registered
}

// NewServer registers the readiness gauge, opens the listeners and returns
// a Server ready to Serve. Its errors start with the setting whose address
// failed, "listen: " or "metrics_listen: ", for the caller to prefix with
// its package's name; nothing stays open after an error.
func NewServer(cfg ServerConfig) (*Server, error) {
	for path := range cfg.OpsRoutes {
		switch {
		case !strings.HasPrefix(path, "/"):
			panic(fmt.Sprintf("daemon: internal error: OpsRoutes path %q must start with /", path))
		case path == "/metrics" || path == "/healthz" || path == "/readyz":
			panic(fmt.Sprintf("daemon: internal error: OpsRoutes would replace %s", path))
		}
	}
	s := &Server{cfg: cfg}
	s.http = cfg.HTTP.Server(cfg.Log)
	s.http.Handler = s.closeWhenDraining(cfg.HTTP.Handler)
	Gauge(cfg.Registry, cfg.ReadyGauge, func() float64 {
		if s.Ready() {
			return 1
		}
		return 0
	})
	s.AppsChanged()
	listen := Listen
	if cfg.ReusePort {
		listen = listenReusePort
	}
	var err error
	if s.ln, err = listen(cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	var parked *park.Listener // nil while nothing parks
	if cfg.ParkAfter > 0 {
		if pl, err := park.Wrap(s.ln, s.http, cfg.ParkAfter); err != nil {
			cfg.Log.Warn().Err(err).Msg("idle connections are not parked")
		} else {
			s.ln, parked = pl, pl
		}
	}
	if cfg.ParkedGauge != "" { // a documented series: there, 0, while parking is off
		Gauge(cfg.Registry, cfg.ParkedGauge, func() float64 {
			if parked == nil {
				return 0
			}
			return float64(parked.Parked())
		})
	}
	if cfg.MetricsListen != "" {
		if s.mln, err = Listen(cfg.MetricsListen); err != nil {
			s.ln.Close()
			RemoveSocket(cfg.Listen)
			return nil, fmt.Errorf("metrics_listen: %w", err)
		}
		// The ops listener serves scrapes and the revocation feed's long
		// polls: a request must arrive whole within opsReadTimeout, an
		// answer leave within opsWriteTimeout once written, and at most
		// opsConcurrency connections are served at once, so that a slow
		// or flooding client cannot hold it (an attacker's review of
		// issue #13). A long poll waits inside the handler, before it
		// writes, so the write timeout does not cut it.
		var apps func() []AppStatus
		if cfg.Apps != nil {
			apps = s.appsReady
		}
		s.ops = OpsServer(opsRoutes(OpsHandler(cfg.Registry, s.Ready, apps), cfg.OpsRoutes), cfg.Log)
	}
	s.serving.Store(true)
	return s, nil
}

// closeWhenDraining wraps h: once the server drains, every answer carries
// Connection: close, so that a client or balancer keeping connections
// alive (NGINX's upstream keepalive) stops reusing this one after its
// answer instead of sending a request on it just as the drain closes it.
func (s *Server) closeWhenDraining(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		h(ctx)
		if !s.serving.Load() {
			ctx.SetConnectionClose()
		}
	}
}

// opsRoutes serves routes by exact path, and everything else with ops.
func opsRoutes(ops fasthttp.RequestHandler, routes map[string]fasthttp.RequestHandler) fasthttp.RequestHandler {
	if len(routes) == 0 {
		return ops
	}
	routes = maps.Clone(routes) // the caller's map may change after NewServer
	return func(ctx *fasthttp.RequestCtx) {
		if h, ok := routes[string(ctx.Path())]; ok {
			h(ctx)
			return
		}
		ops(ctx)
	}
}

// OpsServer is the server of a metrics listener, serving h with the limits
// below: NewServer's, and the worker set's supervisor's (internal/workers).
func OpsServer(h fasthttp.RequestHandler, log zerolog.Logger) *fasthttp.Server {
	return &fasthttp.Server{Handler: h, NoDefaultServerHeader: true, Logger: FasthttpLogger{Log: log}, ReadTimeout: opsReadTimeout,
		WriteTimeout: opsWriteTimeout, IdleTimeout: opsIdleTimeout, Concurrency: opsConcurrency}
}

// The ops listener's limits (see NewServer).
const (
	opsReadTimeout  = 10 * time.Second
	opsWriteTimeout = 10 * time.Second
	opsIdleTimeout  = 90 * time.Second
	opsConcurrency  = 1024
)

// Ready reports what /readyz says: the server is not draining, and the
// service is ready.
func (s *Server) Ready() bool {
	return s.serving.Load() && (s.cfg.Ready == nil || s.cfg.Ready())
}

// appsReady is ServerConfig.Apps, each application not ready while the
// server drains.
func (s *Server) appsReady() []AppStatus {
	list := s.cfg.Apps()
	if !s.serving.Load() {
		for i := range list {
			list[i].Ready = false
		}
	}
	return list
}

// appReady reports whether the application name is ready, as /readyz?app
// says.
func (s *Server) appReady(name string) bool {
	for _, app := range s.appsReady() {
		if app.Name == name {
			return app.Ready
		}
	}
	return false
}

// AppsChanged registers the gauge ReadyGauge{app="NAME"} of each
// application ServerConfig.Apps lists now, and removes those of the
// applications it no longer lists. Call it after a reload that may have
// added or removed applications; NewServer calls it once. It does nothing
// without ServerConfig.Apps.
func (s *Server) AppsChanged() {
	if s.cfg.Apps == nil {
		return
	}
	s.gaugesMu.Lock()
	defer s.gaugesMu.Unlock()
	now := map[string]bool{}
	for _, app := range s.cfg.Apps() {
		now[app.Name] = true
		if s.appGauges[app.Name] {
			continue
		}
		name := app.Name
		Gauge(s.cfg.Registry, s.cfg.ReadyGauge+`{app="`+name+`"}`, func() float64 {
			if s.appReady(name) {
				return 1
			}
			return 0
		})
	}
	for name := range s.appGauges {
		if !now[name] {
			s.cfg.Registry.UnregisterMetric(s.cfg.ReadyGauge + `{app="` + name + `"}`)
		}
	}
	s.appGauges = now
}

// Addr returns the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// MetricsAddr returns the metrics listener's address, or nil.
func (s *Server) MetricsAddr() net.Addr {
	if s.mln == nil {
		return nil
	}
	return s.mln.Addr()
}

// Serve serves the metrics listener in the background, and the listener
// until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve() error {
	if s.ops != nil {
		go func() {
			if err := s.ops.Serve(s.mln); err != nil {
				s.cfg.Log.Error().Err(err).Msg("metrics listener failed")
			}
		}()
	}
	return s.http.Serve(s.ln)
}

// BeginShutdown makes /readyz answer 503, and every answer carry
// Connection: close, while the listener keeps serving: the first step of a
// shutdown with a delay (timeouts.shutdown_delay), in which balancers that
// watch /readyz move away before Shutdown stops accepting connections.
func (s *Server) BeginShutdown() { s.serving.Store(false) }

// Shutdown stops accepting connections (/readyz answers 503 from now on),
// lets requests in flight finish until ctx ends, then closes both listeners
// and removes their Unix sockets. It returns the main listener's drain
// error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.serving.Store(false)
	err := s.http.ShutdownWithContext(ctx)
	s.ln.Close() // fasthttp closes it only if Serve ran; a parking listener's goroutines end with it
	if s.ops != nil {
		s.ops.ShutdownWithContext(ctx)
	}
	RemoveSocket(s.cfg.Listen)
	RemoveSocket(s.cfg.MetricsListen)
	return err
}
