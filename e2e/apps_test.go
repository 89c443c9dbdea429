//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/examples/api"
	"github.com/tokenhandler/tokenhandler/examples/devidp"
	"github.com/tokenhandler/tokenhandler/examples/spa"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/harness"
	"github.com/tokenhandler/tokenhandler/internal/optest"
	"github.com/tokenhandler/tokenhandler/nginx"
	"github.com/tokenhandler/tokenhandler/nginx/nginxtest"
)

// barePage is a page of each SPA's origin without the SPA's
// Content-Security-Policy, from which apps-flow.mjs calls the other
// application as another page of the site could.
const barePage = "/no-csp.html"

// appsFlowSteps is how many steps apps-flow.mjs runs: all of them must pass.
const appsFlowSteps = 15

// The users of apps-flow.mjs: any login passes oidc-provider's development
// interactions (and is the subject, server.mjs's findAccount); the admin
// console's is a demo user of the development IdP.
const (
	shopUser  = "shopper"
	adminUser = "alice"
)

// TestTwoSPAsThroughNGINX is issue #15's browser test: two applications,
// a shop on oidc-provider and an admin console on the development IdP, each
// with its own hosts, key, cookie prefix and client, served by one built
// oauth-agent and one built oauth-proxy with apps, behind real NGINX
// rendered with one server block per application (nginx.Params.Apps), in
// each of the proxy's modes. apps-flow.mjs, in one Chromium browser
// context: log in to both, call each API and refresh each session, try each
// application's cookies from the other's page (refused), log out of the
// admin console and see the shop go on while the admin API answers 401.
// Then the parts say what they saw: each API was called from its own SPA's
// origin only, the proxy refused each foreign origin once per application,
// the agent counted one login and one refresh per application, the shop's
// provider session was not ended.
func TestTwoSPAsThroughNGINX(t *testing.T) {
	need(t)
	bin := needNGINX(t)
	daemons := buildDaemons(t)
	for _, mode := range []string{nginx.ModeUpstream, nginx.ModeAuthRequest} {
		t.Run(mode, func(t *testing.T) {
			start := time.Now()
			st := startAppsStack(t, bin, daemons, mode)

			browserFlow(t, "apps-flow.mjs", 90*time.Second, fmt.Sprintf("%d passed, 0 failed", appsFlowSteps), "SHOP_URL="+st.shop.url,
				"ADMIN_URL="+st.admin.url, "SHOP_USER="+shopUser, "ADMIN_USER="+adminUser, "METRICS_URL="+st.agentOps)

			// Each API answered its own SPA only: the other SPA's requests
			// with its cookies never got past the proxy (or, in auth_request
			// mode, its auth subrequest).
			for _, a := range []*appSide{st.shop, st.admin} {
				origins, stray := a.api.seen()
				if stray != "" {
					t.Errorf("the API got a request for the host %q", stray)
				}
				if len(origins) != 1 || origins[a.origin] < 2 {
					t.Errorf("%s's API was called from %v, want only from %s, at least twice", a.name, origins, a.origin)
				}
			}
			proxyMetrics := metricsPage(t, st.proxyOps)
			agentMetrics := metricsPage(t, st.agentOps)
			for _, series := range []string{
				`oauth_proxy_denied_total{app="shop",reason="origin"} 1`,
				`oauth_proxy_denied_total{app="admin",reason="origin"} 1`,
				`oauth_proxy_denied_total{app="admin",reason="access_token_cookie_missing"} 1`,
				`oauth_proxy_denied_total{app="shop",reason="access_token_cookie_missing"} 0`,
			} {
				if !strings.Contains(proxyMetrics, "\n"+series+"\n") {
					t.Errorf("the proxy's metrics have no %s", series)
				}
			}
			for _, series := range []string{
				`oauth_agent_logins_total{app="shop",result="ok"} 1`,
				`oauth_agent_logins_total{app="admin",result="ok"} 1`,
				`oauth_agent_refreshes_total{app="shop",result="ok"} 1`,
				`oauth_agent_refreshes_total{app="admin",result="ok"} 1`,
				// The other origin's user info and refresh, at each; and the
				// logged-out admin console's user info.
				`oauth_agent_requests_total{app="shop",endpoint="refresh",status="401"} 1`,
				`oauth_agent_requests_total{app="admin",endpoint="refresh",status="401"} 1`,
				`oauth_agent_requests_total{app="shop",endpoint="userinfo",status="401"} 1`,
				`oauth_agent_requests_total{app="admin",endpoint="userinfo",status="401"} 2`,
			} {
				if !strings.Contains(agentMetrics, "\n"+series+"\n") {
					t.Errorf("the agent's metrics have no %s", series)
				}
			}
			st.op.WaitFor(t, 0, "grant.success refresh_token", 1) // the shop's refresh alone
			if n := st.op.Count(0, "end_session.success"); n != 0 {
				t.Errorf("oidc-provider ended %d sessions: the admin logout reached the shop's provider", n)
			}
			// NGINX saw the refusals: the two pages' calls to the other
			// application's API, user info and refresh, and the logged-out
			// admin console's calls to its API and user info, each 401.
			access := accessLog(t, st.nginx)
			for _, want := range []struct {
				line string
				n    int
			}{{`"GET /api/hello" 401`, 3}, {`"GET /oauth-agent/userInfo" 401`, 3}, {`"POST /oauth-agent/refresh" 401`, 2},
				{`"POST /oauth-agent/refresh" 204`, 2}, {`"POST /oauth-agent/logout" 200`, 1}} {
				if n := strings.Count(access, want.line); n != want.n {
					t.Errorf("NGINX's access log has %d %s, want %d:\n%s", n, want.line, want.n, access)
				}
			}
			t.Logf("%s: the stack and the browser flow took %v", mode, time.Since(start).Round(100*time.Millisecond))
		})
	}
}

// buildDaemons builds oauth-agent and oauth-proxy into a temporary
// directory, once for every mode, and returns it.
func buildDaemons(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", dir+"/", "../cmd/oauth-agent", "../cmd/oauth-proxy")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// appSide is one application of an appsStack: its SPA and the API it calls.
type appSide struct {
	name   string
	url    string // the SPA's page
	origin string // the SPA's origin
	host   string // the agent's and the API's host, through NGINX
	key    crypto.Key
	api    *originLog
}

// appsStack is two applications of one built agent and one built proxy
// behind NGINX, all on loopback.
type appsStack struct {
	shop, admin        *appSide
	op                 *optest.Provider
	nginx              *nginxtest.Process
	agentOps, proxyOps string // the daemons' metrics listeners
}

// startAppsStack starts an appsStack with NGINX (bin) in mode and the
// daemons built in daemons, until the test ends: the shop's SPA on
// www.shop.example.localhost with oidc-provider, the admin console's on
// admin.example.localhost with the development IdP; their agent and API on
// api.shop.example.localhost and api.admin.example.localhost, NGINX's
// port.
func startAppsStack(t *testing.T, bin, daemons, mode string) *appsStack {
	t.Helper()
	s, err := harness.New("e2e-apps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var logs strings.Builder
		s.Stop(&logs, t.Failed())
		if t.Failed() {
			t.Logf("the daemons' logs:\n%s", logs.String())
		}
	})

	st := &appsStack{}
	shopLn, adminLn := listen(t), listen(t)
	side := func(name, www string, ln net.Listener) *appSide {
		origin := fmt.Sprintf("http://%s:%d", www, ln.Addr().(*net.TCPAddr).Port)
		return &appSide{name: name, url: origin + "/", origin: origin, host: "api." + name + ".example.localhost",
			key: crypto.GenerateKey(), api: &originLog{}}
	}
	st.shop, st.admin = side("shop", "www.shop.example.localhost", shopLn), side("admin", "admin.example.localhost", adminLn)

	// The providers: oidc-provider's spa-client for the shop, the
	// development IdP's admin-console for the admin console.
	shopSecret, adminSecret := rand.Text(), rand.Text()
	st.op = optest.Start(t, optest.Options{ClientSecret: shopSecret, RedirectURI: st.shop.url})
	idp, err := s.StartIdP(devidp.Options{Clients: []devidp.Client{{ID: "admin-console", Secret: adminSecret,
		RedirectURIs: []string{st.admin.url}, PostLogoutRedirectURIs: []string{st.admin.url}}}})
	if err != nil {
		t.Fatal(err)
	}

	// The APIs: the shop's checks oidc-provider's opaque tokens at its
	// userinfo endpoint, the admin console's the development IdP's JWTs.
	var opMeta, idpMeta struct {
		Userinfo string `json:"userinfo_endpoint"`
		JWKS     string `json:"jwks_uri"`
	}
	getJSON(t, st.op.Issuer+"/.well-known/openid-configuration", &opMeta)
	getJSON(t, idp+"/.well-known/openid-configuration", &idpMeta)
	shopAPI, shopHandler := newAPI(t, api.Options{UserinfoURL: opMeta.Userinfo, UserinfoCacheTTL: apiUserinfoTTL}, st.shop.api)
	adminAPI, adminHandler := newAPI(t, api.Options{Issuer: idp, JWKSURL: idpMeta.JWKS, Audience: devidp.DefaultAudience}, st.admin.api)

	// The daemons, with apps.
	agentListen, proxyListen := bintest.FreeTCPAddr(t), bintest.FreeTCPAddr(t)
	agentOps, proxyOps := bintest.FreeTCPAddr(t), bintest.FreeTCPAddr(t)
	st.agentOps, st.proxyOps = "http://"+agentOps, "http://"+proxyOps
	agentYAML := appsFileTop(agentListen, agentOps, "{as: 10s, shutdown: 5s}") + fmt.Sprintf(`  - name: shop
    hosts: [%s]
    issuer: %q
    client_id: spa-client
    client_secret: %q
    redirect_uri: %q
    post_logout_redirect_uri: %q
    trusted_web_origins: [%q]
    cookie: {prefix: shop}
    encryption_keys: [%q]
  - name: admin
    hosts: [%s]
    issuer: %q
    client_id: admin-console
    client_secret: %q
    redirect_uri: %q
    post_logout_redirect_uri: %q
    trusted_web_origins: [%q]
    cookie: {prefix: admin}
    encryption_keys: [%q]
`,
		st.shop.host, st.op.Issuer, shopSecret, st.shop.url, st.shop.url, st.shop.origin, st.shop.key.AppendHex(nil),
		st.admin.host, idp, adminSecret, st.admin.url, st.admin.url, st.admin.origin, st.admin.key.AppendHex(nil))
	// Upstream mode: each application's route to its own API. auth_request
	// mode: no routes (the auth endpoint is on), and NGINX calls one API
	// address that answers each application's Host with its API.
	routes := func(addr string) string {
		if mode != nginx.ModeUpstream {
			return ""
		}
		return fmt.Sprintf("\n    routes: [{path_prefix: /api/, upstream: \"http://%s\"}]", addr)
	}
	proxyYAML := appsFileTop(proxyListen, proxyOps, "{upstream: 10s, shutdown: 5s}") + fmt.Sprintf(`  - name: shop
    hosts: [%s]
    trusted_web_origins: [%q]
    cookie: {prefix: shop}
    encryption_keys: [%q]%s
  - name: admin
    hosts: [%s]
    trusted_web_origins: [%q]
    cookie: {prefix: admin}
    encryption_keys: [%q]%s
`,
		st.shop.host, st.shop.origin, st.shop.key.AppendHex(nil), routes(shopAPI),
		st.admin.host, st.admin.origin, st.admin.key.AppendHex(nil), routes(adminAPI))
	startDaemon(t, s, filepath.Join(daemons, "oauth-agent"), agentYAML,
		st.agentOps+"/readyz?app=shop", st.agentOps+"/readyz?app=admin")
	startDaemon(t, s, filepath.Join(daemons, "oauth-proxy"), proxyYAML, st.proxyOps+"/readyz")

	apis := []string{shopAPI}
	if mode == nginx.ModeAuthRequest {
		apis = []string{serveFast(t, byHost(map[string]fasthttp.RequestHandler{
			st.shop.host: shopHandler, st.admin.host: adminHandler}, st.shop.api))}
	}
	st.nginx = nginxtest.Start(t, bin, mode, nginx.Params{
		Apps: []nginx.App{
			{Name: "shop", ServerNames: []string{st.shop.host}, CookiePrefix: "shop"},
			{Name: "admin", ServerNames: []string{st.admin.host}, CookiePrefix: "admin"},
		},
		Agents:  []string{agentListen},
		Proxies: []string{proxyListen},
		APIs:    apis,
	})
	_, port, _ := net.SplitHostPort(st.nginx.Addr())
	for _, a := range []struct {
		side  *appSide
		ln    net.Listener
		title string
	}{{st.shop, shopLn, "Shop"}, {st.admin, adminLn, "Admin console"}} {
		base := "http://" + a.side.host + ":" + port
		mux := http.NewServeMux()
		mux.Handle("/", spa.Handler(spa.Config{AgentBaseURL: base + "/oauth-agent", APIBaseURL: base + "/api",
			CookieNamePrefix: a.side.name, Title: a.title}))
		mux.HandleFunc("GET "+barePage, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, "<!doctype html><title>no CSP</title>\n")
		})
		serveHTTP(t, a.ln, mux)
	}
	return st
}

// startDaemon runs the built daemon at path with the configuration yaml in
// s until the test ends, and waits until every one of ready answers 200;
// the test fails unless the daemon then exits 0 on SIGTERM.
func startDaemon(t *testing.T, s *harness.Stack, path, yaml string, ready ...string) {
	t.Helper()
	name := filepath.Base(path)
	config := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := s.Start(name, exec.Command(path, "-config", config), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s.OnStop(func() {
		p.Stop()
		if err := p.ExitErr(); err != nil {
			t.Errorf("%s did not exit cleanly on SIGTERM: %v", name, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, url := range ready {
		if err := harness.Wait(ctx, 30*time.Second, 20*time.Millisecond, url+" to answer 200", func() bool {
			select {
			case <-p.Exited():
				return true
			default:
				return harness.Ready(url)
			}
		}); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, p.Log())
		}
		select {
		case <-p.Exited():
			t.Fatalf("%s exited at start (%v):\n%s", name, p.ExitErr(), p.Log())
		default:
		}
	}
}

// originLog is what an API saw: the Origin of each request, and a Host no
// application has. It is safe for concurrent use.
type originLog struct {
	mu      sync.Mutex
	origins map[string]int
	stray   string
}

func (l *originLog) add(origin string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.origins == nil {
		l.origins = make(map[string]int)
	}
	l.origins[origin]++
}

func (l *originLog) strayHost(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stray = host
}

// seen returns the requests by Origin so far, and a stray Host ("" if none).
func (l *originLog) seen() (map[string]int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]int, len(l.origins))
	for k, v := range l.origins {
		m[k] = v
	}
	return m, l.stray
}

// newAPI serves the demo API with opts on a free loopback port until the
// test ends, logging each request's Origin in log, and returns its address
// and its handler (which logs too).
func newAPI(t *testing.T, opts api.Options, log *originLog) (string, fasthttp.RequestHandler) {
	t.Helper()
	a, err := api.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h := func(ctx *fasthttp.RequestCtx) {
		log.add(string(ctx.Request.Header.Peek("Origin")))
		a.Handler(ctx)
	}
	return serveFast(t, h), h
}

// serveFast serves h with fasthttp on a free loopback port until the test
// ends, and returns its address.
func serveFast(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln := listen(t)
	srv := &fasthttp.Server{Handler: h, NoDefaultServerHeader: true}
	bintest.Serve(t, func() error { return srv.Serve(ln) }, srv.ShutdownWithContext)
	return ln.Addr().String()
}

// byHost is the one API address NGINX calls in auth_request mode: it hands
// each request to the handler of its Host (NGINX sends the browser's host
// without the port), and answers any other host 421, noting it in stray.
func byHost(apis map[string]fasthttp.RequestHandler, stray *originLog) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if h, ok := apis[string(ctx.Host())]; ok {
			h(ctx)
			return
		}
		stray.strayHost(string(ctx.Host()))
		ctx.SetStatusCode(fasthttp.StatusMisdirectedRequest)
	}
}

// metricsPage returns the metrics page at the listener url.
func metricsPage(t *testing.T, url string) string {
	t.Helper()
	code, body, err := bintest.Get(&http.Client{Timeout: 10 * time.Second}, url+"/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s/metrics: %d %v", url, code, err)
	}
	return "\n" + body
}

// appsFileTop is the top level of a daemon's file, listening on listen
// and ops with timeouts (YAML), up to the apps: that its entries follow.
func appsFileTop(listen, ops, timeouts string) string {
	return fmt.Sprintf(`listen: %q
metrics_listen: %q
log: {level: info, format: json}
revocation: {store: off}
timeouts: %s
apps:
`, listen, ops, timeouts)
}
