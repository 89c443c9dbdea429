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
		Summary:         fmt.Sprintf("keys: %d, routes: %d, cookie format: %s, auth endpoint: %s", cfg.Keys.Len(), len(cfg.Routes), cfg.CookieFormat, onOff(cfg.AuthEndpoint)),
		Warnings:        cfg.Warnings,
		LogLevel:        cfg.Log.Level,
		LogFormat:       cfg.Log.Format,
		ShutdownDelay:   cfg.Timeouts.ShutdownDelay,
		ShutdownTimeout: cfg.Timeouts.Shutdown,
		Worker:          cfg.Worker,
		Start: func(log zerolog.Logger) (daemon.Service, error) {
			return proxy.NewServer(cfg, log)
		},
	}
	if cfg.Workers > 1 && cfg.Worker == "" {
		dc.Summary += fmt.Sprintf(", workers: %d", cfg.Workers)
		dc.Supervise = func(log zerolog.Logger, signals <-chan os.Signal) int {
			set := workerSet(cfg)
			set.Path, set.Reload = path, func(path string) (workers.Config, error) {
				next, err := proxy.LoadConfig(path, getenv)
				if err != nil {
					return workers.Config{}, err
				}
				return workerSet(next), nil
			}
			return workers.Supervise(set, log, signals)
		}
	}
	return dc, nil
}

// workerSet is what the supervisor needs of cfg.
func workerSet(cfg *proxy.Config) workers.Config {
	return workers.Config{Workers: cfg.Workers, Listen: cfg.Listen, MetricsListen: cfg.MetricsListen,
		ShutdownDelay: cfg.Timeouts.ShutdownDelay, ShutdownTimeout: cfg.Timeouts.Shutdown}
}
