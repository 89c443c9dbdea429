package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/agent"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/examples/api"
	"github.com/tokenhandler/tokenhandler/examples/devidp"
	"github.com/tokenhandler/tokenhandler/internal/harness"
	"github.com/tokenhandler/tokenhandler/nginx"
	"github.com/tokenhandler/tokenhandler/nginx/nginxtest"
)

const (
	origin       = "http://www.example.localhost:3000" // the SPA's origin, trusted by agent and proxy
	cookiePrefix = "example"
	apiAudience  = devidp.DefaultAudience
	clientID     = "spa-client"
	sessionCount = 16 // distinct users, each with its own cookies
)

// stack is everything a k6 run talks to, all on loopback.
type stack struct {
	*harness.Stack
	nginxURL string
	idpURL   string
	proxies  []*proxyProc
	api      *upstream
	nginx    *nginxProc

	oldKey, newKey string       // hex; the proxies start with [old], the soak rotates to [new, old]
	sessions       string       // the JSON file of minted cookies k6 reads
	minted         sessionsFile // what it holds
}

// startStack builds oauth-proxy and thctl, and starts the identity
// provider, the agent, the API, n proxies and NGINX. On error the caller
// still stops what the returned stack holds.
func startStack(ctx context.Context, o options, n int, w io.Writer) (*stack, error) {
	hs, err := harness.New("th-loadtest-")
	if err != nil {
		return nil, err
	}
	s := &stack{Stack: hs}
	t0 := time.Now()
	bin, err := s.Build(ctx, "", "./cmd/oauth-proxy", "./cmd/thctl")
	if err != nil {
		return s, err
	}
	fmt.Fprintf(w, "loadtest: built oauth-proxy and thctl in %s\n", time.Since(t0).Round(100*time.Millisecond))

	// Keys, made by thctl as an operator would.
	if s.oldKey, err = harness.Thctl(ctx, bin, "", "", "keygen"); err != nil {
		return s, err
	}
	if s.newKey, err = harness.Thctl(ctx, bin, "", "", "keygen"); err != nil {
		return s, err
	}

	// The issuer of the load-test access tokens: a JWKS the demo API trusts.
	iss, err := newIssuer()
	if err != nil {
		return s, err
	}
	issURL, err := s.ServeHTTP(nil, iss.keys)
	if err != nil {
		return s, err
	}
	iss.url = issURL

	// The development OpenID Provider and the OAuth Agent, for the
	// login-plus-refresh flow.
	secret := crypto.GenerateKey() // 32 random bytes; only its hex form is used
	secretHex := string(secret.AppendHex(nil))
	if s.idpURL, err = s.StartIdP(devidp.Options{
		Clients:        []devidp.Client{{ID: clientID, Secret: secretHex, RedirectURIs: []string{origin + "/"}, PostLogoutRedirectURIs: []string{origin + "/"}}},
		AccessTokenTTL: 10 * time.Minute,
	}); err != nil {
		return s, err
	}

	agentSrv, err := startAgent(s.idpURL, secretHex, s.oldKey)
	if err != nil {
		return s, err
	}
	s.Serve("OAuth Agent", agentSrv.Serve, agentSrv.Shutdown)

	// The demo API: one per issuer, behind one upstream per proxy.
	minted, err := api.New(api.Options{Issuer: issURL, JWKSURL: issURL + "/jwks", Audience: apiAudience})
	if err != nil {
		return s, err
	}
	fromIdP, err := api.New(api.Options{Issuer: s.idpURL, JWKSURL: s.idpURL + "/jwks", Audience: apiAudience})
	if err != nil {
		return s, err
	}
	s.api = &upstream{minted: minted.Handler, idp: fromIdP.Handler, slow: 2 * time.Second}
	var proxyAddrs []string
	for i := range n {
		addr, err := s.ServeFast(s.api.handler())
		if err != nil {
			return s, err
		}
		p, err := s.startProxy(ctx, bin, fmt.Sprintf("proxy-%c", 'a'+i), addr)
		if err != nil {
			return s, err
		}
		s.proxies, proxyAddrs = append(s.proxies, p), append(proxyAddrs, p.addr)
	}

	// NGINX in front of the agent and the proxies.
	ng, err := s.StartNGINX(ctx, "nginx", nginx.ModeUpstream, nginx.Params{WorkerProcesses: o.workers,
		Agents: []string{agentSrv.Addr().String()}, Proxies: proxyAddrs, CookiePrefix: cookiePrefix})
	if err != nil {
		return s, err
	}
	s.nginx, s.nginxURL = &nginxProc{ng}, "http://"+ng.Addr()
	if err := harness.Wait(ctx, 10*time.Second, 20*time.Millisecond, "the OAuth Agent did not load the development OpenID Provider's metadata", agentSrv.Agent.Ready); err != nil {
		return s, err
	}

	// The cookies k6 sends: minted with thctl from ~1 KiB access tokens.
	if err := s.mintSessions(ctx, bin, iss); err != nil {
		return s, err
	}
	// One call through the whole chain before k6 starts: it checks the
	// wiring and lets the API fetch the JWKS outside the measurement.
	if code, err := probe(ctx, strings.TrimPrefix(s.nginxURL, "http://"), s.minted.Sessions[0]); err != nil || code != http.StatusOK {
		return s, fmt.Errorf("a GET through NGINX and the proxy got %d (%v), want 200", code, err)
	}
	fmt.Fprintf(w, "loadtest: stack up in %s: NGINX %s → %d oauth-proxy → demo API; agent and IdP %s\n",
		time.Since(t0).Round(100*time.Millisecond), s.nginxURL, n, s.idpURL)
	return s, nil
}

// startAgent runs the OAuth Agent in-process against the development IdP.
func startAgent(issuer, secret, keyHex string) (*agent.Server, error) {
	keys, err := crypto.ParseKeyring(keyHex)
	if err != nil {
		return nil, err
	}
	return agent.NewServer(harness.AgentConfig(issuer, secret, origin, keys), zerolog.New(os.Stderr).Level(zerolog.WarnLevel).With().Timestamp().Str("service", "oauth-agent").Logger())
}

// proxyProc is one oauth-proxy process.
type proxyProc struct {
	*harness.Process
	addr, metrics, conf string
	api                 string // host:port of its API
}

// proxyConfig is an oauth-proxy configuration file with keys (hex, the
// sealing key first).
func proxyConfig(addr, metrics, apiAddr string, keys ...string) []byte {
	return fmt.Appendf(nil, `# oauth-proxy of a load test (loadtest/run)
listen: %s
metrics_listen: %s
cookie: {prefix: %s}
encryption_keys: ["%s"]
trusted_web_origins: [%q]
routes:
  - {path_prefix: /api/, upstream: "http://%s"}
timeouts: {upstream: 10s, shutdown: 20s, shutdown_delay: 3s}
log: {level: warn, format: json}
`, addr, metrics, cookiePrefix, strings.Join(keys, `", "`), origin, apiAddr)
}

// startProxy starts oauth-proxy on a free port, routing /api/ to apiAddr,
// with the old key, and waits until /readyz says it serves.
func (s *stack) startProxy(ctx context.Context, bin, name, apiAddr string) (*proxyProc, error) {
	for attempt := 0; ; attempt++ {
		p, err := s.tryProxy(ctx, bin, name, apiAddr)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return p, err
		}
	}
}

func (s *stack) tryProxy(ctx context.Context, bin, name, apiAddr string) (*proxyProc, error) {
	addr, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	metrics, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	p := &proxyProc{addr: addr, metrics: metrics, conf: filepath.Join(s.Dir, name+".yaml"), api: apiAddr}
	if err := os.WriteFile(p.conf, proxyConfig(addr, metrics, apiAddr, s.oldKey), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(bin, "oauth-proxy"), "-config", p.conf)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	// The grace outlasts the proxy's timeouts.shutdown (proxyConfig).
	if p.Process, err = s.Start(name, cmd, 25*time.Second); err != nil {
		return nil, err
	}
	if err := p.WaitFor(ctx, "not ready", func() bool { return harness.Ready("http://" + metrics + "/readyz") }); err != nil {
		p.Stop()
		return nil, err
	}
	// proxyConfig writes the settings as contract §7 spells them; a
	// deprecation warning (logged at warn before serving) means it fell
	// behind, and a load test of a configuration nobody should write.
	if out := p.Log(); strings.Contains(out, "deprecated") {
		p.Stop()
		return nil, fmt.Errorf("%s logged a deprecated setting: %s", name, out)
	}
	return p, nil
}

// nginxProc is the running NGINX (nginxtest.Run), in upstream mode in front
// of the agent and the proxies, in the foreground until the stack stops.
type nginxProc struct{ *nginxtest.Process }

// reload renders the configuration again with proxies as the OAuth Proxy
// instances and makes NGINX load it (SIGHUP to the master), returning once
// the workers that had the old configuration are shutting down: they finish
// the requests they have in flight, and no new request reaches a proxy left
// out.
func (n *nginxProc) reload(proxies []string) error {
	p := n.Params()
	p.Proxies = proxies
	old := childWorkers(n.Pid(), false)
	if err := n.Reload(p); err != nil {
		return err
	}
	return harness.Wait(context.Background(), 10*time.Second, 10*time.Millisecond, "nginx: no new worker after SIGHUP", func() bool {
		fresh := 0
		for _, pid := range childWorkers(n.Pid(), true) {
			if !slices.Contains(old, pid) {
				fresh++
			}
		}
		return fresh >= max(1, p.WorkerProcesses)
	})
}

// childWorkers lists the PIDs of master's worker processes; with active,
// only those not shutting down.
func childWorkers(master int, active bool) []int {
	var pids []int
	for _, pid := range harness.Children(master) {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if !bytes.Contains(cmdline, []byte("worker process")) || active && bytes.Contains(cmdline, []byte("shutting down")) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// upstream is the API the proxies route /api/ to: the demo API (examples/api)
// for tokens of the load-test issuer, the same API trusting the
// development IdP under /api/idp/, and under /api/slow/ the demo API after a
// pause (requests that are in flight when a proxy is told to stop):
// /api/slow/echo answers as /api/echo does, two seconds late. Each
// proxy gets its own listener, so that what is in flight through which
// proxy can be counted.
type upstream struct {
	minted, idp fasthttp.RequestHandler
	slow        time.Duration
	counts      []*apiCounts
}

// apiCounts counts the slow requests of one listener.
type apiCounts struct {
	mu                  sync.Mutex
	inFlight, completed int
}

func (c *apiCounts) snapshot() (inFlight, completed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inFlight, c.completed
}

// handler is the API for one proxy, with counts of its own.
func (u *upstream) handler() fasthttp.RequestHandler {
	c := &apiCounts{}
	u.counts = append(u.counts, c)
	return func(ctx *fasthttp.RequestCtx) {
		path := ctx.Path()
		switch {
		case bytes.HasPrefix(path, []byte("/api/idp/")):
			u.idp(ctx)
		case bytes.HasPrefix(path, []byte("/api/slow/")):
			c.mu.Lock()
			c.inFlight++
			c.mu.Unlock()
			time.Sleep(u.slow)
			// /api/slow/x is the demo API's /api/x, late.
			ctx.URI().SetPathBytes(append([]byte("/api/"), path[len("/api/slow/"):]...))
			u.minted(ctx)
			c.mu.Lock()
			c.inFlight--
			c.completed++
			c.mu.Unlock()
		default:
			u.minted(ctx)
		}
	}
}
