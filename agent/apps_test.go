package agent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/agent/astest"
	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/internal/spatest"
)

// appConfig is application name's configuration against as, answering
// name.example.localhost with the SPA at http://name.example.localhost:3000.
func appConfig(as *astest.Server, name string) *Config {
	c := testConfig(as)
	c.Name, c.Hosts = name, []string{name + ".example.localhost"}
	c.TrustedWebOrigins = []string{appOrigin(name)}
	c.PostLogoutRedirectURI = appOrigin(name) + "/"
	c.RedirectURI = as.RedirectURI
	return c
}

func appOrigin(name string) string { return "http://" + name + ".example.localhost:3000" }

// appsAgent is one agent serving applications on a loopback port, each on
// its own fake Authorization Server.
type appsAgent struct {
	t     *testing.T
	agent *Agent
	cfg   *Config
	url   string
	logs  *bintest.Buffer
	clock *clock
	reg   *metrics.Set
}

// startApps starts an agent with one application per name, each on a new
// fake AS, all with cookie prefix "example" (the names a browser could
// confuse); change edits the file before New.
func startApps(t *testing.T, names []string, change func(top *Config)) *appsAgent {
	t.Helper()
	clk := &clock{}
	top := &Config{Log: Log{Level: zerolog.WarnLevel}, Now: clk.now}
	for _, name := range names {
		as := astest.New(t, astest.Options{RedirectURI: appOrigin(name) + "/"})
		top.Apps = append(top.Apps, appConfig(as, name))
	}
	if change != nil {
		change(top)
	}
	if top.Timeouts.AS == 0 {
		top.Timeouts = top.Apps[0].Timeouts
	}
	logs := &bintest.Buffer{}
	reg := metrics.NewSet()
	a, url := serveAgent(t, top, reg, logs)
	return &appsAgent{t: t, agent: a, cfg: top, url: url, logs: logs, clock: clk, reg: reg}
}

// app returns the test harness of the application name, its AS the one it
// was started with, once its metadata is loaded.
func (x *appsAgent) app(name string, as *astest.Server) *testAgent {
	x.t.Helper()
	var cfg *Config
	for _, c := range x.cfg.Apps {
		if c.Name == name {
			cfg = c
		}
	}
	if !bintest.Within(5*time.Second, func() bool {
		st := x.agent.table.Load().app(name)
		return st != nil && st.as.provider.Load() != nil
	}) {
		x.t.Fatalf("application %s did not load its AS metadata within 5s; logs:\n%s", name, x.logs.String())
	}
	return &testAgent{t: x.t, as: as, agent: x.agent, cfg: cfg, url: x.url, logs: x.logs, clock: x.clock,
		host: cfg.Hosts[0], origin: cfg.TrustedWebOrigins[0]}
}

// state returns the running state of the application name.
func (x *appsAgent) state(name string) *state { return x.agent.table.Load().app(name) }

// two starts an agent with the applications shop and admin on two
// providers and returns them logged in, each in its own browser.
func two(t *testing.T, change func(top *Config)) (x *appsAgent, shop, admin *testAgent, bShop, bAdmin *spatest.Browser) {
	t.Helper()
	asShop := astest.New(t, astest.Options{RedirectURI: appOrigin("shop") + "/"})
	asAdmin := astest.New(t, astest.Options{RedirectURI: appOrigin("admin") + "/"})
	x = startApps(t, nil, func(top *Config) {
		top.Apps = []*Config{appConfig(asShop, "shop"), appConfig(asAdmin, "admin")}
		if change != nil {
			change(top)
		}
	})
	shop, admin = x.app("shop", asShop), x.app("admin", asAdmin)
	bShop, bAdmin = shop.spa(), admin.spa()
	shop.login(bShop)
	admin.login(bAdmin)
	return x, shop, admin, bShop, bAdmin
}

// withCookie returns a copy of b whose cookie name is from's.
func withCookie(b, from *spatest.Browser, name string) *spatest.Browser {
	c := b.Clone()
	for k, v := range c.Cookies {
		if v.Name == name {
			delete(c.Cookies, k)
		}
	}
	for k, v := range from.Cookies {
		if v.Name == name {
			cp := *v
			c.Cookies[k] = &cp
		}
	}
	return c
}

// TestAppsCookiesIsolated: two applications on two providers, both logged
// in with cookies of the same names. Every cookie of one (login, at, auth,
// id, csrf) is refused by the other, both ways: with a key ring each, and
// with one key both share (allow_shared_keys), where only the
// application's name in the cookie's associated data tells them apart.
func TestAppsCookiesIsolated(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared_key=%v", shared), func(t *testing.T) {
			x, shop, admin, bShop, bAdmin := two(t, func(top *Config) {
				if shared {
					top.AllowSharedKeys = true
					top.Apps[1].Keys = top.Apps[0].Keys
				}
			})
			// A login in progress at each, for P-login.
			starts := map[string]*spatest.Browser{}
			redirects := map[string]string{}
			for _, a := range []*testAgent{shop, admin} {
				b := a.spa()
				r := a.call(b, "POST", "/oauth-agent/login/start", nil)
				u, err := a.as.Authorize(r.JSON()["authorizationRequestUrl"].(string))
				if err != nil {
					t.Fatal(err)
				}
				starts[a.cfg.Name], redirects[a.cfg.Name] = b, u.String()
			}
			for _, dir := range []struct {
				from, to     *testAgent
				bFrom, bTo   *spatest.Browser
				fromN, toN   string
				toAS, fromAS *astest.Server
			}{
				{shop, admin, bShop, bAdmin, "shop", "admin", admin.as, shop.as},
				{admin, shop, bAdmin, bShop, "admin", "shop", shop.as, admin.as},
			} {
				to := dir.to
				// Each cookie, opened by the jar of either application:
				// its own opens it, the other's does not.
				stFrom, stTo := x.state(dir.fromN), x.state(dir.toN)
				for _, name := range []string{"example-login", "example-at", "example-auth", "example-id", "example-csrf"} {
					src := dir.bFrom
					if name == "example-login" {
						src = starts[dir.fromN]
					}
					c := src.Cookie(name)
					if c == nil {
						t.Fatalf("%s: no %s", dir.fromN, name)
					}
					if !opensAt(stFrom, name, c.Value) {
						t.Fatalf("%s's %s does not open at %s", dir.fromN, name, dir.fromN)
					}
					if opensAt(stTo, name, c.Value) {
						t.Errorf("%s's %s opens at %s", dir.fromN, name, dir.toN)
					}
				}

				// Through the socket. P-at alone: the page load at the
				// other application is not logged in.
				b := withCookie(to.spa(), dir.bFrom, "example-at")
				if r := to.call(b, "POST", "/oauth-agent/login/end", nil); r.Status != 200 || r.JSON()["isLoggedIn"] != false {
					t.Errorf("%s's P-at at %s: %d %s, want not logged in", dir.fromN, dir.toN, r.Status, r.Body)
				}
				// P-id alone: no claims.
				b = withCookie(to.spa(), dir.bFrom, "example-id")
				if r := to.call(b, "GET", "/oauth-agent/claims", nil); r.Status != 401 {
					t.Errorf("%s's P-id at %s: %d %s, want 401", dir.fromN, dir.toN, r.Status, r.Body)
				}
				// P-auth and P-csrf with the CSRF header: no refresh, and
				// the other AS sees no grant.
				before := dir.toAS.Count("token:refresh_token")
				b = withCookie(withCookie(to.spa(), dir.bFrom, "example-auth"), dir.bFrom, "example-csrf")
				b.CSRF = dir.bFrom.CSRF
				if r := to.call(b, "POST", "/oauth-agent/refresh", nil); r.Status != 401 {
					t.Errorf("%s's P-auth and P-csrf at %s: %d %s, want 401", dir.fromN, dir.toN, r.Status, r.Body)
				}
				// Its own session with the other's P-csrf and header.
				b = withCookie(dir.bTo, dir.bFrom, "example-csrf")
				b.CSRF = dir.bFrom.CSRF
				if r := to.call(b, "POST", "/oauth-agent/refresh", nil); r.Status != 401 {
					t.Errorf("%s's P-csrf at %s: %d %s, want 401", dir.fromN, dir.toN, r.Status, r.Body)
				}
				if got := dir.toAS.Count("token:refresh_token"); got != before {
					t.Errorf("%s's AS saw %d refresh grants for %s's cookies", dir.toN, got-before, dir.fromN)
				}
				// P-login with the authorization response it was for.
				b = withCookie(to.spa(), starts[dir.fromN], "example-login")
				if r := to.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": redirects[dir.fromN]}); r.Status != 400 {
					t.Errorf("%s's P-login at %s: %d %s, want 400", dir.fromN, dir.toN, r.Status, r.Body)
				}
				// Its own cookies still work where they belong.
				if r := to.call(dir.bTo.Clone(), "GET", "/oauth-agent/userInfo", nil); r.Status != 200 {
					t.Errorf("%s's own session: %d %s", dir.toN, r.Status, r.Body)
				}
			}
		})
	}
}

// opensAt reports whether a cookie value opens as cookie name at the
// application st.
func opensAt(st *state, name, value string) bool {
	var c *browser.Cookie
	n := st.jar.names
	for _, k := range []*browser.Cookie{&n.Login, &n.AccessToken, &n.RefreshToken, &n.IDToken, &n.CSRF} {
		if k.Name == name {
			c = k
		}
	}
	req := &request{raw: browser.RawCookies([][]byte{[]byte(name + "=" + value)})}
	n.Scan(&req.found, &req.raw)
	_, ok := st.jar.open(req, c)
	return ok
}

// TestAppsRefreshAndLogoutIsolated: a refresh and a logout at one
// application touch only it: the other's AS sees nothing, its session
// keeps working, its series do not move.
func TestAppsRefreshAndLogoutIsolated(t *testing.T) {
	x, shop, admin, bShop, bAdmin := two(t, nil)
	adminAT := bAdmin.Cookie("example-at").Value
	if r := shop.call(bShop, "POST", "/oauth-agent/refresh", nil); r.Status != 204 {
		t.Fatalf("refresh at shop: %d %s", r.Status, r.Body)
	}
	if shop.as.Count("token:refresh_token") != 1 || admin.as.Count("token:refresh_token") != 0 {
		t.Errorf("refresh grants: shop's AS %d, admin's %d; want 1, 0", shop.as.Count("token:refresh_token"), admin.as.Count("token:refresh_token"))
	}
	if got := shop.metric(`oauth_agent_refreshes_total{app="shop",result="ok"}`); got != "1" {
		t.Errorf(`refreshes{app="shop",result="ok"} = %q, want 1`, got)
	}
	if got := shop.metric(`oauth_agent_refreshes_total{app="admin",result="ok"}`); got != "" {
		t.Errorf(`refreshes{app="admin"} = %q, want none`, got)
	}
	if r := shop.call(bShop, "POST", "/oauth-agent/logout", nil); r.Status != 200 || !strings.HasPrefix(r.JSON()["url"].(string), shop.as.URL) {
		t.Fatalf("logout at shop: %d %s", r.Status, r.Body)
	}
	if r := shop.call(bShop, "GET", "/oauth-agent/userInfo", nil); r.Status != 401 {
		t.Errorf("shop after its logout: %d", r.Status)
	}
	if bAdmin.Cookie("example-at").Value != adminAT {
		t.Error("admin's cookies changed")
	}
	if r := admin.call(bAdmin, "GET", "/oauth-agent/userInfo", nil); r.Status != 200 {
		t.Errorf("admin after shop's refresh and logout: %d %s", r.Status, r.Body)
	}
	if r := admin.call(bAdmin, "POST", "/oauth-agent/refresh", nil); r.Status != 204 {
		t.Errorf("admin's refresh: %d %s", r.Status, r.Body)
	}
	if admin.as.Count("end_session") != 0 && admin.as.Count("revocation") != 0 {
		t.Error("shop's logout reached admin's AS")
	}
	if got := shop.metric(`oauth_agent_requests_total{app="admin",endpoint="logout",status="200"}`); got != "" {
		t.Errorf("admin counted shop's logout: %s", got)
	}
	_ = x
}

// TestAppsRefreshKeys: the refresher's flights and grace results are the
// application's. A refresh at admin with the session key and refresh token
// of a refresh at shop, in flight or finished within the grace period,
// neither joins nor reuses it: admin's AS gets its own grant. A logout at
// shop drops shop's results only.
func TestAppsRefreshKeys(t *testing.T) {
	x, shop, admin, bShop, bAdmin := two(t, nil)
	stShop, stAdmin := x.state("shop"), x.state("admin")
	pShop, pAdmin := stShop.as.provider.Load(), stAdmin.as.provider.Load()
	r := x.agent.refresh
	ctx := context.Background()
	sess := [32]byte{7}
	rtShop := openCookie(t, stShop, bShop, "example-auth")
	rtAdmin := openCookie(t, stAdmin, bAdmin, "example-auth")

	// In flight: shop's grant waits at its AS.
	shop.as.Set(func(f *astest.Faults) { f.TokenDelay = 500 * time.Millisecond })
	var wg sync.WaitGroup
	var shopErr error
	wg.Go(func() { _, shopErr = r.do(ctx, stShop, pShop, sess, rtShop) })
	if !bintest.Within(5*time.Second, func() bool { return shop.as.Count("token:refresh_token") == 1 }) {
		t.Fatal("shop's grant did not reach its AS")
	}
	if _, err := r.do(ctx, stAdmin, pAdmin, sess, rtShop); err == nil {
		t.Error("admin joined shop's flight: it got shop's tokens")
	}
	wg.Wait()
	if shopErr != nil {
		t.Fatal(shopErr)
	}
	if got := admin.as.Count("token:refresh_token"); got != 1 {
		t.Errorf("admin's AS saw %d grants while shop's was in flight, want 1", got)
	}
	// Finished: shop's result is kept for the grace period.
	if _, err := r.do(ctx, stAdmin, pAdmin, sess, rtShop); err == nil {
		t.Error("admin reused shop's grace result")
	}
	if got := admin.as.Count("token:refresh_token"); got != 2 {
		t.Errorf("admin's AS saw %d grants, want 2", got)
	}
	if _, err := r.do(ctx, stShop, pShop, sess, rtShop); err != nil || shop.as.Count("token:refresh_token") != 1 {
		t.Errorf("shop's replay within the grace: %v, %d grants", err, shop.as.Count("token:refresh_token"))
	}
	// A result at admin for the same session key; a logout at shop drops
	// shop's only.
	if _, err := r.do(ctx, stAdmin, pAdmin, sess, rtAdmin); err != nil {
		t.Fatal(err)
	}
	r.drop(stShop, sess)
	r.mu.Lock()
	_, shopKept := r.entries[flightKey(appSession(stShop, sess), rtShop)]
	_, adminKept := r.entries[flightKey(appSession(stAdmin, sess), rtAdmin)]
	r.mu.Unlock()
	if shopKept || !adminKept {
		t.Errorf("after shop's logout: shop's result kept %v, admin's %v; want false, true", shopKept, adminKept)
	}
}

// openCookie opens b's cookie name at the application st.
func openCookie(t *testing.T, st *state, b *spatest.Browser, name string) string {
	t.Helper()
	req := &request{raw: browser.RawCookies([][]byte{[]byte(name + "=" + b.Cookie(name).Value)})}
	st.jar.names.Scan(&req.found, &req.raw)
	for _, c := range []*browser.Cookie{&st.jar.names.RefreshToken, &st.jar.names.AccessToken} {
		if c.Name == name {
			if o, ok := st.jar.open(req, c); ok {
				return string(o.value)
			}
		}
	}
	t.Fatalf("%s does not open", name)
	return ""
}

// TestAppsProviderDown: with admin's provider stopped, shop keeps working
// and admin answers 502 where it needs its AS.
func TestAppsProviderDown(t *testing.T) {
	_, shop, admin, bShop, bAdmin := two(t, nil)
	admin.as.Close()
	if r := admin.call(bAdmin, "GET", "/oauth-agent/userInfo", nil); r.Status != 502 || r.Code() != "authorization_server_error" {
		t.Errorf("admin without its AS: %d %s, want 502", r.Status, r.Body)
	}
	if r := shop.call(bShop, "GET", "/oauth-agent/userInfo", nil); r.Status != 200 {
		t.Errorf("shop: %d %s", r.Status, r.Body)
	}
	if r := shop.call(bShop, "POST", "/oauth-agent/refresh", nil); r.Status != 204 {
		t.Errorf("shop's refresh: %d %s", r.Status, r.Body)
	}
	b := shop.spa()
	shop.login(b)
}

// TestAppsNotDiscovered: an application whose provider never answers
// answers 502 (login/start needs the metadata), the other logs in.
func TestAppsNotDiscovered(t *testing.T) {
	down := astest.New(t, astest.Options{RedirectURI: appOrigin("admin") + "/"})
	down.Close()
	asShop := astest.New(t, astest.Options{RedirectURI: appOrigin("shop") + "/"})
	x := startApps(t, nil, func(top *Config) {
		top.Apps = []*Config{appConfig(asShop, "shop"), appConfig(down, "admin")}
	})
	shop := x.app("shop", asShop)
	shop.login(shop.spa())
	if !x.agent.Ready() {
		t.Error("not ready with one application ready")
	}
	admin := &testAgent{t: t, agent: x.agent, url: x.url, host: "admin.example.localhost", origin: appOrigin("admin")}
	if r := admin.call(admin.spa(), "POST", "/oauth-agent/login/start", nil); r.Status != 502 {
		t.Errorf("admin's login/start without metadata: %d %s", r.Status, r.Body)
	}
}

// TestAppsBackchannelLogout: a logout token is checked against the
// application it is posted to: shop's provider's token ends shop's session
// at shop's endpoint, is refused at admin's (another issuer and client),
// and admin's session keeps working.
func TestAppsBackchannelLogout(t *testing.T) {
	asShop := astest.New(t, astest.Options{RedirectURI: appOrigin("shop") + "/"})
	asAdmin := astest.New(t, astest.Options{RedirectURI: appOrigin("admin") + "/"})
	x := startApps(t, nil, func(top *Config) {
		top.Apps = []*Config{appConfig(asShop, "shop"), appConfig(asAdmin, "admin")}
	})
	shop, admin := x.app("shop", asShop), x.app("admin", asAdmin)
	bShop := shop.loginIn("sid-shop")
	bAdmin := admin.loginIn("sid-admin")
	claims := asShop.LogoutClaims(asShop.Subject(), "sid-shop", x.clock.now())
	_, form := shop.logoutForm(claims, astest.Signing{})
	if r := admin.postLogout("application/x-www-form-urlencoded", form); r.status != 400 {
		t.Errorf("shop's logout token at admin: %d %s, want 400", r.status, r.body)
	}
	if got := shop.metric(`oauth_agent_backchannel_logouts_total{app="admin",result="invalid_token"}`); got != "1" {
		t.Errorf(`backchannel_logouts{app="admin",result="invalid_token"} = %q, want 1`, got)
	}
	if r := shop.postLogout("application/x-www-form-urlencoded", form); r.status != 200 {
		t.Fatalf("shop's logout token at shop: %d %s", r.status, r.body)
	}
	wantRevoked(t, shop, bShop)
	if r := admin.call(bAdmin, "GET", "/oauth-agent/userInfo", nil); r.Status != 200 {
		t.Errorf("admin after shop's back-channel logout: %d %s", r.Status, r.Body)
	}
}

// TestAppsSelection: the host picks the applications, the longest base_path
// that is a path-segment prefix of the request's path picks one of them;
// an unknown host, or a path under no base_path, is 404 not_found, counted
// in oauth_agent_unknown_host_total.
func TestAppsSelection(t *testing.T) {
	asA := astest.New(t, astest.Options{RedirectURI: appOrigin("shop") + "/"})
	asB := astest.New(t, astest.Options{RedirectURI: appOrigin("shop") + "/"})
	x := startApps(t, nil, func(top *Config) {
		a, b := appConfig(asA, "shop"), appConfig(asB, "shopadmin")
		a.BasePath, b.BasePath = "/auth", "/auth/admin"
		b.Hosts = []string{"Shop.Example.Localhost"}
		b.TrustedWebOrigins = a.TrustedWebOrigins
		c := appConfig(asB, "other")
		top.Apps = []*Config{a, b, c}
	})
	x.app("shop", asA)
	x.app("shopadmin", asB)
	call := func(host, path string) spatest.Answer {
		b := spatest.New(t, appOrigin("shop"))
		b.Host = host
		return b.Call("POST", x.url+path, nil)
	}
	for _, tt := range []struct {
		host, path string
		issuer     string // the AS of the application that answered; "" for 404
	}{
		{"shop.example.localhost", "/auth/login/start", asA.URL},
		{"SHOP.example.localhost:443", "/auth/login/start", asA.URL},
		{"shop.example.localhost.", "/auth/login/start", asA.URL},
		{"shop.example.localhost", "/auth/admin/login/start", asB.URL},
		{"shop.example.localhost", "/authx/login/start", ""},
		{"shop.example.localhost", "/oauth-agent/login/start", ""},
		{"other.example.localhost", "/auth/login/start", ""},
		{"unknown.example.localhost", "/oauth-agent/login/start", ""},
		{"127.0.0.1", "/oauth-agent/login/start", ""}, // the listener's address
	} {
		before := x.unknown()
		r := call(tt.host, tt.path)
		if tt.issuer == "" {
			if r.Status != 404 || r.Code() != "not_found" || x.unknown() != before+1 {
				t.Errorf("%q %s: %d %s, unknown host counted %d; want 404 not_found, counted", tt.host, tt.path, r.Status, r.Body, x.unknown()-before)
			}
			continue
		}
		u, _ := r.JSON()["authorizationRequestUrl"].(string)
		if r.Status != 200 || !strings.HasPrefix(u, tt.issuer+"/") {
			t.Errorf("%q %s: %d %s, want an authorization request to %s", tt.host, tt.path, r.Status, r.Body, tt.issuer)
		}
		if x.unknown() != before {
			t.Errorf("%q %s: counted as an unknown host", tt.host, tt.path)
		}
	}
	// Under a base path, an unknown endpoint is the application's 404,
	// not an unknown host.
	before := x.unknown()
	if r := call("shop.example.localhost", "/auth/nothing"); r.Status != 404 || x.unknown() != before {
		t.Errorf("an unknown endpoint of shop: %d, counted %d", r.Status, x.unknown()-before)
	}
}

// unknown is oauth_agent_unknown_host_total.
func (x *appsAgent) unknown() int {
	return int(x.reg.GetOrCreateCounter("oauth_agent_unknown_host_total").Get())
}

// TestAppsConfigRefused: New refuses applications it cannot tell apart.
func TestAppsConfigRefused(t *testing.T) {
	as := astest.New(t, astest.Options{})
	for _, tt := range []struct {
		name   string
		change func(apps []*Config)
		want   string
	}{
		{"no name", func(apps []*Config) { apps[0].Name = "" }, "apps[0].name: is required"},
		{"bad name", func(apps []*Config) { apps[0].Name = "Shop" }, "apps[0].name"},
		{"same name", func(apps []*Config) { apps[1].Name = "shop" }, `apps[1].name: "shop" names two applications`},
		{"no hosts", func(apps []*Config) { apps[1].Hosts = nil }, "apps[1].hosts: is required"},
		{"bad host", func(apps []*Config) { apps[1].Hosts = []string{"admin.example:8080"} }, "apps[1].hosts[0]"},
		{"same route", func(apps []*Config) { apps[1].Hosts = apps[0].Hosts }, `both answer shop.example.localhost/oauth-agent`},
		{"nil", func(apps []*Config) { apps[1] = nil }, "apps[1]: is empty"},
		{"no keys", func(apps []*Config) { apps[1].Keys = nil }, `application "admin"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			apps := []*Config{appConfig(as, "shop"), appConfig(as, "admin")}
			tt.change(apps)
			_, err := New(&Config{AppSet: settings.AppSet[*Config]{Apps: apps}}, metrics.NewSet(), zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestAppsReload: reloads that add, change and remove admin, and change
// shop's settings but not its AS, while a browser calls shop in a loop:
// no request of shop fails, and shop's AS is not discovered again.
func TestAppsReload(t *testing.T) {
	asShop := astest.New(t, astest.Options{RedirectURI: appOrigin("shop") + "/"})
	asAdmin := astest.New(t, astest.Options{RedirectURI: appOrigin("admin") + "/"})
	shopCfg := appConfig(asShop, "shop")
	x := startApps(t, nil, func(top *Config) { top.Apps = []*Config{shopCfg} })
	shop := x.app("shop", asShop)
	b := shop.spa()
	shop.login(b)
	discoveries := asShop.Count("discovery")

	var stop atomic.Bool
	var calls, failures atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop.Store(true) // on a t.Fatal too
	wg.Go(func() {
		for !stop.Load() {
			r := shop.call(b, "GET", "/oauth-agent/userInfo", nil)
			calls.Add(1)
			if r.Status != 200 {
				failures.Add(1)
				firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s", r.Status, r.Body))
			}
		}
	})
	adminCfg := appConfig(asAdmin, "admin")
	for i := range 60 {
		shop2 := *shopCfg
		shop2.TrustedWebOrigins = []string{appOrigin("shop"), fmt.Sprintf("http://other%d.example.localhost", i)}
		admin2 := *adminCfg
		admin2.ClientSecret = fmt.Sprintf("secret-%d", i%2) // admin's AS changes
		var apps []*Config
		switch i % 3 {
		case 0:
			apps = []*Config{&shop2, &admin2} // add
		case 1:
			apps = []*Config{&admin2, &shop2} // change
		case 2:
			apps = []*Config{&shop2} // remove
		}
		if err := x.agent.Reload(&Config{AppSet: settings.AppSet[*Config]{Apps: apps}, Log: x.cfg.Log, Timeouts: x.cfg.Timeouts}, zerolog.New(x.logs)); err != nil {
			t.Fatal(err)
		}
		// Let a request or two through each configuration.
		n := calls.Load()
		if !bintest.Within(5*time.Second, func() bool { return calls.Load() > n }) {
			t.Fatal("no request went through")
		}
	}
	stop.Store(true)
	wg.Wait()
	if f := failures.Load(); f > 0 {
		t.Errorf("%d of %d requests to shop failed during reloads; the first: %v", f, calls.Load(), firstFailure.Load())
	}
	if got := asShop.Count("discovery"); got != discoveries {
		t.Errorf("shop's AS was discovered %d times more during reloads that left it alone", got-discoveries)
	}
	if x.state("admin") != nil {
		t.Error("admin is still there after the last reload removed it")
	}
	t.Logf("%d requests to shop during 60 reloads", calls.Load())
}

// TestAppsReadyz: the agent's /readyz is 200 while one application has its
// metadata and reports each; /readyz?app=NAME answers for one; the gauge
// oauth_agent_ready{app=NAME} follows each, and a reload that removes an
// application removes its gauge.
func TestAppsReadyz(t *testing.T) {
	down := astest.New(t, astest.Options{RedirectURI: appOrigin("admin") + "/"})
	down.Close()
	asShop := astest.New(t, astest.Options{RedirectURI: appOrigin("shop") + "/"})
	shopCfg := appConfig(asShop, "shop")
	cfg := &Config{AppSet: settings.AppSet[*Config]{Apps: []*Config{shopCfg, appConfig(down, "admin")}}, Timeouts: shopCfg.Timeouts, Log: shopCfg.Log,
		Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0"}
	logs := &bintest.Buffer{}
	s, err := NewServer(cfg, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	bintest.Serve(t, s.Serve, s.Shutdown)
	client := &http.Client{Timeout: 5 * time.Second}
	ops := func(path string) (int, string) {
		t.Helper()
		code, body, err := bintest.Get(client, "http://"+s.MetricsAddr().String()+path)
		if err != nil {
			t.Fatal(err)
		}
		return code, body
	}
	if !bintest.Within(5*time.Second, func() bool { code, _ := ops("/readyz?app=shop"); return code == 200 }) {
		t.Fatalf("shop not ready within 5s; logs:\n%s", logs.String())
	}
	for path, want := range map[string]string{
		"/readyz":           `200 {"status":"ready","apps":{"admin":"not_ready","shop":"ready"}}`,
		"/readyz?app=shop":  `200 {"app":"shop","status":"ready"}`,
		"/readyz?app=admin": `503 {"app":"admin","status":"not ready"}`,
		"/readyz?app=blog":  `404 {"status":"unknown application"}`,
	} {
		if code, body := ops(path); fmt.Sprint(code, " ", body) != want {
			t.Errorf("%s: %d %s, want %s", path, code, body, want)
		}
	}
	_, page := ops("/metrics")
	for _, g := range []string{"oauth_agent_ready 1", `oauth_agent_ready{app="shop"} 1`, `oauth_agent_ready{app="admin"} 0`} {
		if !strings.Contains(page, "\n"+g+"\n") {
			t.Errorf("/metrics lacks %s", g)
		}
	}
	next := *cfg
	next.Apps = []*Config{shopCfg}
	if err := s.Reload(&next); err != nil {
		t.Fatal(err)
	}
	if code, body := ops("/readyz"); code != 200 || body != `{"status":"ready","apps":{"shop":"ready"}}` {
		t.Errorf("/readyz after admin's removal: %d %s", code, body)
	}
	if _, page := ops("/metrics"); strings.Contains(page, `oauth_agent_ready{app="admin"}`) {
		t.Error(`oauth_agent_ready{app="admin"} is still there after its removal`)
	}
}

// TestAppsLogoutOutlivesEverySession: two applications on one provider,
// shop's sessions lasting an hour, admin's twelve. A logout of the user
// posted to shop's endpoint ends admin's session too (one issuer), and
// keeps ending it for as long as admin's sessions live, not shop's hour.
func TestAppsLogoutOutlivesEverySession(t *testing.T) {
	as := astest.New(t, astest.Options{})
	x := startApps(t, nil, func(top *Config) {
		shop, admin := appConfig(as, "shop"), appConfig(as, "admin")
		shop.Session.MaxLifetime, admin.Session.MaxLifetime = time.Hour, 12*time.Hour
		top.Apps = []*Config{shop, admin}
	})
	shop, admin := x.app("shop", as), x.app("admin", as)
	bAdmin := admin.spa()
	admin.login(bAdmin)
	shop.logoutAtProvider(as.Subject(), "")
	x.clock.advance(2 * time.Hour)
	if r := admin.call(bAdmin.Clone(), "GET", "/oauth-agent/claims", nil); r.Status != 401 || r.Code() != "session_expired" {
		t.Errorf("admin's session two hours after the user's logout: %d %s, want 401 session_expired", r.Status, r.Body)
	}
}

// TestAppsFromYAML: a file with apps, as the daemon loads it, through the
// agent's server: both applications log in on their providers, each
// browser sending both sets of cookies (one host's view) is answered from
// its application's own, and /readyz lists both.
func TestAppsFromYAML(t *testing.T) {
	asShop := astest.New(t, astest.Options{RedirectURI: appOrigin("shop") + "/"})
	asAdmin := astest.New(t, astest.Options{RedirectURI: appOrigin("admin") + "/"})
	app := func(name string, as *astest.Server) string {
		return "  - name: " + name + "\n" +
			"    hosts: [" + name + ".example.localhost]\n" +
			"    issuer: " + as.URL + "\n" +
			"    redirect_uri: " + appOrigin(name) + "/\n" +
			"    trusted_web_origins: [\"" + appOrigin(name) + "\"]\n" +
			"    cookie: {prefix: " + name + "}\n" +
			"    client_secret: test-secret\n" + // each provider its own (here the fakes' one)
			"    encryption_keys: [\"" + string(crypto.GenerateKey().AppendHex(nil)) + "\"]\n"
	}
	text := "listen: 127.0.0.1:0\nmetrics_listen: 127.0.0.1:0\nlog: {level: warn}\n" +
		"client_id: spa-client\napps:\n" + app("shop", asShop) + app("admin", asAdmin)
	cfg, err := ParseConfig([]byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bintest.Buffer{}
	s, err := NewServer(cfg, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	bintest.Serve(t, s.Serve, s.Shutdown)
	url := "http://" + s.Addr().String()
	browsers := map[string]*spatest.Browser{}
	for _, x := range []struct {
		name string
		as   *astest.Server
	}{{"shop", asShop}, {"admin", asAdmin}} {
		a := &testAgent{t: t, as: x.as, agent: s.Agent, url: url, logs: logs,
			host: x.name + ".example.localhost", origin: appOrigin(x.name)}
		if !bintest.Within(5*time.Second, func() bool { return s.Agent.table.Load().app(x.name).as.provider.Load() != nil }) {
			t.Fatalf("%s not discovered; logs:\n%s", x.name, logs.String())
		}
		b := a.spa()
		b.CSRFHeader = "x-" + x.name + "-csrf"
		a.login(b)
		if b.Cookie(x.name+"-at") == nil {
			t.Fatalf("%s: no %s-at", x.name, x.name)
		}
		browsers[x.name] = b
	}
	// One browser holding both sets: each application reads its own.
	both := browsers["shop"].Clone()
	for k, c := range browsers["admin"].Cookies {
		both.Cookies[k] = c
	}
	for _, name := range []string{"shop", "admin"} {
		b := both.Clone()
		b.Host, b.Origin, b.CSRFHeader, b.CSRF = name+".example.localhost", appOrigin(name), "x-"+name+"-csrf", browsers[name].CSRF
		if r := b.Call("POST", url+"/oauth-agent/refresh", nil); r.Status != 204 {
			t.Errorf("%s's refresh from a browser with both sets: %d %s", name, r.Status, r.Body)
		}
		if r := b.Call("GET", url+"/oauth-agent/claims", nil); r.Status != 200 {
			t.Errorf("%s's claims from a browser with both sets: %d %s", name, r.Status, r.Body)
		}
	}
	if asShop.Count("token:refresh_token") != 1 || asAdmin.Count("token:refresh_token") != 1 {
		t.Errorf("refresh grants: shop's AS %d, admin's %d; want 1 each", asShop.Count("token:refresh_token"), asAdmin.Count("token:refresh_token"))
	}
	code, body, err := bintest.Get(&http.Client{Timeout: 5 * time.Second}, "http://"+s.MetricsAddr().String()+"/readyz")
	if err != nil || code != 200 || body != `{"status":"ready","apps":{"admin":"ready","shop":"ready"}}` {
		t.Errorf("/readyz: %d %s %v", code, body, err)
	}
}

// TestAppsHostHeader: the application is the Host header's, as NGINX and
// the proxy read it, never a host in an absolute-form request target: a
// front end that lets requests through by their Host header must not see
// them answered by another application.
func TestAppsHostHeader(t *testing.T) {
	asShop := astest.New(t, astest.Options{RedirectURI: appOrigin("shop") + "/"})
	asAdmin := astest.New(t, astest.Options{RedirectURI: appOrigin("admin") + "/"})
	x := startApps(t, nil, func(top *Config) {
		top.Apps = []*Config{appConfig(asShop, "shop"), appConfig(asAdmin, "admin")}
	})
	x.app("shop", asShop)
	x.app("admin", asAdmin)
	start := func(target, host, origin string) (int, string) {
		c, err := net.Dial("tcp", strings.TrimPrefix(x.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "POST "+target+" HTTP/1.1\r\nHost: "+host+"\r\nOrigin: "+origin+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, body := start("http://admin.example.localhost/oauth-agent/login/start", "shop.example.localhost", appOrigin("shop"))
	if code != 200 || !strings.Contains(body, asShop.URL) || strings.Contains(body, asAdmin.URL) {
		t.Errorf("absolute-form target of admin, Host of shop: %d %.120s; want shop's provider (%s)", code, body, asShop.URL)
	}
	code, body = start("http://shop.example.localhost/oauth-agent/login/start", "other.example.localhost", appOrigin("shop"))
	if code != 404 || !strings.Contains(body, `"not_found"`) {
		t.Errorf("absolute-form target of shop, Host unknown: %d %.120s; want 404 not_found", code, body)
	}
}
