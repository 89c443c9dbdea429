// Command oauth-proxy runs the OAuth Proxy: the token handler's hot path,
// beside NGINX, in upstream mode or NGINX auth_request mode.
//
//	oauth-proxy -config /etc/tokenhandler/oauth-proxy.yaml
//	oauth-proxy -config FILE -check-config
//	oauth-proxy -version
//
// SIGHUP reloads the configuration file (keys included); a bad file is
// refused and logged and the running configuration stays. SIGTERM or SIGINT
// turn /readyz to 503, keep serving for timeouts.shutdown_delay (default 0),
// then stop accepting connections, let requests in flight finish for up to
// timeouts.shutdown, and exit 0. With workers above 1 the process is the
// supervisor of that many workers (internal/workers), to which it forwards
// both signals.
package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/internal/daemon"
	"github.com/tokenhandler/tokenhandler/internal/workers"
	"github.com/tokenhandler/tokenhandler/proxy"
)

func main() {
	os.Exit(daemon.Main("oauth-proxy", os.Args[1:], os.Getenv, os.Stdout, os.Stderr, load))
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// load reads the configuration file for daemon.Main.
func load(path string, getenv func(string) string) (*daemon.Config, error) {
	cfg, err := proxy.LoadConfig(path, getenv)
	if err != nil {
		return nil, err
	}
	dc := &daemon.Config{
		Summary:  summary(cfg),
		Warnings: cfg.Warnings,
		Log:      cfg.Log,
		Timeouts: cfg.Timeouts.ServerTimeouts,
		Worker:   cfg.Worker,
		Start: func(log zerolog.Logger) (daemon.Service, error) {
			return proxy.NewServer(cfg, log)
		},
	}
	if cfg.Worker != "" {
		// Worker mode needs the supervisor's pipe too: a stray
		// environment variable alone is refused.
		var st syscall.Stat_t
		if err := syscall.Fstat(workers.ReadyFD, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
			return nil, fmt.Errorf("oauth-proxy: %s is set but file descriptor %d is not a supervisor's pipe: that variable is for the workers of a set only; unset it", workers.EnvWorker, workers.ReadyFD)
		}
		// Each byte is a load done: at start, its signal handlers
		// installed, and after each reload the supervisor asked for, so
		// that it does not write the next text while the worker reads it.
		ready := os.NewFile(workers.ReadyFD, "ready")
		dc.Loaded = func() { ready.Write([]byte{1}) }
	}
	if cfg.Workers > 1 && cfg.Worker == "" {
		dc.Summary += fmt.Sprintf(", workers: %d", cfg.Workers)
		dc.Supervise = func(log zerolog.Logger, hups, signals <-chan os.Signal) int {
			set := workerSet(cfg)
			set.Path, set.Reload = path, func(data []byte) (workers.Config, error) {
				next, err := proxy.ParseConfig(data, getenv)
				if err != nil {
					return workers.Config{}, err
				}
				return workerSet(next), nil
			}
			return workers.Supervise(set, log, hups, signals)
		}
	}
	return dc, nil
}

// workerSet is what the supervisor needs of cfg.
func workerSet(cfg *proxy.Config) workers.Config {
	set := workers.Config{Workers: cfg.Workers, Listen: cfg.Listen, MetricsListen: cfg.MetricsListen,
		ShutdownDelay: cfg.Timeouts.ShutdownDelay, ShutdownTimeout: cfg.Timeouts.Shutdown}
	for _, a := range cfg.Apps {
		set.Apps = append(set.Apps, a.Name)
	}
	return set
}

// summary is what -check-config says of the configuration: for each
// application its keys, routes, cookie format and auth endpoint.
func summary(cfg *proxy.Config) string {
	app := func(c *proxy.Config) string {
		return fmt.Sprintf("keys: %d, routes: %d, cookie format: %s, auth endpoint: %s", c.Keys.Len(), len(c.Routes), c.CookieFormat, onOff(c.AuthEndpoint))
	}
	if len(cfg.Apps) == 0 {
		return app(cfg)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apps: %d", len(cfg.Apps))
	for _, a := range cfg.Apps {
		fmt.Fprintf(&b, "; %s: hosts %s, %s", a.Name, strings.Join(a.Hosts, " "), app(a))
	}
	return b.String()
}
