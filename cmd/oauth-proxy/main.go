// Command oauth-proxy runs the OAuth Proxy: the token handler's hot path,
// beside NGINX, in upstream mode or NGINX auth_request mode.
//
//	oauth-proxy -config /etc/tokenhandler/oauth-proxy.yaml
//	oauth-proxy -config FILE -check-config
//	oauth-proxy -version
//
// SIGHUP reloads the configuration file (keys included); a bad file is
// refused and logged and the running configuration stays. SIGTERM or SIGINT
// stop accepting connections, let requests in flight finish for up to
// timeouts.shutdown, and exit 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/tokenhandler/tokenhandler/proxy"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("oauth-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path to the YAML configuration file (required)")
	check := fs.Bool("check-config", false, "validate the configuration and exit")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, "oauth-proxy", buildVersion())
		return 0
	}
	if *configPath == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "oauth-proxy: -config FILE is required")
		fs.Usage()
		return 2
	}
	// Catch signals from the start: a SIGHUP that arrives while the
	// listeners open would otherwise kill the process.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)

	cfg, err := proxy.LoadConfig(*configPath, getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *check {
		fmt.Fprintf(stdout, "oauth-proxy: %s: configuration OK (keys: %d, routes: %d)\n", *configPath, cfg.Keys.Len(), len(cfg.Routes))
		return 0
	}

	log := proxy.NewLogger(cfg.Log, stderr)
	srv, err := proxy.NewServer(cfg, log)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return 1
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	for {
		select {
		case err := <-served:
			log.Error().Err(err).Msg("server stopped")
			srv.Shutdown(context.Background()) // removes Unix sockets
			return 1
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				if err := srv.ReloadFile(*configPath, getenv); err != nil {
					log.Error().Err(err).Msg("configuration reload refused; the running configuration stays")
				}
				continue
			}
			log.Info().Str("signal", sig.String()).Dur("timeout", cfg.Timeouts.Shutdown).Msg("draining")
			ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeouts.Shutdown)
			err := srv.Shutdown(ctx)
			cancel()
			if err != nil {
				log.Warn().Err(err).Msg("drain timed out; connections closed")
			}
			<-served
			log.Info().Msg("stopped")
			return 0
		}
	}
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
