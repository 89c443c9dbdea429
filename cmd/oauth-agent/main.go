// Command oauth-agent runs the OAuth Agent: the backend-for-frontend API the
// SPA calls to log in, refresh, read user info and claims, and log out.
//
//	oauth-agent -config /etc/tokenhandler/oauth-agent.yaml
//	oauth-agent -config FILE -check-config
//	oauth-agent -version
//
// The agent starts without waiting for the Authorization Server: it fetches
// the discovery document in the background, retrying, and /readyz on the
// metrics listener answers 200 once it has (with apps, once one
// application's has; /readyz?app=NAME answers for one). SIGHUP reloads the configuration
// file (keys and client secret included); a bad file is refused and logged
// and the running configuration stays. SIGTERM or SIGINT turn /readyz to
// 503, keep serving for timeouts.shutdown_delay (default 0), then stop
// accepting connections, let requests in flight finish for up to
// timeouts.shutdown, and exit 0.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/agent"
	"github.com/tokenhandler/tokenhandler/internal/daemon"
)

func main() {
	os.Exit(daemon.Main("oauth-agent", os.Args[1:], os.Getenv, os.Stdout, os.Stderr, load))
}

// load reads the configuration file for daemon.Main. Only the file is
// checked: the Authorization Server is not contacted until the agent starts.
func load(path string, getenv func(string) string) (*daemon.Config, error) {
	cfg, err := agent.LoadConfig(path, getenv)
	if err != nil {
		return nil, err
	}
	return &daemon.Config{
		Summary:  summary(cfg),
		Warnings: cfg.Warnings,
		Log:      cfg.Log,
		Timeouts: cfg.Timeouts.ServerTimeouts,
		Start: func(log zerolog.Logger) (daemon.Service, error) {
			return agent.NewServer(cfg, log)
		},
	}, nil
}

// summary is what -check-config says of the configuration: for each
// application its keys and issuer.
func summary(cfg *agent.Config) string {
	if len(cfg.Apps) == 0 {
		return fmt.Sprintf("keys: %d, issuer: %q", cfg.Keys.Len(), cfg.Issuer)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apps: %d", len(cfg.Apps))
	for _, a := range cfg.Apps {
		fmt.Fprintf(&b, "; %s: hosts %s, base_path %s, keys: %d, issuer: %q", a.Name, strings.Join(a.Hosts, " "), a.BasePath, a.Keys.Len(), a.Issuer)
	}
	return b.String()
}
