// Command devstack runs the whole token handler on one machine for
// development (`make run`): a development OpenID Provider, the OAuth Agent,
// the OAuth Proxy in upstream mode, the demo API and two demo SPAs, on
// *.example.localhost names (which browsers and curl resolve to loopback and
// treat as secure contexts, so Secure SameSite=Strict cookies work over plain
// http). Ctrl-C stops everything.
//
// Two applications run side by side (issue #15): the shop, the demo SPA
// make run always had, and an admin app. One agent and one proxy serve both
// from one configuration file each with apps:, and pick the application by
// the request's Host: each application has its own client at the
// development OpenID Provider, its own cookie names and key, and its
// cookies are refused by the other. Both call the one demo API.
//
// Flags move the ports and set the access tokens' lifetime and the log
// level (`make run ARGS="-h"` lists them); a port in use stops the start
// with the flag that moves it.
//
// Back-channel logout works as in production (issue #13): the agent keeps
// the embedded revocation store in a temporary state directory (removed at
// the end) and serves its feed on its ops listener, which the proxy
// follows; the development OpenID Provider's page ends a session, or every
// session of a user ("Log out alice everywhere"), and POSTs a logout token
// to the back-channel URI of each client concerned, on its application's
// host at the agent. The SPA's next call then finds the session over.
// Ctrl-C stops every part and exits 0, and make exits 0 with it
// (foreground_linux.go).
//
//	www.example.localhost:3000          the shop's SPA
//	admin.example.localhost:3000        the admin app's SPA (title "Admin")
//	api.example.localhost:8080          the OAuth Agent, the shop (/oauth-agent)
//	api.admin.example.localhost:8080    the OAuth Agent, the admin app
//	api.example.localhost:8081          the OAuth Proxy, the shop (/api → the demo API)
//	api.admin.example.localhost:8081    the OAuth Proxy, the admin app
//	login.example.localhost:8443        the development OpenID Provider
//	127.0.0.1:9000                      the demo API (reached through the proxy)
//
// With -nginx (`make run-nginx`) NGINX runs in front of the agent and the
// proxy too, as in production (nginx.Render's upstream mode, a server
// block per application), and each SPA calls both through it:
//
//	api.example.localhost:8000          NGINX, the shop: /oauth-agent → the agent, /api → the proxy
//	api.admin.example.localhost:8000    NGINX, the admin app: the same
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/agent"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/examples/api"
	"github.com/tokenhandler/tokenhandler/examples/devidp"
	"github.com/tokenhandler/tokenhandler/examples/spa"
	"github.com/tokenhandler/tokenhandler/internal/daemon"
	"github.com/tokenhandler/tokenhandler/internal/harness"
	"github.com/tokenhandler/tokenhandler/proxy"
)

// ports are the stack's listening ports, all on loopback.
type ports struct {
	spa, agent, proxy, api, idp, nginx int
	agentMetrics                       int // 0: no metrics listener
}

type options struct {
	ports          ports
	nginx          bool // NGINX in front of agent and proxy
	insecurePublic bool
	accessTTL      time.Duration
	logLevel       string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.ports.spa, "spa-port", 3000, "port of the SPAs (www.example.localhost, admin.example.localhost)")
	fs.IntVar(&o.ports.agent, "agent-port", 8080, "port of the OAuth Agent (api.example.localhost, api.admin.example.localhost)")
	fs.IntVar(&o.ports.proxy, "proxy-port", 8081, "port of the OAuth Proxy (api.example.localhost, api.admin.example.localhost)")
	fs.IntVar(&o.ports.api, "api-port", 9000, "port of the demo API (127.0.0.1)")
	fs.IntVar(&o.ports.idp, "idp-port", 8443, "port of the development OpenID Provider (login.example.localhost)")
	fs.BoolVar(&o.nginx, "nginx", false, "run NGINX in front of the OAuth Agent and the OAuth Proxy (needs nginx installed)")
	fs.IntVar(&o.ports.nginx, "nginx-port", 8000, "port of NGINX (api.example.localhost, api.admin.example.localhost), with -nginx")
	fs.IntVar(&o.ports.agentMetrics, "agent-metrics-port", 0, "port of the OAuth Agent's ops listener (127.0.0.1: /metrics, /healthz, /readyz, and /revocations, which the proxy follows); 0 = a free one")
	fs.DurationVar(&o.accessTTL, "access-token-ttl", 5*time.Minute, "lifetime of access tokens (short ones show refresh at work)")
	fs.BoolVar(&o.insecurePublic, "insecure-public", false, "let the development OpenID Provider listen on a non-loopback address (never do this)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level of agent and proxy: debug, info (the default: refused requests with their reason), warn or error")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: make run ARGS=\"flags\" (or make run-nginx ARGS=..., or bin/devstack flags)\n\n"+
			"Runs the token handler's development stack on *.example.localhost; Ctrl-C stops it.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "devstack: unexpected argument %q (flags start with -; see -h)\n", fs.Arg(0))
		return 2
	}
	if err := checkPorts(o); err != nil {
		fmt.Fprintln(stderr, "devstack:", err)
		return 1
	}

	// Ask for the signals before anything starts, and take the terminal
	// (foreground_linux.go), so that Ctrl-C during the start stops the
	// stack too, and reaches devstack alone.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	defer foreground(stderr)()

	stack, err := start(o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "devstack:", err)
		return 1
	}
	fmt.Fprint(stdout, stack.banner(o))

	select {
	case <-sig:
	case err := <-stack.Failed:
		fmt.Fprintln(stderr, "devstack:", err)
		stack.stop()
		return 1
	}
	stack.stop()
	fmt.Fprintln(stdout, "devstack: stopped")
	return 0
}

// portFlag is one of the stack's ports: its flag and what listens there.
type portFlag struct {
	flag, what string
	port       int
}

// portFlags lists the ports o uses: NGINX's only with -nginx, the agent's
// metrics port only when set.
func portFlags(o options) []portFlag {
	p := []portFlag{
		{"-spa-port", "the SPA", o.ports.spa},
		{"-agent-port", "the OAuth Agent", o.ports.agent},
		{"-proxy-port", "the OAuth Proxy", o.ports.proxy},
		{"-api-port", "the demo API", o.ports.api},
		{"-idp-port", "the development OpenID Provider", o.ports.idp},
	}
	if o.nginx {
		p = append(p, portFlag{"-nginx-port", "NGINX", o.ports.nginx})
	}
	if o.ports.agentMetrics != 0 {
		p = append(p, portFlag{"-agent-metrics-port", "the OAuth Agent's metrics", o.ports.agentMetrics})
	}
	return p
}

// checkPorts says which ports are out of range, given twice or in use,
// each with the flag that moves it, before anything starts: a part that
// fails to listen halfway through the start says less (NGINX only that
// bind() failed), and leaves the user to find the flag.
func checkPorts(o options) error {
	var errs []error
	seen := map[int]string{}
	for _, p := range portFlags(o) {
		if p.port < 1 || p.port > 65535 {
			errs = append(errs, fmt.Errorf("%s %d: not a port (1 to 65535)", p.flag, p.port))
			continue
		}
		if other, ok := seen[p.port]; ok {
			errs = append(errs, fmt.Errorf("%s and %s are both %d: give each part a port of its own", other, p.flag, p.port))
			continue
		}
		seen[p.port] = p.flag
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p.port))
		if errors.Is(err, syscall.EADDRINUSE) {
			errs = append(errs, fmt.Errorf("port %d is in use (%s): move it with %s N (make run ARGS=\"%s N\")", p.port, p.what, p.flag, p.flag))
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("port %d (%s, %s): %w", p.port, p.what, p.flag, err))
			continue
		}
		ln.Close()
	}
	return errors.Join(errs...)
}

// app is one of the stack's applications: its SPA's host, its host at the
// agent and the proxy (which pick the application by the Host header), its
// client at the development OpenID Provider, its cookies and its key.
type app struct {
	name     string // apps[].name in the agent's and the proxy's files
	title    string // the SPA's title; "" keeps the demo SPA's own
	spaHost  string // where its SPA is served, on the SPA port
	apiHost  string // its host at the agent and the proxy
	clientID string // its client at the development OpenID Provider
	prefix   string // cookie.prefix: its cookies are <prefix>-at, ...
	// A fresh client secret (32 random bytes in hex) and key every run:
	// nothing to leak.
	secret string
	key    crypto.Key
}

// demoApps returns the stack's applications, with fresh secrets and keys.
// The first is the one make run always had, with its host names, client
// and cookies: the curl walkthrough, the e2e tests and the README use them.
func demoApps() []app {
	apps := []app{
		{name: "shop", spaHost: "www.example.localhost", apiHost: "api.example.localhost", clientID: "spa-client", prefix: "example"},
		{name: "admin", title: "Admin", spaHost: "admin.example.localhost", apiHost: "api.admin.example.localhost", clientID: "admin-spa", prefix: "admin"},
	}
	for i := range apps {
		apps[i].secret = string(crypto.GenerateKey().AppendHex(nil))
		apps[i].key = crypto.GenerateKey()
	}
	return apps
}

// origin is the application's SPA origin, its trusted web origin.
func (a *app) origin(p ports) string { return fmt.Sprintf("http://%s:%d", a.spaHost, p.spa) }

// running is an application of the running stack: where its SPA is, and
// what the SPA was told (where it calls the agent and the API).
type running struct {
	app
	spaURL string
	spa    spa.Config
}

// stack is the running development stack: harness.Stack stops its parts,
// newest first, and removes its directory (the revocation state); Failed
// reports a part that stopped on its own.
type stack struct {
	*harness.Stack
	apps     []running
	spaURL   string // the first application's SPA, apps[0].spaURL
	idpURL   string // the development OpenID Provider's page
	agentOps string // the agent's ops listener, http://127.0.0.1:port
}

func (s *stack) stop() { s.Stop(io.Discard, false) }

// banner is what devstack prints once the stack is up. Each SPA's URL is a
// line of its own, the first application's first: scripts and tests take
// the first line that is a www.example.localhost URL.
func (s *stack) banner(o options) string {
	var b strings.Builder
	behind := ""
	if o.nginx {
		behind = fmt.Sprintf(", behind NGINX on port %d", o.ports.nginx)
	}
	fmt.Fprintf(&b, "\nToken handler development stack is up%s. Open either application:\n\n", behind)
	for _, a := range s.apps {
		fmt.Fprintf(&b, "    %s\n\n  %s: client %s, cookies %s-*\n  agent %s\n  API   %s\n\n", a.spaURL, a.name, a.clientID, a.prefix, a.spa.AgentBaseURL, a.spa.APIBaseURL)
	}
	fmt.Fprintf(&b, "One agent and one proxy serve both and pick the application by host name; the cookies of one are\n"+
		"refused by the other. Demo users: alice, bob, carol (no password). The development IdP's page\n\n    %s\n\n"+
		"ends sessions at the IdP (back-channel logout, to each application). Ctrl-C stops everything.\n\n", s.idpURL)
	return b.String()
}

// start starts every part, NGINX first so that -nginx without it stops
// the start at once; on error it stops what it started.
func start(o options, logw io.Writer) (s *stack, err error) {
	hs, err := harness.New("devstack-")
	if err != nil {
		return nil, err
	}
	hs.Failed = make(chan error, 8)
	s = &stack{Stack: hs}
	started := s // s is nil once an error is returned
	defer func() {
		if err != nil {
			started.stop()
		}
	}()
	apps := demoApps()
	if o.nginx {
		if err := s.startNGINX(o.ports, apps); err != nil {
			return nil, err
		}
	}
	level, err := zerolog.ParseLevel(o.logLevel)
	if err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	log := daemon.NewLogger(level, "console", logw) // coloured only on a terminal

	issuer := fmt.Sprintf("http://login.example.localhost:%d", o.ports.idp)
	s.idpURL = issuer + "/"

	// The development OpenID Provider, with a client per application.
	idp, err := devidp.New(devidp.Options{
		Issuer:         issuer,
		Clients:        idpClients(apps, o.ports),
		AccessTokenTTL: o.accessTTL,
		Audience:       devidp.DefaultAudience, // the one demo API, which both applications call
	})
	if err != nil {
		return nil, err
	}
	idpLn, err := devidp.ListenLoopback(fmt.Sprintf("127.0.0.1:%d", o.ports.idp), o.insecurePublic)
	if err != nil {
		return nil, fmt.Errorf("development OpenID Provider: %w", err)
	}
	idpSrv := &http.Server{Handler: idp.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.Serve("development OpenID Provider", func() error { return idpSrv.Serve(idpLn) }, idpSrv.Shutdown)

	// The demo API, behind the proxy.
	// With short-lived tokens, a short leeway too: an expired token must be
	// refused soon enough to see the SPA refresh.
	demo, err := api.New(api.Options{Issuer: issuer, JWKSURL: issuer + "/jwks", Audience: devidp.DefaultAudience, Leeway: min(api.Leeway, o.accessTTL/4)})
	if err != nil {
		return nil, err
	}
	apiLn, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", o.ports.api))
	if err != nil {
		return nil, fmt.Errorf("demo API: %w", err)
	}
	apiSrv := &fasthttp.Server{Handler: demo.Handler, NoDefaultServerHeader: true}
	s.Serve("demo API", func() error { return apiSrv.Serve(apiLn) }, apiSrv.ShutdownWithContext)

	// The OAuth Agent, with the embedded revocation store in the stack's
	// directory; its ops listener serves the revocation feed the proxy
	// follows.
	acfg, err := agent.ParseConfig(agentConfig(o, issuer, filepath.Join(s.Dir, "revocation"), apps), nil)
	if err != nil {
		return nil, err
	}
	agentSrv, err := agent.NewServer(acfg, log.With().Str("service", "oauth-agent").Logger())
	if err != nil {
		return nil, err
	}
	s.Serve("OAuth Agent", agentSrv.Serve, agentSrv.Shutdown)
	s.agentOps = "http://" + agentSrv.MetricsAddr().String()

	// The OAuth Proxy in upstream mode, in front of the demo API.
	pcfg, err := proxy.ParseConfig(proxyConfig(o, s.agentOps, apps), nil)
	if err != nil {
		return nil, err
	}
	proxySrv, err := proxy.NewServer(pcfg, log.With().Str("service", "oauth-proxy").Logger())
	if err != nil {
		return nil, err
	}
	s.Serve("OAuth Proxy", proxySrv.Serve, proxySrv.Shutdown)

	// The SPAs, each told where it calls the agent and the API: directly,
	// or with -nginx through NGINX in front of both.
	byHost := make(map[string]http.Handler)
	for _, a := range apps {
		r := running{app: a, spaURL: a.origin(o.ports) + "/", spa: spaConfig(o, a)}
		s.apps = append(s.apps, r)
		byHost[a.spaHost] = spa.Handler(r.spa)
	}
	s.spaURL = s.apps[0].spaURL
	spaLn, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", o.ports.spa))
	if err != nil {
		return nil, fmt.Errorf("SPA: %w", err)
	}
	spaSrv := &http.Server{Handler: spaHandler(byHost, byHost[apps[0].spaHost]), ReadHeaderTimeout: 10 * time.Second}
	s.Serve("SPA", func() error { return spaSrv.Serve(spaLn) }, spaSrv.Shutdown)

	// Ready when the agent has the provider's metadata.
	if err := harness.Wait(context.Background(), 10*time.Second, 20*time.Millisecond, "the OAuth Agent did not load the development OpenID Provider's metadata", agentSrv.Agent.Ready); err != nil {
		return nil, err
	}
	return s, nil
}

// idpClients are the applications' clients at the development OpenID
// Provider: each sends the browser back to its own SPA and its logout
// tokens to its own host at the agent (server to server: straight to the
// agent, with or without NGINX).
func idpClients(apps []app, p ports) []devidp.Client {
	var clients []devidp.Client
	for _, a := range apps {
		spaURL := a.origin(p) + "/"
		clients = append(clients, devidp.Client{
			ID: a.clientID, Secret: a.secret, RedirectURIs: []string{spaURL}, PostLogoutRedirectURIs: []string{spaURL},
			BackchannelLogoutURI: fmt.Sprintf("http://%s:%d/oauth-agent/backchannel-logout", a.apiHost, p.agent),
		})
	}
	return clients
}

// agentConfig is the OAuth Agent's configuration file: the process's
// settings and the one provider at the top level, each application under
// apps with its host, client, cookies, key and origin.
func agentConfig(o options, issuer, stateDir string, apps []app) []byte {
	b := fmt.Appendf(nil, `listen: 127.0.0.1:%d
metrics_listen: 127.0.0.1:%d
log: {level: %s, format: console}
revocation: {store: embedded, state_dir: %q}
timeouts: {shutdown: 5s}
issuer: %q
scope: openid profile
apps:
`, o.ports.agent, o.ports.agentMetrics, o.logLevel, stateDir, issuer)
	for _, a := range apps {
		origin := a.origin(o.ports)
		b = fmt.Appendf(b, `  - name: %s
    hosts: [%s]
    client_id: %s
    client_secret: %q
    redirect_uri: %q
    post_logout_redirect_uri: %q
    trusted_web_origins: [%q]
    cookie: {prefix: %s}
    encryption_keys: [%q]
`, a.name, a.apiHost, a.clientID, a.secret, origin+"/", origin+"/", origin, a.prefix, a.key.AppendHex(nil))
	}
	return b
}

// proxyConfig is the OAuth Proxy's configuration file: the process's
// settings and the route to the demo API at the top level, each
// application under apps with its host, cookies, key and origin.
func proxyConfig(o options, feed string, apps []app) []byte {
	b := fmt.Appendf(nil, `listen: 127.0.0.1:%d
log: {level: %s, format: console}
revocation: {feed: %q}
routes: [{path_prefix: /api/, upstream: "http://127.0.0.1:%d"}]
apps:
`, o.ports.proxy, o.logLevel, feed, o.ports.api)
	for _, a := range apps {
		b = fmt.Appendf(b, `  - name: %s
    hosts: [%s]
    trusted_web_origins: [%q]
    cookie: {prefix: %s}
    encryption_keys: [%q]
`, a.name, a.apiHost, a.origin(o.ports), a.prefix, a.key.AppendHex(nil))
	}
	return b
}

// spaConfig is what application a's SPA is told: its agent and API on its
// own host, at NGINX's port with -nginx.
func spaConfig(o options, a app) spa.Config {
	agentPort, proxyPort := o.ports.agent, o.ports.proxy
	if o.nginx {
		agentPort, proxyPort = o.ports.nginx, o.ports.nginx
	}
	return spa.Config{
		AgentBaseURL:     fmt.Sprintf("http://%s:%d/oauth-agent", a.apiHost, agentPort),
		APIBaseURL:       fmt.Sprintf("http://%s:%d/api", a.apiHost, proxyPort),
		CookieNamePrefix: a.prefix,
		Title:            a.title,
	}
}

// spaHandler serves each application's SPA on its host name, all on the
// one SPA port; any other host (127.0.0.1 too, for scripts that read
// /config.json) gets other.
func spaHandler(byHost map[string]http.Handler, other http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if h, ok := byHost[strings.ToLower(host)]; ok {
			h.ServeHTTP(w, r)
			return
		}
		other.ServeHTTP(w, r)
	})
}
