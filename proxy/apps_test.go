package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/metricstest"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/proxy/proxytest"
	"github.com/tokenhandler/tokenhandler/session"
)

// appsConfig returns the Config of a file with apps (issue #15), as
// ParseConfig builds one: the process-wide settings of base at the top
// level, the per-application ones left zero there, and apps, which carry
// the same process-wide settings.
func appsConfig(base *Config, apps ...*Config) *Config {
	return &Config{
		AppSet:         settings.AppSet[*Config]{Apps: apps, AllowSharedKeys: true},
		Listen:         base.Listen,
		MetricsListen:  base.MetricsListen,
		TrustedProxies: base.TrustedProxies,
		Timeouts:       base.Timeouts,
		Limits:         base.Limits,
		Log:            base.Log,
		Revocation:     base.Revocation,
		Workers:        base.Workers,
		Worker:         base.Worker,
	}
}

// appHost is the host name of application name in these tests.
func appHost(name string) string { return name + ".example.localhost" }

// newApp returns the harness of application name, not yet served (see
// serveApps): its own upstream, its cookies sealed with keys (new ones
// when nil) for it alone, and its Config, testConfig with extra added.
func newApp(t *testing.T, name string, keys *proxytest.Keys, extra string) *harness {
	t.Helper()
	up := newUpstream(t)
	k := proxytest.NewKeys(t)
	if keys != nil { // the same keys, another session
		k.Hex, k.Ring, k.Old, k.Codec = keys.Hex, keys.Ring, keys.Old, keys.Codec
	}
	k.Codec = k.Codec.WithApp(name)
	if !strings.Contains(extra, "timeouts:") {
		extra += defaultTimeouts
	}
	if !strings.Contains(extra, "log:") {
		extra += "\nlog: {level: warn}"
	}
	cfg, err := ParseConfig([]byte(testConfig(up.addr, k.Hex[0], k.Hex[1], extra)), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Name, cfg.Hosts = name, []string{appHost(name)}
	return &harness{t: t, up: up, Keys: k, cfg: cfg, host: appHost(name)}
}

// serveApps starts one proxy serving the applications of hs, and makes
// each harness send to it.
func serveApps(t *testing.T, hs ...*harness) *Server {
	t.Helper()
	list := make([]*Config, len(hs))
	for i, h := range hs {
		list[i] = h.cfg
	}
	logs := &bintest.Buffer{}
	srv, err := NewServer(appsConfig(hs[0].cfg, list...), zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	bintest.Serve(t, srv.Serve, srv.Shutdown)
	for _, h := range hs {
		h.srv, h.url, h.logs = srv, "http://"+srv.Addr().String(), logs
	}
	return srv
}

// TestAppsIsolation: two applications on one proxy with the same cookie
// names, under one shared key and under keys of their own. Each one's
// cookies pass at its own host, in upstream mode and at the auth endpoint;
// every cookie of one is refused at the other, both ways: its P-at (whole
// or chunked, on a GET and on a POST with the other's valid CSRF pair), its
// P-csrf beside the other's valid P-at, and both sets sent together. The
// refusals are counted in the refusing application's series.
func TestAppsIsolation(t *testing.T) {
	for _, shared := range []bool{true, false} {
		t.Run(map[bool]string{true: "shared key", false: "own keys"}[shared], func(t *testing.T) {
			shop := newApp(t, "shop", nil, "auth_endpoint: true")
			var keys *proxytest.Keys
			if shared {
				keys = shop.Keys
			}
			admin := newApp(t, "admin", keys, "auth_endpoint: true")
			serveApps(t, shop, admin)
			for _, h := range []*harness{shop, admin} {
				h.t = t
				accepted(t, h, "GET", [][2]string{trusted(), cookie(at(h))}, token)
				accepted(t, h, "POST", append([][2]string{trusted(), cookie(at(h))}, csrfPair(h)...), token)
			}
			for _, pair := range [][2]*harness{{shop, admin}, {admin, shop}} {
				from, to := pair[0], pair[1]
				t.Run(from.cfg.Name+" at "+to.cfg.Name, func(t *testing.T) {
					from.t, to.t = t, t
					fromAT := at(from)
					refused(t, to, "GET", [][2]string{trusted(), cookie(fromAT)}, denyDecrypt, token, fromAT)
					refused(t, to, "GET", [][2]string{trusted(), cookie(from.chunked("example-at", session.AccessToken, 2, token))}, denyDecrypt, token)
					refused(t, to, "POST", append([][2]string{trusted(), cookie(fromAT)}, csrfPair(to)...), denyDecrypt, token, fromAT)
					refused(t, to, "POST", append([][2]string{trusted(), cookie(at(to))}, csrfPair(from)...), denyCSRFInvalid, token)
					// The browser sends both sets: the names are the
					// same, so neither is used.
					refused(t, to, "GET", [][2]string{trusted(), cookie(fromAT), cookie(at(to))}, denyAmbiguous, token, fromAT)
				})
			}
		})
	}
}

// TestAppsUnknownHost: a request whose Host no application has is 404
// with the usual JSON body, without CORS headers, whatever cookies it
// carries; nothing reaches an API. It is counted in
// oauth_proxy_unknown_host_total and logged, without its cookies. A Host
// in another case, with a port or a trailing dot, is the application's.
func TestAppsUnknownHost(t *testing.T) {
	shop := newApp(t, "shop", nil, "auth_endpoint: true\nlog: {level: info}\nmetrics_listen: 127.0.0.1:0")
	admin := newApp(t, "admin", nil, "auth_endpoint: true\nlog: {level: info}\nmetrics_listen: 127.0.0.1:0")
	srv := serveApps(t, shop, admin)
	shopAT := at(shop)
	for _, host := range []string{"www.example.localhost", "example.localhost", "shop.example.localhost.evil", "127.0.0.1"} {
		for _, path := range []string{"/api/things", "/_oauth-proxy/auth"} {
			r := shop.do(request{method: "GET", path: path, headers: [][2]string{header("Host", host), trusted(), cookie(shopAT)}})
			if r.status != 404 || r.body != string(browser.AnswerNotFound.Body) || r.header.Get("Content-Type") != "application/json" {
				t.Errorf("Host %s, GET %s: %d %q, want 404 %s", host, path, r.status, r.body, browser.AnswerNotFound.Body)
			}
			if v := r.header.Get("Access-Control-Allow-Origin") + r.header.Get("Authorization"); v != "" {
				t.Errorf("Host %s, GET %s: the answer has CORS or Authorization headers: %v", host, path, r.header)
			}
		}
	}
	if r, _ := shop.up.Received(); r != nil {
		t.Errorf("the API received %s %s", r.Method, r.URL)
	}
	page, err := metricstest.Scrape(srv.MetricsAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := metricstest.Sample(page, "oauth_proxy_unknown_host_total"); v != "8" {
		t.Errorf("oauth_proxy_unknown_host_total is %q, want 8", v)
	}
	logs := shop.logs.String()
	if !strings.Contains(logs, `"host":"www.example.localhost","status":404,"method":"GET","path":"/api/things"`) ||
		!strings.Contains(logs, `"message":"request for an unknown host"`) {
		t.Errorf("no line for the unknown host:\n%s", logs)
	}
	if strings.Contains(logs, shopAT[:40]) || strings.Contains(logs, token) {
		t.Errorf("the logs hold the cookie or token:\n%s", logs)
	}
	for _, host := range []string{"SHOP.Example.LocalHost", "shop.example.localhost:8443", "shop.example.localhost."} {
		shop.host = host
		accepted(t, shop, "GET", [][2]string{trusted(), cookie(shopAT)}, token)
	}
	shop.host = appHost("shop")

	// A long one (fasthttp answers an empty Host 400 itself).
	for _, host := range []string{strings.Repeat("a", 300)} {
		got := sendRaw(t, shop, "GET /api/things HTTP/1.1\r\nHost: "+host+"\r\nOrigin: "+trustedOrigin+"\r\nCookie: "+shopAT+"\r\n\r\n")
		if got.Status != 404 || got.Body != string(browser.AnswerNotFound.Body) {
			t.Errorf("Host %.20q: %d %q (%v), want 404", host, got.Status, got.Body, got.Err)
		}
	}
	if logs := shop.logs.String(); strings.Contains(logs, strings.Repeat("a", 270)) {
		t.Errorf("a 300-character host is logged whole:\n%s", logs)
	}
}

// TestAppsUnknownHostBurst: requests for unknown hosts go through the
// denial log's limiter: 1,000 within a second give 10 lines, and the first
// of the next second says how many were suppressed.
func TestAppsUnknownHostBurst(t *testing.T) {
	shop := newApp(t, "shop", nil, "log: {level: info}")
	logs := &bintest.Buffer{}
	p, err := New(appsConfig(shop.cfg, shop.cfg), metrics.NewSet(), zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	now := time.Unix(1_700_000_000, 0)
	p.now = func() time.Time { return now }
	for range 1000 {
		if status := serveRaw(t, p, "GET /api/things HTTP/1.1\r\nHost: nowhere.example\r\n\r\n"); status != 404 {
			t.Fatalf("status %d, want 404", status)
		}
	}
	if n := strings.Count(logs.String(), `"message":"request for an unknown host"`); n != 10 {
		t.Errorf("%d lines for 1,000 requests in one second, want 10:\n%s", n, logs)
	}
	now = now.Add(time.Second)
	serveRaw(t, p, "GET /api/things HTTP/1.1\r\nHost: nowhere.example\r\n\r\n")
	if !strings.Contains(logs.String(), `{"level":"info","suppressed":990,"message":"suppressed similar requests for unknown hosts"}`) {
		t.Errorf("no line saying 990 were suppressed:\n%s", logs)
	}
	if n := p.metrics.unknownHost.Get(); n != 1001 {
		t.Errorf("oauth_proxy_unknown_host_total is %d, want 1001", n)
	}
}

// TestAppsMetrics: with apps, every series of a request has its
// application's app label, and none goes without: requests, latency,
// refusals, upstream errors. A denial's log line names the application.
func TestAppsMetrics(t *testing.T) {
	shop := newApp(t, "shop", nil, "log: {level: info}")
	admin := newApp(t, "admin", nil, "log: {level: info}")
	srv := serveApps(t, shop, admin)
	if r := shop.do(request{method: "GET", path: "/api/things", headers: [][2]string{trusted(), cookie(at(shop))}}); r.status != 200 {
		t.Fatalf("shop: %d %s", r.status, r.body)
	}
	if r := admin.do(request{method: "GET", path: "/api/things", headers: [][2]string{trusted(), cookie(at(shop))}}); r.status != 401 {
		t.Fatalf("shop's cookie at admin: %d %s", r.status, r.body)
	}
	shop.up.srv.Close() // the next request's upstream is gone: 502
	if r := shop.do(request{method: "GET", path: "/api/things", headers: [][2]string{trusted(), cookie(at(shop))}}); r.status != 502 {
		t.Fatalf("shop, upstream closed: %d %s", r.status, r.body)
	}
	var b strings.Builder
	srv.Proxy.metrics.set.WritePrometheus(&b)
	page := b.String()
	for _, want := range []string{
		`oauth_proxy_requests_total{app="shop",route="/api/",status="200"} 1`,
		`oauth_proxy_requests_total{app="shop",route="/api/",status="502"} 1`,
		`oauth_proxy_requests_total{app="admin",route="/api/",status="401"} 1`,
		`oauth_proxy_denied_total{app="admin",reason="access_token_cookie_invalid"} 1`,
		`oauth_proxy_denied_total{app="shop",reason="access_token_cookie_invalid"} 0`,
		`oauth_proxy_upstream_errors_total{app="shop",route="/api/",kind="unavailable"} 1`,
		`oauth_proxy_request_duration_seconds_count{app="shop",route="/api/"} 2`,
		`oauth_proxy_unknown_host_total 0`,
	} {
		if !strings.Contains(page, want+"\n") {
			t.Errorf("the page lacks %s", want)
		}
	}
	for line := range strings.Lines(page) {
		if strings.HasPrefix(line, "oauth_proxy_") && !strings.Contains(line, `app="`) &&
			(strings.Contains(line, "route=") || strings.Contains(line, "reason=")) {
			t.Errorf("a series without the app label: %s", line)
		}
	}
	if logs := shop.logs.String(); !strings.Contains(logs, `"app":"admin","reason":"access_token_cookie_invalid"`) {
		t.Errorf("the denial line does not name the application:\n%s", logs)
	}
}

// TestAppsRefused: New refuses a Config with apps that could make one
// application answer for another: a name given twice, a host given twice,
// an application without hosts or with a bad name.
func TestAppsRefused(t *testing.T) {
	shop := newApp(t, "shop", nil, "")
	named := func(name string, hosts ...string) *Config {
		c := *shop.cfg
		c.Name, c.Hosts = name, hosts
		return &c
	}
	for _, tt := range []struct {
		name string
		apps []*Config
		want string
	}{
		{"name twice", []*Config{named("shop", "a.example"), named("shop", "b.example")}, `proxy: apps[1]: the name "shop" is another application's`},
		{"host twice", []*Config{named("shop", "a.example"), named("admin", "b.example", "a.example")}, `proxy: apps[1]: host "a.example" is application "shop"'s too`},
		{"no hosts", []*Config{named("shop", "a.example"), named("admin")}, `proxy: apps[1]: application "admin" has no hosts`},
		{"no name", []*Config{named("", "a.example")}, `proxy: apps[0].name: is required`},
		{"bad name", []*Config{named("Shop", "a.example")}, `proxy: apps[0].name: "Shop" must be`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(appsConfig(shop.cfg, tt.apps...), metrics.NewSet(), zerolog.Nop())
			if err == nil {
				p.Close()
				t.Fatal("New accepted it")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want %q", err, tt.want)
			}
		})
	}
}

// TestAppsReload: requests of an application run in a loop while reloads
// add another application, change it (its keys and its upstream), remove
// it, and change the first one's origins: not one of them fails, and the
// first application's route keeps its upstream pool throughout. After
// each reload the other application answers as the configuration says:
// with its current keys, or 404 once removed.
func TestAppsReload(t *testing.T) {
	shop := newApp(t, "shop", nil, "")
	srv := serveApps(t, shop)
	admin := newApp(t, "admin", nil, "")
	admin2 := newApp(t, "admin", nil, "") // new keys, another upstream
	admin.url = shop.url
	moreOrigins := *shop.cfg
	moreOrigins.TrustedWebOrigins = append([]string{"https://shop.example"}, shop.cfg.TrustedWebOrigins...)
	pool := srv.Proxy.apps.Load().byName["shop"].routes

	var stop atomic.Bool
	var served, failed atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	cookieHeader := at(shop)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A client of its own: requests of several goroutines on
			// one make it dial connections it then leaves unused, which
			// the server's shutdown waits for.
			c := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
			defer c.CloseIdleConnections()
			for !stop.Load() {
				req := bintest.NewRequest(t, "GET", shop.url+"/api/things", [][2]string{header("Host", shop.host), trusted(), cookie(cookieHeader)}, nil, 0)
				resp, err := c.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body) // keeps the connection
					resp.Body.Close()
				}
				served.Add(1)
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprint(err, resp))
				}
			}
		}()
	}
	adminGET := func(h *harness) int {
		return admin.do(request{method: "GET", path: "/api/things", headers: [][2]string{trusted(), cookie(at(h))}}).status
	}
	for i := range 20 {
		for _, step := range []struct {
			apps []*Config
			want int // admin's status with its current cookie
			with *harness
		}{
			{[]*Config{shop.cfg, admin.cfg}, 200, admin},
			{[]*Config{shop.cfg, admin2.cfg}, 200, admin2},
			{[]*Config{&moreOrigins, admin2.cfg}, 401, admin}, // admin's old keys are gone
			{[]*Config{shop.cfg}, 404, admin2},
		} {
			if err := srv.Reload(appsConfig(shop.cfg, step.apps...)); err != nil {
				t.Fatal(err)
			}
			if got := adminGET(step.with); got != step.want {
				t.Fatalf("round %d, apps %d: admin answered %d, want %d", i, len(step.apps), got, step.want)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	if failed.Load() > 0 || served.Load() < 40 {
		t.Errorf("%d of %d requests to shop failed through the reloads (first: %v); want none of at least 40", failed.Load(), served.Load(), firstFailure.Load())
	}
	if now := srv.Proxy.apps.Load().byName["shop"].routes; len(now) != len(pool) || now[0] != pool[0] || now[1] != pool[1] {
		t.Error("shop's routes were rebuilt by reloads that did not change them: its pools were replaced")
	}
	if r, _ := admin2.up.Received(); r == nil {
		t.Error("admin's changed upstream received nothing")
	}
}

// TestAppsReloadRefused: a reload refused leaves the applications as they
// were.
func TestAppsReloadRefused(t *testing.T) {
	shop := newApp(t, "shop", nil, "auth_endpoint: true")
	srv := serveApps(t, shop)
	twice := *shop.cfg
	if err := srv.Reload(appsConfig(shop.cfg, shop.cfg, &twice)); err == nil {
		t.Fatal("a reload with the name twice was accepted")
	}
	accepted(t, shop, "GET", [][2]string{trusted(), cookie(at(shop))}, token)
}

// TestAppsFromYAML: a file with apps, as ParseConfig reads it, serves each
// application at its hosts with its own cookie names, its own routes and
// the key both share (allow_shared_keys): a cookie of one, under its own
// name or moved to the other's, authenticates nowhere else.
func TestAppsFromYAML(t *testing.T) {
	const adminOrigin = "http://admin.example.localhost:3000"
	shopAPI, adminAPI := newUpstream(t), newUpstream(t)
	k := proxytest.NewKeys(t)
	text := fmt.Sprintf(`
listen: 127.0.0.1:0
allow_shared_keys: true
encryption_keys: [%q]
trusted_web_origins: [%q]
auth_endpoint: true
timeouts: {upstream: 2s}
log: {level: warn}
routes: [{path_prefix: /api/, upstream: "http://%s"}]
apps:
  - {name: shop, hosts: [shop.example.localhost], cookie: {prefix: shop}}
  - name: admin
    hosts: [admin.example.localhost, Admin2.Example.Localhost]
    trusted_web_origins: [%q]
    cookie: {prefix: admin}
    routes: [{path_prefix: /api/, upstream: "http://%s"}]
`, k.Hex[0], trustedOrigin, shopAPI.addr, adminOrigin, adminAPI.addr)
	cfg, err := ParseConfig([]byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := map[string]*harness{}
	for _, app := range cfg.Apps {
		ak := proxytest.NewKeys(t)
		ak.Hex, ak.Ring, ak.Codec = k.Hex, k.Ring, k.Codec.WithApp(app.Name)
		up := shopAPI
		if app.Name == "admin" {
			up = adminAPI
		}
		hs[app.Name] = &harness{t: t, up: up, Keys: ak, cfg: app, host: app.Hosts[0]}
	}
	srv, err := NewServer(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	bintest.Serve(t, srv.Serve, srv.Shutdown)
	for _, h := range hs {
		h.srv, h.url = srv, "http://"+srv.Addr().String()
	}
	shop, admin := hs["shop"], hs["admin"]
	atOf := func(h *harness) string { return h.seal(session.AccessToken, token) }
	accepted(t, shop, "GET", [][2]string{trusted(), cookie("shop-at=" + atOf(shop))}, token)
	fromAdmin := header("Origin", adminOrigin)
	accepted(t, admin, "GET", [][2]string{fromAdmin, cookie("admin-at=" + atOf(admin))}, token)
	admin.host = "admin2.example.localhost"
	accepted(t, admin, "POST", [][2]string{fromAdmin, cookie("admin-at=" + atOf(admin) + "; admin-csrf=" + admin.seal(session.CSRF, "c")), header("x-admin-csrf", "c")}, token)
	refused(t, admin, "GET", [][2]string{fromAdmin, cookie("shop-at=" + atOf(shop))}, denyCookieMissing)
	refused(t, admin, "GET", [][2]string{fromAdmin, cookie("admin-at=" + atOf(shop))}, denyDecrypt)
	refused(t, admin, "GET", [][2]string{trusted(), cookie("admin-at=" + atOf(admin))}, denyOrigin)
	refused(t, shop, "GET", [][2]string{trusted(), cookie("shop-at=" + atOf(admin))}, denyDecrypt)
	refused(t, shop, "POST", [][2]string{trusted(), cookie("shop-at=" + atOf(shop) + "; shop-csrf=" + admin.seal(session.CSRF, "c")), header("x-shop-csrf", "c")}, denyCSRFInvalid)
}

// TestAppsReadyz: with apps, /readyz lists each application, answers
// /readyz?app=NAME, and oauth_proxy_ready{app="NAME"} is each one's; a
// reload that removes an application removes it there too.
func TestAppsReadyz(t *testing.T) {
	shop := newApp(t, "shop", nil, "metrics_listen: 127.0.0.1:0")
	admin := newApp(t, "admin", nil, "metrics_listen: 127.0.0.1:0")
	srv := serveApps(t, shop, admin)
	ops := "http://" + srv.MetricsAddr().String()
	get := func(path string) (int, string) {
		resp, body := bintest.Do(t, client, bintest.NewRequest(t, "GET", ops+path, nil, nil, 0))
		return resp.StatusCode, string(body)
	}
	if code, body := get("/readyz"); code != 200 || body != `{"status":"ready","apps":{"admin":"ready","shop":"ready"}}` {
		t.Errorf("/readyz: %d %s", code, body)
	}
	if code, body := get("/readyz?app=admin"); code != 200 || body != `{"app":"admin","status":"ready"}` {
		t.Errorf("/readyz?app=admin: %d %s", code, body)
	}
	page, _ := metricstest.Scrape(srv.MetricsAddr().String())
	if v, _ := metricstest.Sample(page, `oauth_proxy_ready{app="admin"}`); v != "1" {
		t.Errorf(`oauth_proxy_ready{app="admin"} is %q, want 1`, v)
	}
	if err := srv.Reload(appsConfig(shop.cfg, shop.cfg)); err != nil {
		t.Fatal(err)
	}
	if code, body := get("/readyz?app=admin"); code != 404 {
		t.Errorf("/readyz?app=admin after admin was removed: %d %s, want 404", code, body)
	}
	page, _ = metricstest.Scrape(srv.MetricsAddr().String())
	if _, ok := metricstest.Sample(page, `oauth_proxy_ready{app="admin"}`); ok {
		t.Error(`oauth_proxy_ready{app="admin"} is still on the page after admin was removed`)
	}
}
