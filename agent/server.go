package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/internal/daemon"
)

// Server runs an Agent on its listener, and metrics and health endpoints on
// the metrics listener (contract §7). Build it with NewServer, run Serve,
// stop it with BeginShutdown (optional: timeouts.shutdown_delay) and
// Shutdown. A Server is safe for concurrent use and must not be copied.
type Server struct {
	*daemon.Server // the listeners: Addr, MetricsAddr, BeginShutdown
	Agent          *Agent

	cfg     *Config // the configuration the listeners were opened with
	log     zerolog.Logger
	reloads struct{ ok, failed *metrics.Counter }
}

// NewServer builds the Agent (which starts discovering the Authorization
// Server in the background), opens the listeners and returns a Server ready
// to Serve. It does not wait for the Authorization Server: /readyz answers
// 503 until the agent has its metadata.
func NewServer(cfg *Config, log zerolog.Logger) (*Server, error) {
	reg := metrics.NewSet()
	a, err := New(cfg, reg, log)
	if err != nil {
		return nil, err
	}
	s := &Server{Agent: a, cfg: cfg, log: log}
	s.reloads.ok = reg.GetOrCreateCounter(`oauth_agent_config_reloads_total{result="ok"}`)
	s.reloads.failed = reg.GetOrCreateCounter(`oauth_agent_config_reloads_total{result="error"}`)
	s.Server, err = daemon.NewServer(daemon.ServerConfig{
		Listen:        cfg.Listen,
		MetricsListen: cfg.MetricsListen,
		HTTP:          httpConfig(cfg, a.Handler),
		Registry:      reg,
		ReadyGauge:    "oauth_agent_ready",
		Ready:         a.Ready,
		Apps:          a.AppsReady,
		OpsRoutes:     opsRoutes(a),
		Log:           log,
	})
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("agent: %w", err)
	}
	return s, nil
}

// opsRoutes are the agent's paths on the metrics listener besides
// /metrics, /healthz and /readyz: the embedded revocation store's feed,
// which proxies follow (revocation.feed).
func opsRoutes(a *Agent) map[string]fasthttp.RequestHandler {
	if feed := a.RevocationFeed(); feed != nil {
		return map[string]fasthttp.RequestHandler{"/revocations": feed}
	}
	return nil
}

// httpConfig is what the agent's listener serves h with.
func httpConfig(cfg *Config, h fasthttp.RequestHandler) daemon.HTTP {
	return daemon.HTTP{
		Handler: h, ParseError: parseError,
		Read: cfg.Timeouts.Read, Write: cfg.Timeouts.Write, Idle: cfg.Timeouts.Idle,
		// The request headers must fit: four cookies of up to 4 KiB each
		// (contract §4).
		ReadBufferSize: 16 << 10,
		// The agent's request bodies are small JSON documents (contract §5).
		MaxRequestBodySize: 64 << 10,
	}
}

// Serve serves until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve() error {
	ev := s.log.Info().Str("listen", s.cfg.Listen).Str("metrics_listen", s.cfg.MetricsListen)
	if len(s.cfg.Apps) > 0 {
		ev = ev.Strs("apps", appNames(s.cfg))
	} else {
		ev = ev.Str("base_path", s.cfg.BasePath).Str("issuer", s.cfg.Issuer)
	}
	ev.Msg("oauth-agent serving")
	return s.Server.Serve()
}

// Reload applies a new configuration to requests that start after it
// returns. Listen addresses, listener timeouts and the log format belong to
// what is already open: a change to them is logged and waits for a restart.
// On error nothing changes.
func (s *Server) Reload(cfg *Config) error {
	if err := s.Agent.Reload(cfg, s.log); err != nil {
		s.reloads.failed.Inc()
		return err
	}
	old := s.cfg
	if cfg.Listen != old.Listen || cfg.MetricsListen != old.MetricsListen || cfg.Log.Format != old.Log.Format ||
		cfg.Timeouts.ServerTimeouts != old.Timeouts.ServerTimeouts {
		s.log.Warn().Msg("listen, metrics_listen, timeouts (but as) and log.format changed: they take effect at the next restart")
	}
	if cfg.Revocation != old.Revocation {
		s.log.Warn().Msg("revocation changed: it takes effect at the next restart")
	}
	s.Server.AppsChanged()
	s.reloads.ok.Inc()
	if len(cfg.Apps) > 0 {
		s.log.Info().Strs("apps", appNames(cfg)).Msg("configuration reloaded")
	} else {
		s.log.Info().Int("keys", cfg.Keys.Len()).Str("issuer", cfg.Issuer).Msg("configuration reloaded")
	}
	return nil
}

// appNames are the names of cfg's applications, in the file's order.
func appNames(cfg *Config) []string {
	var names []string
	for _, app := range cfg.Apps {
		names = append(names, app.Name)
	}
	return names
}

// ReloadFile loads the configuration at path and applies it as Reload does.
// A file that does not load is counted as a failed reload and changes
// nothing.
func (s *Server) ReloadFile(path string, getenv func(string) string) error {
	cfg, err := LoadConfig(path, getenv)
	if err != nil {
		s.reloads.failed.Inc()
		return err
	}
	return s.Reload(cfg)
}

// Shutdown stops accepting connections (/readyz answers 503 from now on),
// lets requests in flight finish until ctx ends, then closes everything and
// stops the agent's background work.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.Server.Shutdown(ctx)
	s.Agent.Close()
	return err
}

// Answers to requests fasthttp could not read, in the JSON of contract §5.
var (
	parseErrorHeaderTooBig = []byte(`{"code":"invalid_request","message":"The request headers are too large"}`)
	parseErrorBodyTooBig   = []byte(`{"code":"invalid_request","message":"The request body is too large"}`)
	parseErrorBadRequest   = []byte(`{"code":"invalid_request","message":"The request is invalid"}`)
)

// parseError answers requests fasthttp could not read.
func parseError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		ctx.SetStatusCode(fasthttp.StatusRequestHeaderFieldsTooLarge)
		ctx.SetBody(parseErrorHeaderTooBig)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ctx.SetStatusCode(fasthttp.StatusRequestEntityTooLarge)
		ctx.SetBody(parseErrorBodyTooBig)
	default:
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetBody(parseErrorBadRequest)
	}
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
}
