package integration

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/examples/devidp"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/optest"
	"github.com/tokenhandler/tokenhandler/internal/spatest"
)

// TestTwoApplications is issue 15's integration test: one oauth-agent and
// one oauth-proxy binary, each with a file that lists two applications,
// shop on the development IdP (examples/devidp) and admin on oidc-provider,
// each on a host of its own with its own cookie prefix, client and API.
// Both log in through their provider's pages. Every cookie of one, sent to
// the other's host as it is or renamed to the other's cookie names, is
// refused by both daemons (401, never the other's data), while a browser
// that sends both sets gets each application's own answer; a refresh and a
// logout touch only their own application. Then one provider stops: the
// other application logs in, refreshes and calls its API as before, the
// stopped one answers 502 where the agent needs its provider, and
// /readyz?app= reports each. A Host no application names is 404 at both.
//
// Twice: with a key of each application's own, and with one key shared
// under allow_shared_keys, where only the session binding to the
// application's name keeps a renamed cookie from opening at the other.
func TestTwoApplications(t *testing.T) {
	bins := buildDaemons(t)
	for _, tc := range []struct {
		name   string
		shared bool   // one key for both applications
		down   string // the application whose provider stops
	}{
		{"own keys", false, "shop"},
		{"shared key", true, "admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := startTwoApps(t, bins, tc.shared)
			shop, admin := x.apps[0], x.apps[1]

			// Both log in; the login cookie of each, taken to the other
			// with the authorization response, is refused there, and the
			// code is still its own application's to redeem.
			bShop := x.login(t, shop, admin)
			bAdmin := x.login(t, admin, shop)
			x.csrf = map[*appUnderTest]string{shop: bShop.CSRF, admin: bAdmin.CSRF}
			authShop, authAdmin := x.apiCall(t, bShop, shop), x.apiCall(t, bAdmin, admin)
			if authShop == authAdmin {
				t.Fatal("both applications' APIs got the same bearer token")
			}

			// Every cookie of one application at the other: as it is, and
			// moved to the other's names (same values, same paths).
			for _, dir := range [][2]*appUnderTest{{shop, admin}, {admin, shop}} {
				from, to := dir[0], dir[1]
				b := map[*appUnderTest]*spatest.Browser{shop: bShop, admin: bAdmin}[from]
				x.refused(t, b.Clone(), from, to, "as sent")
				x.refused(t, moved(b, from, to), from, to, "renamed")
			}

			// A browser that sends both sets gets each application's own
			// answer.
			both := merged(bShop, bAdmin)
			for _, a := range x.apps {
				x.ownAnswers(t, both, a, map[*appUnderTest]string{shop: authShop, admin: authAdmin}[a])
			}

			// A refresh touches only its own application: the other's
			// cookies, provider and bearer token stay as they were.
			for _, a := range x.apps {
				x.refreshAlone(t, both, a)
			}
			authAdmin = x.apiCall(t, x.use(both, admin), admin)

			// A logout too: shop's cookies go, admin's session goes on.
			x.logoutAlone(t, both, shop, admin, authAdmin)

			// One provider stops.
			down, up := shop, admin
			if tc.down == "admin" {
				down, up = admin, shop
			}
			x.providerDown(t, down, up)

			x.unknownHost(t)
		})
	}
}

// appUnderTest is one application of the two, its provider and its API.
type appUnderTest struct {
	name   string
	host   string // the API host: the agent and the proxy select by it
	origin string // the SPA's origin
	prefix string // cookie.prefix
	user   string // who logs in
	issuer string
	secret string
	api    *recordingAPI
	// authorize plays the user on the provider's pages, from the
	// authorization request URL to the redirect to the SPA.
	authorize func(t *testing.T, authURL string) *url.URL
	// refreshes counts the refresh grants the provider has run, up to
	// the last request the test made.
	refreshes func() int
	// stop stops the provider: its port refuses connections.
	stop func()
	// clientID is the application's client at its provider.
	clientID string
}

// csrfHeader is the header the application's SPA sends its CSRF token in.
func (a *appUnderTest) csrfHeader() string { return "x-" + a.prefix + "-csrf" }

// twoApps is the deployment: both providers, one agent and one proxy
// binary serving the two applications.
type twoApps struct {
	bins      daemons
	apps      []*appUnderTest // shop, admin
	shared    bool
	keys      [2]string // hex, shop's and admin's (equal when shared)
	dir       string
	agentPort string // the agent listens on 127.0.0.1:agentPort
	agentOps  string // http://host:port
	proxyPort string
	proxyOps  string
	agentProc *bintest.Process
	proxyProc *bintest.Process
	opsClient *http.Client
	// csrf is the CSRF token of each application's first session, the
	// one both browsers of the test hold.
	csrf map[*appUnderTest]string
}

// startTwoApps starts both providers, both APIs and the two daemons, and
// waits until the agent has both providers' metadata.
func startTwoApps(t *testing.T, bins daemons, shared bool) *twoApps {
	t.Helper()
	x := &twoApps{bins: bins, shared: shared, dir: t.TempDir(), opsClient: &http.Client{Timeout: 2 * time.Second}}
	x.apps = []*appUnderTest{startShop(t), startAdmin(t)}
	x.keys[0] = string(crypto.GenerateKey().AppendHex(nil))
	x.keys[1] = x.keys[0]
	if !shared {
		x.keys[1] = string(crypto.GenerateKey().AppendHex(nil))
	}

	agentAddr, agentOps := bintest.FreeTCPAddr(t), bintest.FreeTCPAddr(t)
	_, x.agentPort, _ = net.SplitHostPort(agentAddr)
	x.agentOps = "http://" + agentOps
	x.agentProc = x.startAgent(t, "oauth-agent.yaml", agentAddr, agentOps)

	proxyAddr, proxyOps := bintest.FreeTCPAddr(t), bintest.FreeTCPAddr(t)
	_, x.proxyPort, _ = net.SplitHostPort(proxyAddr)
	x.proxyOps = "http://" + proxyOps
	yaml := x.fileTop(proxyAddr, proxyOps, "{upstream: 5s, shutdown: 2s}")
	for i, a := range x.apps {
		yaml += fmt.Sprintf(`  - name: %s
    hosts: [%s]
    cookie: {prefix: %s}
    encryption_keys: [%q]
    trusted_web_origins: [%q]
    routes: [{path_prefix: /api/, upstream: %q}]
`, a.name, a.host, a.prefix, x.keys[i], a.origin, "http://"+a.api.addr)
	}
	file := filepath.Join(x.dir, "oauth-proxy.yaml")
	bintest.WriteFile(t, file, yaml)
	x.proxyProc = bins.proxy.Start(t, "-config", file)

	for _, a := range x.apps {
		x.agentProc.Eventually(t, 20*time.Second, "oauth-agent /readyz?app="+a.name, func() bool {
			code, _, err := bintest.Get(x.opsClient, x.agentOps+"/readyz?app="+a.name)
			return err == nil && code == 200
		})
	}
	x.proxyProc.Eventually(t, 20*time.Second, "oauth-proxy /readyz", func() bool {
		code, _, err := bintest.Get(x.opsClient, x.proxyOps+"/readyz")
		return err == nil && code == 200
	})
	noDeprecation(t, "oauth-agent", x.agentProc.Stderr())
	noDeprecation(t, "oauth-proxy", x.proxyProc.Stderr())
	return x
}

// fileTop is the top level of a daemon's file, listening on addr and ops
// with timeouts (YAML), up to the apps: that its entries follow.
func (x *twoApps) fileTop(addr, ops, timeouts string) string {
	return fmt.Sprintf(`listen: %q
metrics_listen: %q
timeouts: %s
log: {level: warn}
cookie: {format: v2}
allow_shared_keys: %v
apps:
`, addr, ops, timeouts, x.shared)
}

// startAgent starts an oauth-agent with the two applications, listening
// on addr and ops, its file written as name.
func (x *twoApps) startAgent(t *testing.T, name, addr, ops string) *bintest.Process {
	t.Helper()
	yaml := x.fileTop(addr, ops, "{as: 5s, shutdown: 2s}")
	for i, a := range x.apps {
		yaml += fmt.Sprintf(`  - name: %s
    hosts: [%s]
    issuer: %q
    client_id: %s
    client_secret: %q
    redirect_uri: %q
    post_logout_redirect_uri: %q
    trusted_web_origins: [%q]
    cookie: {prefix: %s}
    encryption_keys: [%q]
`, a.name, a.host, a.issuer, a.clientID, a.secret, a.origin+"/", a.origin+"/", a.origin, a.prefix, x.keys[i])
	}
	file := filepath.Join(x.dir, name)
	bintest.WriteFile(t, file, yaml)
	return x.bins.agent.Start(t, "-config", file)
}

// startShop starts the development IdP in-process with shop's client.
func startShop(t *testing.T) *appUnderTest {
	t.Helper()
	a := &appUnderTest{name: "shop", host: "api.shop.localhost", origin: "http://www.shop.localhost:3000", prefix: "shop",
		user: "alice", clientID: "shop-spa", secret: rand.Text(), api: startRecordingAPI(t)}
	ln, err := devidp.ListenLoopback("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	a.issuer = "http://" + ln.Addr().String()
	idp, err := devidp.New(devidp.Options{Issuer: a.issuer, Clients: []devidp.Client{{
		ID: a.clientID, Secret: a.secret, RedirectURIs: []string{a.origin + "/"}, PostLogoutRedirectURIs: []string{a.origin + "/"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var refreshes atomic.Int64
	h := idp.Handler()
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/token" && r.ParseForm() == nil && r.PostForm.Get("grant_type") == "refresh_token" {
			refreshes.Add(1)
		}
		h.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	a.stop = func() { srv.Close() }
	t.Cleanup(a.stop)
	a.refreshes = func() int { return int(refreshes.Load()) }
	client := &http.Client{Timeout: 10 * time.Second}
	a.authorize = func(t *testing.T, authURL string) *url.URL {
		t.Helper()
		redirect, err := devidp.Login(t.Context(), client, authURL, a.user)
		if err != nil {
			t.Fatal(err)
		}
		return redirect
	}
	return a
}

// startAdmin starts oidc-provider with admin's client (spa-client).
func startAdmin(t *testing.T) *appUnderTest {
	t.Helper()
	a := &appUnderTest{name: "admin", host: "api.admin.localhost", origin: "http://admin.localhost:3000", prefix: "admin",
		user: "root-admin", clientID: "spa-client", api: startRecordingAPI(t)}
	// Characters client_secret_basic must form-encode (RFC 6749 §2.3.1).
	a.secret = "s3cr:t +/=%&" + rand.Text()
	op := &oidcProvider{optest.Start(t, optest.Options{ClientSecret: a.secret, RedirectURI: a.origin + "/"}), a.secret}
	a.issuer = op.Issuer
	a.stop = op.Stop
	a.refreshes = func() int {
		// The OP logs an event before it answers, but the line may still
		// be in the pipe: a request of the test's own to the userinfo
		// endpoint, logged after every event before it, is the barrier.
		mark := op.Mark()
		if resp, err := loopbackClient.Get(op.Issuer + "/me"); err == nil {
			resp.Body.Close()
			bintest.Eventually(t, 5*time.Second, "the OP's event of the test's userinfo request", func() bool {
				return op.Count(mark, "userinfo GET") > 0
			})
		}
		return op.Count(0, "grant.success refresh_token")
	}
	a.authorize = func(t *testing.T, authURL string) *url.URL {
		t.Helper()
		// A new browser at the OP each time: no OP session to skip the
		// login page.
		return newOPUserAgent(t, op).authorize(t, authURL, a.user)
	}
	return a
}

// agentAt is the URL of the agent's endpoint path (after
// /oauth-agent/) on a's host: a browser sends Host a.host:port.
func (x *twoApps) agentAt(a *appUnderTest, path string) string {
	return "http://" + net.JoinHostPort(a.host, x.agentPort) + "/oauth-agent/" + path
}

// api is the URL of a's API through the proxy, on a's host.
func (x *twoApps) api(a *appUnderTest) string {
	return "http://" + net.JoinHostPort(a.host, x.proxyPort) + "/api/orders"
}

// as makes b call as a's SPA does: from a's origin, with a's CSRF header
// (b.CSRF stays), *.localhost at loopback.
func as(b *spatest.Browser, a *appUnderTest) *spatest.Browser {
	b.Origin, b.CSRFHeader, b.Client = a.origin, a.csrfHeader(), loopbackClient
	return b
}

// loopbackClient is a browser's client that finds localhost and every
// name under .localhost at 127.0.0.1 (RFC 6761 §6.3), as browsers do, and
// follows no redirects.
var loopbackClient = &http.Client{
	Timeout:       15 * time.Second,
	Transport:     &http.Transport{Proxy: nil, DialContext: dialLoopback},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// dialLoopback dials localhost and the names under .localhost at
// 127.0.0.1, where the daemons and providers of the tests listen.
func dialLoopback(ctx context.Context, network, addr string) (net.Conn, error) {
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	var d net.Dialer
	d.Timeout = 5 * time.Second
	return d.DialContext(ctx, network, addr)
}

// use is as with the CSRF token of a's first session: for a browser that
// holds the first sessions of both applications.
func (x *twoApps) use(b *spatest.Browser, a *appUnderTest) *spatest.Browser {
	as(b, a).CSRF = x.csrf[a]
	return b
}

// login logs a new browser in to a, through a's provider's pages, and
// returns it with a's cookies and CSRF token. Between the provider's
// redirect and login/end, the authorization response and a's login
// cookie (as it is and renamed) are taken to other's login/end, which must
// refuse them and leave the code to a.
func (x *twoApps) login(t *testing.T, a, other *appUnderTest) *spatest.Browser {
	t.Helper()
	b := as(spatest.New(t, a.origin), a)
	authURL, _ := redirectURL(t, b.Call("POST", x.agentAt(a, "login/start"), nil),
		a.name+" login/start", "authorizationRequestUrl", a.issuer+"/")
	if b.Cookie(a.prefix+"-login") == nil {
		t.Fatalf("%s's login/start wrote no %s-login cookie: %v", a.name, a.prefix, b.Cookies)
	}
	redirect := a.authorize(t, authURL)
	page := map[string]string{"pageUrl": redirect.String()}
	if other != nil {
		for what, c := range map[string]*spatest.Browser{"as sent": b.Clone(), "renamed": moved(b, a, other)} {
			r := as(c, other).Call("POST", x.agentAt(other, "login/end"), page)
			if r.Status != 400 || r.Code() != "invalid_request" {
				t.Errorf("%s's login cookie (%s) and authorization response at %s's login/end: %d %s, want 400 invalid_request", a.name, what, other.name, r.Status, r.Body)
			}
			noCookiesOf(t, r, a, other.name+"'s login/end")
		}
	}
	end := b.Call("POST", x.agentAt(a, "login/end"), page)
	if end.Status != 200 || end.JSON()["isLoggedIn"] != true {
		t.Fatalf("%s login/end: %d %s", a.name, end.Status, end.Body)
	}
	b.CSRF, _ = end.JSON()["csrf"].(string)
	for _, c := range b.Cookies {
		if !strings.HasPrefix(c.Name, a.prefix+"-") {
			t.Errorf("%s's login wrote the cookie %s", a.name, c.Name)
		}
	}
	for _, name := range []string{"at", "auth", "id", "csrf"} {
		if b.Cookie(a.prefix+"-"+name) == nil {
			t.Fatalf("%s's login wrote no %s-%s cookie: %v", a.name, a.prefix, name, b.Cookies)
		}
	}
	if r := b.Call("GET", x.agentAt(a, "userInfo"), nil); r.Status != 200 || r.JSON()["sub"] != a.user {
		t.Fatalf("%s userInfo after login: %d %s", a.name, r.Status, r.Body)
	}
	return b
}

// apiCall calls a's API through the proxy with b (GET and POST) and
// returns the Authorization header the API got, the same both times.
func (x *twoApps) apiCall(t *testing.T, b *spatest.Browser, a *appUnderTest) string {
	t.Helper()
	as(b, a)
	mark := a.api.mark()
	for _, method := range []string{"GET", "POST"} {
		if r := b.Call(method, x.api(a), nil); r.Status != 200 {
			t.Fatalf("%s %s's API through the proxy: %d %s", method, a.name, r.Status, r.Body)
		}
	}
	got := a.api.since(mark)
	if len(got) != 2 || got[0] != got[1] || !strings.HasPrefix(got[0], "Bearer ") {
		t.Fatalf("%s's API got the Authorization headers %d times, alike %v", a.name, len(got), len(got) == 2 && got[0] == got[1])
	}
	return got[0]
}

// moved returns a browser with b's cookies of application from under
// to's names (the same values and paths), the CSRF token kept.
func moved(b *spatest.Browser, from, to *appUnderTest) *spatest.Browser {
	out := b.Clone()
	out.Cookies = map[string]*http.Cookie{}
	for _, c := range b.Cookies {
		cp := *c
		cp.Name = to.prefix + strings.TrimPrefix(c.Name, from.prefix)
		out.Cookies[cp.Name+"|"+cp.Path] = &cp
	}
	return out
}

// merged is a browser holding both browsers' cookies.
func merged(a, b *spatest.Browser) *spatest.Browser {
	out := a.Clone()
	for k, c := range b.Clone().Cookies {
		out.Cookies[k] = c
	}
	return out
}

// noCookiesOf fails t when r sets a cookie of a.
func noCookiesOf(t *testing.T, r spatest.Answer, a *appUnderTest, what string) {
	t.Helper()
	for _, c := range r.SetCookies {
		if strings.HasPrefix(c.Name, a.prefix+"-") {
			t.Errorf("%s set %s's cookie %s", what, a.name, c.Name)
		}
	}
}

// refused sends b, a browser with from's session (how says under which
// names), to every endpoint of to that acts on a session, as to's SPA
// would: the proxy and the agent answer 401, no API gets a request, no
// provider a refresh, and no answer holds from's data or sets from's
// cookies.
func (x *twoApps) refused(t *testing.T, b *spatest.Browser, from, to *appUnderTest, how string) {
	t.Helper()
	as(b, to) // from's CSRF token in to's header
	what := func(call string) string {
		return fmt.Sprintf("%s's cookies (%s) at %s's %s", from.name, how, to.name, call)
	}
	marks := [2]int{from.api.mark(), to.api.mark()}
	refreshes := [2]int{from.refreshes(), to.refreshes()}
	for _, method := range []string{"GET", "POST"} {
		r := b.Call(method, x.api(to), nil)
		if r.Status != 401 {
			t.Errorf("%s: %d %s, want 401", what(method+" /api/orders"), r.Status, r.Body)
		}
	}
	if n := len(from.api.since(marks[0])) + len(to.api.since(marks[1])); n != 0 {
		t.Errorf("%s: the APIs got %d requests", what("API"), n)
	}
	for _, call := range []struct{ method, path string }{
		{"GET", "userInfo"}, {"GET", "claims"}, {"POST", "refresh"}, {"POST", "logout"},
	} {
		r := b.Call(call.method, x.agentAt(to, call.path), nil)
		// Another application's cookie counts as missing
		// (docs/security.md, Isolation between applications).
		if r.Status != 401 || r.Code() != "unauthorized_request" || strings.Contains(string(r.Body), from.user) || strings.Contains(string(r.Body), from.issuer) {
			t.Errorf("%s: %d %s, want 401 unauthorized_request without %s's data", what(call.path), r.Status, r.Body, from.name)
		}
		noCookiesOf(t, r, from, what(call.path))
	}
	// login/end without a body is the SPA's page load: not logged in.
	r := b.Call("POST", x.agentAt(to, "login/end"), nil)
	if m := r.JSON(); r.Status != 200 || m["isLoggedIn"] != false || m["csrf"] != nil {
		t.Errorf("%s: %d %s, want 200 and not logged in", what("login/end page load"), r.Status, r.Body)
	}
	if from.refreshes() != refreshes[0] || to.refreshes() != refreshes[1] {
		t.Errorf("%s: a provider ran a refresh", what("refresh"))
	}
}

// ownAnswers calls a's agent and API with b, which holds both
// applications' cookies: each answers with a's session alone, and a's API
// gets a's bearer token, auth.
func (x *twoApps) ownAnswers(t *testing.T, b *spatest.Browser, a *appUnderTest, auth string) {
	t.Helper()
	x.use(b, a)
	r := b.Call("GET", x.agentAt(a, "userInfo"), nil)
	if r.Status != 200 || r.JSON()["sub"] != a.user {
		t.Errorf("%s's userInfo with both applications' cookies: %d %s, want %s", a.name, r.Status, r.Body, a.user)
	}
	r = b.Call("GET", x.agentAt(a, "claims"), nil)
	if m := r.JSON(); r.Status != 200 || m["sub"] != a.user || m["iss"] != a.issuer || m["aud"] != a.clientID {
		t.Errorf("%s's claims with both applications' cookies: %d %s", a.name, r.Status, r.Body)
	}
	if got := x.apiCall(t, x.use(b.Clone(), a), a); got != auth {
		t.Errorf("%s's API got another bearer token when the browser sent both applications' cookies", a.name)
	}
}

// cookieValues returns the values of b's cookies of a, by name and path.
func cookieValues(b *spatest.Browser, a *appUnderTest) map[string]string {
	out := map[string]string{}
	for k, c := range b.Cookies {
		if strings.HasPrefix(c.Name, a.prefix+"-") {
			out[k] = c.Value
		}
	}
	return out
}

// others returns the application of the two that is not a.
func (x *twoApps) others(a *appUnderTest) *appUnderTest {
	if x.apps[0] == a {
		return x.apps[1]
	}
	return x.apps[0]
}

// refreshAlone refreshes a's session with b, which holds both
// applications' cookies: a's cookies and a's bearer token change, the
// other's cookies, bearer token and provider do not.
func (x *twoApps) refreshAlone(t *testing.T, b *spatest.Browser, a *appUnderTest) {
	t.Helper()
	o := x.others(a)
	beforeA, beforeO := cookieValues(b, a), cookieValues(b, o)
	authA, authO := x.apiCall(t, x.use(b.Clone(), a), a), x.apiCall(t, x.use(b.Clone(), o), o)
	refA, refO := a.refreshes(), o.refreshes()
	r := x.use(b, a).Call("POST", x.agentAt(a, "refresh"), nil)
	if r.Status != 204 {
		t.Fatalf("%s's refresh with both applications' cookies: %d %s", a.name, r.Status, r.Body)
	}
	noCookiesOf(t, r, o, a.name+"'s refresh")
	if a.refreshes() != refA+1 || o.refreshes() != refO {
		t.Errorf("%s's refresh: %s's provider ran %d refreshes, %s's %d; want 1 and 0", a.name, a.name, a.refreshes()-refA, o.name, o.refreshes()-refO)
	}
	afterA, afterO := cookieValues(b, a), cookieValues(b, o)
	for k, v := range beforeO {
		if afterO[k] != v {
			t.Errorf("%s's refresh changed %s's cookie %s", a.name, o.name, k)
		}
	}
	if len(afterO) != len(beforeO) {
		t.Errorf("%s's refresh changed the number of %s's cookies: %d, was %d", a.name, o.name, len(afterO), len(beforeO))
	}
	if afterA[a.prefix+"-at|/"] == beforeA[a.prefix+"-at|/"] {
		t.Errorf("%s's refresh did not rewrite %s-at", a.name, a.prefix)
	}
	if got := x.apiCall(t, x.use(b.Clone(), a), a); got == authA {
		t.Errorf("after %s's refresh its API still gets the old bearer token", a.name)
	}
	if got := x.apiCall(t, x.use(b.Clone(), o), o); got != authO {
		t.Errorf("after %s's refresh %s's API gets another bearer token", a.name, o.name)
	}
}

// logoutAlone logs a out with b, which holds both applications' cookies:
// a's cookies go and a's API refuses b, o's session goes on (userInfo and
// its API with the same bearer token, authO).
func (x *twoApps) logoutAlone(t *testing.T, b *spatest.Browser, a, o *appUnderTest, authO string) {
	t.Helper()
	beforeO := cookieValues(b, o)
	redirectURL(t, x.use(b, a).Call("POST", x.agentAt(a, "logout"), nil), a.name+" logout", "url", a.issuer+"/")
	if left := cookieValues(b, a); len(left) != 0 {
		t.Errorf("%s's cookies survived its logout: %d", a.name, len(left))
	}
	afterO := cookieValues(b, o)
	for k, v := range beforeO {
		if afterO[k] != v {
			t.Errorf("%s's logout changed or cleared %s's cookie %s", a.name, o.name, k)
		}
	}
	if r := as(b, a).Call("GET", x.api(a), nil); r.Status != 401 {
		t.Errorf("%s's API after its logout: %d, want 401", a.name, r.Status)
	}
	if r := x.use(b, o).Call("GET", x.agentAt(o, "userInfo"), nil); r.Status != 200 || r.JSON()["sub"] != o.user {
		t.Errorf("%s's userInfo after %s's logout: %d %s", o.name, a.name, r.Status, r.Body)
	}
	if got := x.apiCall(t, x.use(b.Clone(), o), o); got != authO {
		t.Errorf("%s's API gets another bearer token after %s's logout", o.name, a.name)
	}
}

// providerDown logs a browser in to down and stops down's provider: up
// logs in anew, reads its user info, refreshes and calls its API; down
// answers that browser 502 at the agent's userInfo and refresh, while its
// API still takes the browser's cookies (the proxy needs no provider). A
// second agent started now reports down not ready and up ready.
func (x *twoApps) providerDown(t *testing.T, down, up *appUnderTest) {
	t.Helper()
	bDown := x.login(t, down, nil)
	down.stop()

	b := x.login(t, up, nil)
	auth := x.apiCall(t, b, up)
	if r := b.Call("POST", x.agentAt(up, "refresh"), nil); r.Status != 204 {
		t.Fatalf("%s's refresh while %s's provider is down: %d %s", up.name, down.name, r.Status, r.Body)
	}
	if got := x.apiCall(t, b, up); got == auth {
		t.Errorf("%s's API got the old bearer token after a refresh while %s's provider is down", up.name, down.name)
	}

	for _, call := range []struct{ method, path string }{{"GET", "userInfo"}, {"POST", "refresh"}} {
		r := bDown.Call(call.method, x.agentAt(down, call.path), nil)
		if r.Status != 502 || r.Code() != "authorization_server_error" {
			t.Errorf("%s's %s with its provider down: %d %s, want 502 authorization_server_error", down.name, call.path, r.Status, r.Body)
		}
	}
	x.apiCall(t, bDown, down)

	// The running agent loaded both providers' metadata before: both
	// applications stay ready (docs/agent.md, Readiness).
	for _, a := range x.apps {
		want := fmt.Sprintf(`{"app":%q,"status":"ready"}`, a.name)
		if code, body, err := bintest.Get(x.opsClient, x.agentOps+"/readyz?app="+a.name); err != nil || code != 200 || body != want {
			t.Errorf("the agent's /readyz?app=%s with %s's provider down: %d %s %v, want 200 %s", a.name, down.name, code, body, err, want)
		}
	}

	// An agent that starts now cannot load down's metadata: /readyz
	// reports down not ready, up ready, and the agent itself ready (one
	// application is); down answers 502 at login/start.
	addr, ops := bintest.FreeTCPAddr(t), bintest.FreeTCPAddr(t)
	p := x.startAgent(t, "oauth-agent-2.yaml", addr, ops)
	p.Eventually(t, 20*time.Second, "the second agent's /readyz?app="+up.name, func() bool {
		code, _, err := bintest.Get(x.opsClient, "http://"+ops+"/readyz?app="+up.name)
		return err == nil && code == 200
	})
	want := fmt.Sprintf(`{"app":%q,"status":"not ready"}`, down.name)
	if code, body, err := bintest.Get(x.opsClient, "http://"+ops+"/readyz?app="+down.name); err != nil || code != 503 || body != want {
		t.Errorf("/readyz?app=%s of an agent started while its provider is down: %d %s %v, want 503 %s", down.name, code, body, err, want)
	}
	code, body, err := bintest.Get(x.opsClient, "http://"+ops+"/readyz")
	if err != nil || code != 200 || !strings.Contains(body, fmt.Sprintf("%q:%q", up.name, "ready")) || !strings.Contains(body, fmt.Sprintf("%q:%q", down.name, "not_ready")) {
		t.Errorf("/readyz of an agent with %s's provider down: %d %s %v, want 200 naming %s ready and %s not_ready", down.name, code, body, err, up.name, down.name)
	}
	if code, body, err := bintest.Get(x.opsClient, "http://"+ops+"/readyz?app=nope"); err != nil || code != 404 {
		t.Errorf("/readyz?app=nope: %d %s %v, want 404", code, body, err)
	}
	for _, a := range []*appUnderTest{down, up} {
		want := map[*appUnderTest]int{down: 502, up: 200}[a]
		_, port, _ := net.SplitHostPort(addr)
		r := as(spatest.New(t, a.origin), a).Call("POST", "http://"+net.JoinHostPort(a.host, port)+"/oauth-agent/login/start", nil)
		if r.Status != want {
			t.Errorf("%s's login/start at the agent started with %s's provider down: %d %s, want %d", a.name, down.name, r.Status, r.Body, want)
		}
	}
}

// unknownHost sends both daemons requests for hosts no application
// names: 404 with the usual JSON body, counted.
func (x *twoApps) unknownHost(t *testing.T) {
	t.Helper()
	for _, host := range []string{"api.other.localhost", "localhost", "127.0.0.1"} {
		b := as(spatest.New(t, x.apps[0].origin), x.apps[0])
		for _, call := range []struct{ method, url string }{
			{"POST", "http://" + net.JoinHostPort(host, x.agentPort) + "/oauth-agent/login/start"},
			{"GET", "http://" + net.JoinHostPort(host, x.agentPort) + "/oauth-agent/userInfo"},
			{"GET", "http://" + net.JoinHostPort(host, x.proxyPort) + "/api/orders"},
		} {
			r := b.Call(call.method, call.url, nil)
			if r.Status != 404 || r.Code() != "not_found" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				t.Errorf("%s %s: %d %q %s, want 404 not_found JSON", call.method, call.url, r.Status, r.Header.Get("Content-Type"), r.Body)
			}
		}
	}
	for _, m := range []struct {
		ops, name string
		want      int
	}{
		{x.agentOps, "oauth_agent_unknown_host_total", 6}, {x.proxyOps, "oauth_proxy_unknown_host_total", 3},
	} {
		_, page, err := bintest.Get(x.opsClient, m.ops+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		n := -1
		for line := range strings.Lines(page) {
			if rest, ok := strings.CutPrefix(line, m.name+" "); ok {
				fmt.Sscan(rest, &n)
			}
		}
		if n != m.want {
			t.Errorf("%s is %d, want %d", m.name, n, m.want)
		}
		for _, a := range x.apps {
			if !strings.Contains(page, fmt.Sprintf(`app=%q`, a.name)) {
				t.Errorf("%s/metrics has no series with app=%q", m.ops, a.name)
			}
		}
	}
}
