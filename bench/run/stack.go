package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/examples/devidp"
	"github.com/tokenhandler/tokenhandler/internal/harness"
	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
	"github.com/tokenhandler/tokenhandler/nginx"
	"github.com/tokenhandler/tokenhandler/nginx/nginxtest"
)

const (
	origin       = "http://www.example.localhost:3000" // the SPA's origin, trusted by the proxy
	apiHost      = "api.example.localhost"
	cookiePrefix = "example"
	apiPath      = "/api/data"
	// apiAnswer is the API's answer to every request: 40 bytes of JSON, so
	// that the API is never what limits a variant.
	apiAnswer = `{"id":42,"name":"widget","price":"9.99"}`
)

// stack is every process a run measures, all on loopback. It is used by one
// goroutine.
type stack struct {
	*harness.Stack
	bin   string   // oauth-proxy and thctl
	proxy string   // the oauth-proxy binary startProxy starts (bin's, or -proxy-b)
	key   string   // hex cookie key of every proxy
	token string   // the ~1 KiB JWT-shaped access token
	at    string   // the token sealed with thctl (format v2, purpose at): the example-at cookie's value
	api   string   // host:port of the API
	env   []string // extra environment of every oauth-proxy (-proxy-env)
}

// startStack builds oauth-proxy and thctl, makes a key and the sealed
// token, and starts the API.
func startStack(ctx context.Context, w io.Writer, env []string) (*stack, error) {
	hs, err := harness.New("th-bench-")
	if err != nil {
		return nil, err
	}
	s := &stack{Stack: hs, env: env}
	if s.bin, err = s.Build(ctx, "", "./cmd/oauth-proxy", "./cmd/thctl"); err != nil {
		return s, err
	}
	s.proxy = filepath.Join(s.bin, "oauth-proxy")
	if s.key, err = harness.Thctl(ctx, s.bin, "", "", "keygen"); err != nil {
		return s, err
	}
	s.token = jwtShaped(1024)
	// Format v2, the proxy's default: a P-at of a session of its own (a
	// GET needs no CSRF cookie to share its session ID with).
	if s.at, err = harness.Thctl(ctx, s.bin, s.key, s.token, "seal", "-purpose", "at"); err != nil {
		return s, err
	}
	if s.api, err = s.ServeFast(func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(apiAnswer)
	}); err != nil {
		return s, err
	}
	fmt.Fprintf(w, "bench: built oauth-proxy and thctl; API on %s; token %d bytes, sealed cookie %d bytes\n", s.api, len(s.token), len(s.at))
	return s, nil
}

// stop, deferred with the run's error, stops the stack and prints what the
// processes logged with -v or when the run failed. A nil stack (its
// directory could not be made) has nothing to stop.
func (s *stack) stop(w io.Writer, verbose bool, err *error) {
	if s != nil {
		s.Stop(w, verbose || *err != nil)
	}
}

// jwtShaped returns an access token of n bytes with a JWT's shape: a
// base64url header, claims and a 342-character RS256 signature. Neither
// the proxies nor the API check its signature: the proxy's job is the
// cookie, and the API here answers without looking at the token.
func jwtShaped(n int) string {
	header := b64(`{"alg":"RS256","kid":"bench-1","typ":"at+jwt"}`)
	sig := strings.Repeat("s", 342)
	claims := `{"iss":"https://login.example.com","sub":"bench-user","aud":"api.example.localhost","scope":"openid profile email orders:read","exp":4102444800,"groups":[`
	for i := 0; len(header)+len(b64(claims+`"x"]}`))+len(sig)+2 < n; i++ {
		if i > 0 {
			claims += ","
		}
		claims += fmt.Sprintf(`"/tenants/acme/team-%02d"`, i)
	}
	tok := header + "." + b64(claims+"]}") + "." + sig
	return tok
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// proxyConfig is the configuration of the benchmark's oauth-proxy
// listening on listen ("host:port" or "unix:/path"), routing /api/ to the
// API, with extra YAML appended.
func (s *stack) proxyConfig(listen, extra string) []byte {
	return fmt.Appendf(nil, `# oauth-proxy of the benchmark (bench/run)
listen: %s
cookie: {prefix: %s}
encryption_keys: [%q]
trusted_web_origins: [%q]
routes:
  - {path_prefix: /api/, upstream: "http://%s"}
# One proxy serves both modes here; only NGINX reaches it.
auth_endpoint: true
log: {level: warn, format: json}
%s`, listen, cookiePrefix, s.key, origin, s.api, extra)
}

// process is an oauth-proxy or oauth2-proxy the stack started.
type process struct {
	*harness.Process
	metrics string // oauth-proxy: host:port of its metrics listener
	set     bool   // a worker set (workerSet): the supervisor and its children count
}

// workerSet is the setting of the worker-set variants: one worker per core.
var workerSet = fmt.Sprintf("workers: %d\n", runtime.NumCPU())

// oneProcessor, among a proxy's extra settings, runs that one process with
// GOMAXPROCS=1 (edge-1p: one worker's shape without the set).
const oneProcessor = "# GOMAXPROCS=1\n"

// memory is the status field (VmRSS, VmHWM) of the process, summed over
// its workers for a worker set.
func (p *process) memory(field string) (int64, error) {
	var sum int64
	for _, pid := range withChildren(p.Pid(), p.set) {
		n, err := procStatus(pid, field)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}

// startProxy starts oauth-proxy listening on listen ("host:port" or
// "unix:/path"), routing /api/ to the API, and waits until /readyz says it
// serves.
func (s *stack) startProxy(ctx context.Context, name, listen string, extra ...string) (*process, error) {
	metrics, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(s.Dir, name+".yaml")
	if err := os.WriteFile(conf, s.proxyConfig(listen, "metrics_listen: "+metrics+"\n"+strings.Join(extra, "")), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(s.proxy, "-config", conf)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, s.env...)
	if slices.Contains(extra, oneProcessor) {
		cmd.Env = append(cmd.Env, "GOMAXPROCS=1")
	}
	p, err := s.Start(name, cmd, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &process{p, metrics, slices.Contains(extra, workerSet)}, p.WaitFor(ctx, "not ready", func() bool { return harness.Ready("http://" + metrics + "/readyz") })
}

// startNGINX runs NGINX (nginxtest.Run) with mode rendered for proxies (or,
// for the baseline, the API named as the proxy) of proxyWorkers workers
// each (nginx.Params.ProxyWorkers) and apis, with workers worker processes
// (0: auto), on a free loopback port.
func (s *stack) startNGINX(ctx context.Context, name, mode string, workers, proxyWorkers int, proxies, apis []string) (*nginxtest.Process, error) {
	return s.StartNGINX(ctx, name, mode, nginx.Params{WorkerProcesses: workers, ProxyWorkers: proxyWorkers,
		ServerName: apiHost, Proxies: proxies, APIs: apis, CookiePrefix: cookiePrefix})
}

// startOAuth2Proxy starts oauth2-proxy (bin) in front of the API with the
// development OpenID Provider, in-process, as its OIDC provider, logs in
// once as alice through the authorization code flow and returns the
// process, its address and the session cookies (a Cookie header value).
// oauth2-proxy reads the provider's discovery document and JWKS at start;
// afterwards each request only decrypts and checks its cookie session, and
// the access token outlives the run, so no request reaches the provider.
func (s *stack) startOAuth2Proxy(ctx context.Context, bin string) (*process, string, string, error) {
	addr, err := harness.FreeAddr()
	if err != nil {
		return nil, "", "", err
	}
	callback := "http://" + addr + "/oauth2/callback"
	const clientID, secret = "oauth2-proxy", "bench-client-secret-0123456789abcdef"
	issuer, err := s.StartIdP(devidp.Options{
		Clients:        []devidp.Client{{ID: clientID, Secret: secret, RedirectURIs: []string{callback}}},
		AccessTokenTTL: 2 * time.Hour,
	})
	if err != nil {
		return nil, "", "", err
	}

	cmd := exec.Command(bin,
		"--http-address="+addr,
		"--provider=oidc", "--oidc-issuer-url="+issuer,
		"--client-id="+clientID, "--client-secret="+secret,
		"--code-challenge-method=S256",
		"--redirect-url="+callback,
		"--upstream=http://"+s.api,
		"--email-domain=*",
		"--cookie-secret=0123456789abcdef0123456789abcdef", // 32 bytes: AES-256
		"--cookie-secure=false",
		"--cookie-expire=4h", "--cookie-refresh=0",
		"--skip-provider-button",
		"--request-logging=false", "--auth-logging=false",
	)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	p, err := s.Start("oauth2-proxy", cmd, 10*time.Second)
	if err != nil {
		return nil, "", "", err
	}
	if err := p.WaitFor(ctx, "not ready", func() bool { return harness.Ready("http://" + addr + "/ping") }); err != nil {
		return nil, "", "", err
	}
	cookie, err := loginOAuth2Proxy(ctx, "http://"+addr)
	if err != nil {
		return nil, "", "", fmt.Errorf("oauth2-proxy: logging in through the development IdP: %w", err)
	}
	return &process{Process: p}, addr, cookie, nil
}

// loginOAuth2Proxy goes through oauth2-proxy's login as a browser would,
// submitting the development IdP's login form as alice (devidp.Login), and
// returns the session cookies oauth2-proxy set.
func loginOAuth2Proxy(ctx context.Context, base string) (string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(u string) (*url.URL, error) {
		loc, body, err := oidcfake.Follow(ctx, c, u, nil) // a 302's Location, or an error
		if err == nil && loc == nil {
			p, _ := url.Parse(u) // its query may hold a code: the path alone
			err = fmt.Errorf("%s: no redirect: %.200s", p.Path, body)
		}
		return loc, err
	}
	authURL, err := get(base + "/oauth2/start?rd=%2F")
	if err != nil {
		return "", err
	}
	cb, err := devidp.Login(ctx, c, authURL.String(), "alice")
	if err != nil {
		return "", err
	}
	if cb.Query().Get("code") == "" {
		return "", fmt.Errorf("IdP login form: no code in %s", cb.Redacted())
	}
	if _, err := get(cb.String()); err != nil {
		return "", err
	}
	u, _ := url.Parse(base)
	var parts []string
	for _, ck := range jar.Cookies(u) {
		if strings.HasPrefix(ck.Name, "_oauth2_proxy") && !strings.HasPrefix(ck.Name, "_oauth2_proxy_csrf") {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
	}
	if len(parts) == 0 {
		return "", errors.New("/oauth2/callback set no session cookie")
	}
	return strings.Join(parts, "; "), nil
}

// probe sends one GET of the benchmark to addr with the given headers and
// returns the status.
func probe(addr string, headers [][2]string) (int, error) {
	c, code, body, err := exchange(addr, request(headers))
	if err != nil {
		return 0, err
	}
	c.Close()
	if code == http.StatusOK && body != apiAnswer {
		return 0, fmt.Errorf("answer %q, want the API's %q", body, apiAnswer)
	}
	return code, nil
}

// request is the benchmark's GET with headers, as written on the wire.
func request(headers [][2]string) string {
	var b strings.Builder
	b.WriteString("GET " + apiPath + " HTTP/1.1\r\n")
	for _, h := range headers {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// exchange opens a connection to addr, writes req and reads the answer; it
// returns the connection, still open, with the answer's status and body.
func exchange(addr, req string) (net.Conn, int, string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, 0, "", err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var resp *http.Response
	var body []byte
	_, err = io.WriteString(c, req)
	if err == nil {
		resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	}
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err != nil {
		c.Close()
		return nil, 0, "", err
	}
	return c, resp.StatusCode, string(body), nil
}
