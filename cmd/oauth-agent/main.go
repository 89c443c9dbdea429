// Command oauth-agent runs the OAuth Agent: the backend-for-frontend API the
// SPA calls to log in, refresh, read user info and claims, and log out.
//
//	oauth-agent -config /etc/tokenhandler/oauth-agent.yaml
//	oauth-agent -config FILE -check-config
//	oauth-agent -version
//
// The agent starts without waiting for the Authorization Server: it fetches
// the discovery document in the background, retrying, and /readyz on the
// metrics listener answers 200 once it has. SIGHUP reloads the configuration
// file (keys and client secret included); a bad file is refused and logged
// and the running configuration stays. SIGTERM or SIGINT stop accepting
// connections, let requests in flight finish for up to timeouts.shutdown,
// and exit 0.
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

	"github.com/tokenhandler/tokenhandler/agent"
	"github.com/tokenhandler/tokenhandler/internal/daemon"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("oauth-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path to the YAML configuration file (required)")
	check := fs.Bool("check-config", false, "validate the configuration and exit")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, "oauth-agent", buildVersion())
		return 0
	}
	if *configPath == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "oauth-agent: -config FILE is required")
		fs.Usage()
		return 2
	}
	// Catch signals from the start: a SIGHUP that arrives while the
	// listeners open would otherwise kill the process.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)

	cfg, err := agent.LoadConfig(*configPath, getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *check {
		// Only the file is checked: the Authorization Server is not contacted.
		fmt.Fprintf(stdout, "oauth-agent: %s: configuration OK (keys: %d, issuer: %q)\n", *configPath, cfg.Keys.Len(), cfg.Issuer)
		return 0
	}

	log := daemon.NewLogger(cfg.Log.Level, cfg.Log.Format, stderr)
	srv, err := agent.NewServer(cfg, log)
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
