// Command render writes an NGINX configuration for the token handler
// (nginx/README.md):
//
//	go run ./nginx/cmd/render -mode upstream|auth_request|tls [flags] [-o FILE]
//
// Without -snippet it writes a whole nginx.conf that keeps its pid file, logs
// and temporary files in -run-dir; with -snippet only the part for
// /etc/nginx/conf.d/. Repeat -agent, -proxy and -api for several instances.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/nginx"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(2)
	}
}

// list is a repeatable flag; each value may also hold comma-separated items.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }

func (l *list) Set(v string) error {
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	var p nginx.Params
	mode := fs.String("mode", "", "upstream, auth_request or tls (required)")
	out := fs.String("o", "", "write the configuration to this file instead of standard output")
	fs.BoolVar(&p.Snippet, "snippet", false, "only the http{} part, for /etc/nginx/conf.d/")
	fs.StringVar(&p.RunDir, "run-dir", "", "absolute directory for the pid file, logs and temporary files (required without -snippet)")
	fs.StringVar(&p.User, "user", "", `worker user ("www-data" or "user group"); empty leaves the directive out`)
	fs.IntVar(&p.WorkerProcesses, "workers", 0, "worker processes; 0 means auto")
	fs.StringVar(&p.Listen, "listen", "", `listen address: port, host:port or unix:/path (default "80", or "443" with TLS)`)
	fs.StringVar(&p.ServerName, "server-name", "", `server_name (default "api.example.localhost")`)
	fs.StringVar(&p.CookiePrefix, "cookie-prefix", "", `cookie_name_prefix of the agent and proxy (default "example")`)
	namePrefix := fs.String("name-prefix", "none", "cookie.name_prefix of the agent and proxy: none, host or host-http")
	fs.BoolVar(&p.HostPrefix, "host-prefix", false, "cookie.host_prefix of the agent and proxy is on (the same as -name-prefix host)")
	fs.StringVar(&p.AgentBasePath, "agent-base-path", "", `base_path of the agent (default "/oauth-agent")`)
	fs.StringVar(&p.APIPathPrefix, "api-path-prefix", "", `location of the API (default "/api/")`)
	fs.StringVar(&p.AuthPath, "auth-path", "", `auth_path of the proxy (default "/_oauth-proxy/auth")`)
	fs.Var((*list)(&p.Agents), "agent", `an oauth-agent instance, host:port or unix:/path (default "127.0.0.1:8080"); repeatable`)
	fs.Var((*list)(&p.Proxies), "proxy", `an oauth-proxy instance (default "127.0.0.1:8081"); repeatable`)
	fs.Var((*list)(&p.APIs), "api", `an API server NGINX calls in auth_request mode (default "127.0.0.1:9000"); repeatable`)
	fs.BoolVar(&p.KeepCookieHeaders, "keep-cookie-headers", false, "auth_request mode: forward the token-handler cookies and CSRF header to the API (remove_cookie_headers: false)")
	fs.StringVar(&p.TLSCertificate, "tls-certificate", "", "PEM certificate (chain) of the https listener")
	fs.StringVar(&p.TLSCertificateKey, "tls-certificate-key", "", "PEM private key of the https listener")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if p.NamePrefix, err = browser.ParseNamePrefix(*namePrefix); err != nil {
		return err
	}
	conf, err := nginx.Render(*mode, p)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(conf)
		return err
	}
	return os.WriteFile(*out, conf, 0o644)
}
