package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/agent"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/examples/api"
	"github.com/tokenhandler/tokenhandler/examples/devidp"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/nginx"
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
	dir      string // temporary: binaries, configurations, logs, NGINX's run directory
	nginxURL string
	idpURL   string
	proxies  []*proxyProc
	api      *upstream
	nginx    *nginxProc

	oldKey, newKey string // hex; the proxies start with [old], the soak rotates to [new, old]
	sessions       string // the JSON file of minted cookies k6 reads

	mu    sync.Mutex
	stops []func() // in start order; stop runs them backwards
	logs  []func() string
}

func (s *stack) onStop(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stops = append(s.stops, f)
}

// stop stops everything started, newest first, and removes the temporary
// directory; with logs it prints what the proxies and NGINX logged.
func (s *stack) stop(w io.Writer, logs bool) {
	s.mu.Lock()
	stops := s.stops
	s.stops = nil
	s.mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	if logs {
		for _, l := range s.logs {
			if out := strings.TrimSpace(l()); out != "" {
				fmt.Fprintln(w, out)
			}
		}
	}
	os.RemoveAll(s.dir)
}

// startStack builds oauth-proxy and thctl, and starts the identity
// provider, the agent, the API, n proxies and NGINX. On error the caller
// still stops what the returned stack holds.
func startStack(ctx context.Context, o options, n int, w io.Writer) (*stack, error) {
	dir, err := os.MkdirTemp("", "th-loadtest-")
	if err != nil {
		return nil, err
	}
	s := &stack{dir: dir}
	t0 := time.Now()
	bin := filepath.Join(dir, "bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", "./cmd/oauth-proxy", "./cmd/thctl")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return s, fmt.Errorf("go build: %v\n%s", err, out)
	}
	fmt.Fprintf(w, "loadtest: built oauth-proxy and thctl in %s\n", time.Since(t0).Round(100*time.Millisecond))

	// Keys, made by thctl as an operator would.
	if s.oldKey, err = thctl(ctx, bin, "", "keygen"); err != nil {
		return s, err
	}
	if s.newKey, err = thctl(ctx, bin, "", "keygen"); err != nil {
		return s, err
	}

	// The issuer of the load-test access tokens: a JWKS the demo API trusts.
	iss, err := newIssuer()
	if err != nil {
		return s, err
	}
	issURL, err := s.serveHTTP("issuer", iss.handler())
	if err != nil {
		return s, err
	}
	iss.url = issURL

	// The development OpenID Provider and the OAuth Agent, for the
	// login-plus-refresh flow.
	idpLn, err := devidp.ListenLoopback("127.0.0.1:0", false)
	if err != nil {
		return s, err
	}
	s.idpURL = "http://" + idpLn.Addr().String()
	secret := crypto.GenerateKey() // 32 random bytes; only its hex form is used
	secretHex := string(secret.AppendHex(nil))
	idp, err := devidp.New(devidp.Options{
		Issuer:         s.idpURL,
		Clients:        []devidp.Client{{ID: clientID, Secret: secretHex, RedirectURIs: []string{origin + "/"}, PostLogoutRedirectURIs: []string{origin + "/"}}},
		AccessTokenTTL: 10 * time.Minute,
	})
	if err != nil {
		idpLn.Close()
		return s, err
	}
	idpSrv := &http.Server{Handler: idp.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go idpSrv.Serve(idpLn)
	s.onStop(func() { idpSrv.Close() })

	agentSrv, err := startAgent(s.idpURL, secretHex, s.oldKey)
	if err != nil {
		return s, err
	}
	go agentSrv.Serve()
	s.onStop(func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		agentSrv.Shutdown(c)
	})

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
	for i := range n {
		addr, err := s.api.listen(s.onStop)
		if err != nil {
			return s, err
		}
		p, err := s.startProxy(ctx, bin, fmt.Sprintf("proxy-%c", 'a'+i), addr)
		if err != nil {
			return s, err
		}
		s.proxies = append(s.proxies, p)
	}

	// NGINX in front of the agent and the proxies.
	var proxyAddrs []string
	for _, p := range s.proxies {
		proxyAddrs = append(proxyAddrs, p.addr)
	}
	if err := s.startNGINX(ctx, o.workers, agentSrv.Addr().String(), proxyAddrs); err != nil {
		return s, err
	}
	for deadline := time.Now().Add(10 * time.Second); !agentSrv.Agent.Ready(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return s, errors.New("the OAuth Agent could not load the development OpenID Provider's metadata")
		}
	}

	// The cookies k6 sends: minted with thctl from ~1 KiB access tokens.
	if err := s.mintSessions(ctx, bin, iss); err != nil {
		return s, err
	}
	// One call through the whole chain before k6 starts: it checks the
	// wiring and lets the API fetch the JWKS outside the measurement.
	f, err := readSessions(s.sessions)
	if err != nil {
		return s, err
	}
	if code, err := probe(ctx, strings.TrimPrefix(s.nginxURL, "http://"), f.Sessions[0]); err != nil || code != http.StatusOK {
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
	cfg := &agent.Config{
		Listen:                "127.0.0.1:0",
		BasePath:              "/oauth-agent",
		Issuer:                issuer,
		ClientID:              clientID,
		ClientSecret:          secret,
		ClientAuthMethod:      "client_secret_basic",
		RedirectURI:           origin + "/",
		PostLogoutRedirectURI: origin + "/",
		Scope:                 "openid profile",
		CookieNamePrefix:      cookiePrefix,
		Cookie:                agent.Cookie{BasePath: "/", SameSite: "strict"},
		CookieFormat:          crypto.FormatV2,
		Keys:                  keys,
		TrustedWebOrigins:     []string{origin},
		CORSEnabled:           true,
		PAR:                   "auto",
		IDToken:               agent.IDToken{AllowedAlgs: []string{"RS256"}, ClockSkew: 30 * time.Second},
		Refresh:               agent.Refresh{GracePeriod: agent.DefaultGracePeriod},
		Timeouts:              agent.Timeouts{Read: 30 * time.Second, Write: 30 * time.Second, Idle: 120 * time.Second, AS: 10 * time.Second, Shutdown: 5 * time.Second},
		Log:                   agent.Log{Level: zerolog.WarnLevel, Format: "json"},
	}
	return agent.NewServer(cfg, zerolog.New(os.Stderr).Level(zerolog.WarnLevel).With().Timestamp().Str("service", "oauth-agent").Logger())
}

// serveHTTP serves h on a free loopback port until the stack stops and
// returns its URL.
func (s *stack) serveHTTP(name string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	s.onStop(func() { srv.Close() })
	return "http://" + ln.Addr().String(), nil
}

// thctl runs the thctl binary with args, key (hex) in TH_ENCRYPTION_KEYS
// when not empty, and returns its output without the trailing newline.
func thctl(ctx context.Context, bin, key string, args ...string) (string, error) {
	return thctlIn(ctx, bin, key, "", args...)
}

func thctlIn(ctx context.Context, bin, key, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "thctl"), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if key != "" {
		cmd.Env = append(cmd.Env, "TH_ENCRYPTION_KEYS="+key)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("thctl %s: %v: %s", args[0], err, strings.TrimSpace(errOut.String()))
	}
	return strings.TrimSuffix(out.String(), "\n"), nil
}

// freeAddr returns a loopback address whose port was free a moment ago,
// from below the ephemeral range (bintest.PickPorts says why).
func freeAddr() (string, error) {
	ports, err := bintest.PickPorts(1)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0]), nil
}

// proxyProc is one oauth-proxy process.
type proxyProc struct {
	name, addr, metrics, conf string
	cmd                       *exec.Cmd
	exited                    chan struct{} // closed when it has exited; then exitErr is set
	exitErr                   error
	log                       *lockedBuffer
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
timeouts: {upstream: 10s, shutdown: 20s}
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
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	metrics, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p := &proxyProc{name: name, addr: addr, metrics: metrics, conf: filepath.Join(s.dir, name+".yaml"),
		exited: make(chan struct{}), log: &lockedBuffer{}}
	if err := os.WriteFile(p.conf, proxyConfig(addr, metrics, apiAddr, s.oldKey), 0o600); err != nil {
		return nil, err
	}
	p.cmd = exec.Command(filepath.Join(bin, "oauth-proxy"), "-config", p.conf)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches the orchestrator, which stops it
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	stopped := func() {
		select {
		case <-p.exited:
			return
		default:
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(25 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited at start (%v): %s", name, p.exitErr, p.log.String())
		case <-ctx.Done():
			stopped()
			return nil, ctx.Err()
		default:
		}
		if resp, err := http.Get("http://" + metrics + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			stopped()
			return nil, fmt.Errorf("%s not ready within 10 s: %s", name, p.log.String())
		}
	}
	// proxyConfig writes the settings as contract §7 spells them; a
	// deprecation warning (logged at warn before serving) means it fell
	// behind, and a load test of a configuration nobody should write.
	if out := p.log.String(); strings.Contains(out, "deprecated") {
		stopped()
		return nil, fmt.Errorf("%s logged a deprecated setting: %s", name, out)
	}
	s.onStop(stopped)
	s.logs = append(s.logs, func() string {
		if out := strings.TrimSpace(p.log.String()); out != "" {
			return name + " log:\n" + out
		}
		return ""
	})
	return p, nil
}

// pid is the proxy's process id.
func (p *proxyProc) pid() int { return p.cmd.Process.Pid }

// startNGINX runs NGINX (nginx.Start) in upstream mode in front of the
// agent and the proxies, in the foreground until the stack stops.
func (s *stack) startNGINX(ctx context.Context, workers int, agentAddr string, proxies []string) error {
	bin, err := nginxBinary()
	if err != nil {
		return err
	}
	runDir := filepath.Join(s.dir, "nginx")
	if err := os.Mkdir(runDir, 0o755); err != nil {
		return err
	}
	n, err := nginx.Start(ctx, bin, nginx.ModeUpstream, nginx.Params{RunDir: runDir, WorkerProcesses: workers,
		Listen: "127.0.0.1:0", Agents: []string{agentAddr}, Proxies: proxies, CookiePrefix: cookiePrefix})
	if err != nil {
		return err
	}
	s.onStop(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Stop(ctx)
	})
	s.nginx = &nginxProc{n}
	s.nginxURL = "http://" + n.Addr()
	s.logs = append(s.logs, func() string {
		if l := n.Log(); l != "" {
			return "nginx error.log:\n" + l
		}
		return ""
	})
	return nil
}

// nginxProc is the running NGINX.
type nginxProc struct{ *nginx.Process }

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
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		fresh := 0
		for _, pid := range childWorkers(n.Pid(), true) {
			if !slicesContains(old, pid) {
				fresh++
			}
		}
		if fresh >= max(1, p.WorkerProcesses) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("nginx: no new worker within 10 s of SIGHUP")
		}
	}
}

// childWorkers lists the PIDs of master's worker processes; with active,
// only those not shutting down.
func childWorkers(master int, active bool) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(master) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if !bytes.Contains(cmdline, []byte("worker process")) {
			continue
		}
		if active && bytes.Contains(cmdline, []byte("shutting down")) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func slicesContains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// nginxBinary finds NGINX (nginx.Binary).
func nginxBinary() (string, error) {
	if p, err := nginx.Binary(); err == nil {
		return p, nil
	}
	return "", errors.New("nginx not found: apt-get install -y nginx (or set NGINX=/path/to/nginx)")
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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

// listen serves the API for proxy i on a free loopback port.
func (u *upstream) listen(onStop func(func())) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	c := &apiCounts{}
	u.counts = append(u.counts, c)
	srv := &fasthttp.Server{
		NoDefaultServerHeader: true,
		ReadBufferSize:        16 << 10,
		Handler: func(ctx *fasthttp.RequestCtx) {
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
		},
	}
	go srv.Serve(ln)
	onStop(func() { srv.Shutdown() })
	return ln.Addr().String(), nil
}
