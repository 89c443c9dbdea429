package main

import (
	"context"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/examples/devidp"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/spatest"
	"github.com/tokenhandler/tokenhandler/nginx/nginxtest"
)

// devStack is make run's stack, started in the test on free ports, with a
// client that reaches its host names as a browser does.
type devStack struct {
	*stack
	client *http.Client
	idp    string // the development IdP, http://127.0.0.1:port
}

// startStack starts the stack, with NGINX in front when withNGINX; the
// test's cleanup stops it, and prints its log when the test failed.
func startStack(t *testing.T, withNGINX bool) *devStack {
	t.Helper()
	p := bintest.FreePorts(t, 6)
	o := options{ports: ports{spa: p[0], agent: p[1], proxy: p[2], api: p[3], idp: p[4], nginx: p[5]}, accessTTL: 5 * time.Minute, logLevel: "warn"}
	if withNGINX {
		nginxtest.Binary(t) // skips (fails in CI) without NGINX
		o.nginx = true
	}
	var logs bintest.Buffer
	s, err := start(o, &logs)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("stack log:\n%s", logs.String())
		}
	})
	return &devStack{stack: s, client: localhostClient(), idp: fmt.Sprintf("http://127.0.0.1:%d", o.ports.idp)}
}

// browser returns a browser profile on application i's SPA: its origin,
// its CSRF header, and the agent and the proxy reached on its host.
func (d *devStack) browser(t *testing.T, i int) *spatest.Browser {
	b := spatest.New(t, strings.TrimSuffix(d.apps[i].spaURL, "/"))
	b.CSRFHeader = "x-" + d.apps[i].prefix + "-csrf"
	b.Client = d.client
	return b
}

// agentURL and apiURL are where application i's SPA calls the agent and
// the demo API's /hello, on the application's host.
func (d *devStack) agentURL(i int) string { return d.apps[i].spa.AgentBaseURL }
func (d *devStack) apiURL(i int) string   { return d.apps[i].spa.APIBaseURL + "/hello" }

// login logs user in to application i as its SPA does, through the
// development IdP's login page, and checks an API call.
func (d *devStack) login(t *testing.T, i int, user string) *spatest.Browser {
	t.Helper()
	b := d.browser(t, i)
	start := b.Call("POST", d.agentURL(i)+"/login/start", nil)
	authURL, _ := start.JSON()["authorizationRequestUrl"].(string)
	if start.Status != 200 || authURL == "" {
		t.Fatalf("%s: login/start: %d %s", d.apps[i].name, start.Status, start.Body)
	}
	if q := spatest.Query(t, authURL); q.Get("client_id") != d.apps[i].clientID {
		t.Fatalf("%s: login/start sends the browser to client %q, want %q", d.apps[i].name, q.Get("client_id"), d.apps[i].clientID)
	}
	redirect, err := devidp.Login(t.Context(), d.client, authURL, user)
	if err != nil {
		t.Fatal(err)
	}
	end := b.Call("POST", d.agentURL(i)+"/login/end", map[string]string{"pageUrl": redirect.String()})
	if end.Status != 200 || end.JSON()["isLoggedIn"] != true {
		t.Fatalf("%s: login/end: %d %s", d.apps[i].name, end.Status, end.Body)
	}
	b.CSRF, _ = end.JSON()["csrf"].(string)
	if r := b.Call("GET", d.apiURL(i), nil); r.Status != 200 || !strings.Contains(string(r.Body), `"`+user+`"`) {
		t.Fatalf("%s: %s's API call: %d %s", d.apps[i].name, user, r.Status, r.Body)
	}
	return b
}

// idpControl posts one of the development IdP's page controls (the form
// that holds marker), as the developer's browser does, and returns the
// page it answers.
func (d *devStack) idpControl(t *testing.T, action string, marker *regexp.Regexp, form url.Values) string {
	t.Helper()
	resp, err := d.client.Get(d.idp + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="form_token" value="([^"]*)"`).FindSubmatch(body)
	if m == nil || !marker.Match(body) {
		t.Fatalf("the IdP's page has no %s:\n%s", marker, body)
	}
	form.Set("form_token", html.UnescapeString(string(m[1])))
	resp, err = d.client.PostForm(d.idp+action, form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %s\n%s", action, resp.Status, body)
	}
	return string(body)
}

// refusedWithin waits up to a second after start for b's API calls at
// application i to be refused with 401.
func (d *devStack) refusedWithin(t *testing.T, start time.Time, b *spatest.Browser, i int, who string) {
	t.Helper()
	var status int
	if !bintest.Within(time.Until(start.Add(time.Second)), func() bool {
		status = b.Call("GET", d.apiURL(i), nil).Status
		return status == 401
	}) {
		t.Fatalf("%s's API call at %s a second after the logout: %d, want 401", who, d.apps[i].name, status)
	}
	if r := b.Call("GET", d.agentURL(i)+"/userInfo", nil); r.Status != 401 || r.Code() != "session_expired" {
		t.Errorf("%s's userInfo at %s: %d %s, want 401 session_expired", who, d.apps[i].name, r.Status, r.Body)
	}
}

// TestLogoutEverywhere is make run's back-channel logout demo, over HTTP:
// alice logs in to both applications and bob to the shop; "Log out alice
// everywhere" on the development IdP's page makes the IdP POST each
// application's client a logout token that names alice, at the
// application's own host on the agent; within a second the proxy refuses
// alice's API calls at both and the agent answers her session_expired (the
// SPAs then show her logged out), while bob goes on.
func TestLogoutEverywhere(t *testing.T) {
	d := startStack(t, false)
	alice := []*spatest.Browser{d.login(t, 0, "alice"), d.login(t, 1, "alice")}
	bob := d.login(t, 0, "bob")

	start := time.Now()
	page := d.idpControl(t, "/users/logout", regexp.MustCompile(`Log out alice everywhere`), url.Values{"sub": {"alice"}})
	for _, client := range []string{"spa-client", "admin-spa"} {
		if !strings.Contains(page, "<code>"+client+"</code> acknowledged (200)") {
			t.Fatalf("log out everywhere: the page does not say the agent acknowledged for %s:\n%s", client, page)
		}
	}
	for i, b := range alice {
		d.refusedWithin(t, start, b, i, "alice")
	}
	t.Logf("the proxy refused alice at both applications %v after the click", time.Since(start).Round(time.Millisecond))
	if r := bob.Call("GET", d.apiURL(0), nil); r.Status != 200 {
		t.Errorf("bob's API call after alice's logout: %d, want 200", r.Status)
	}
}

// TestLogoutOneApplication: "Log out this session" of alice's session at
// the admin app's client makes the IdP POST that client alone a logout
// token, at the admin app's host on the agent: alice is logged out of the
// admin app, and stays logged in to the shop.
func TestLogoutOneApplication(t *testing.T) {
	d := startStack(t, false)
	shop, admin := d.login(t, 0, "alice"), d.login(t, 1, "alice")

	resp, err := d.client.Get(d.idp + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	session := regexp.MustCompile(`name="sid" value="([^"]*)">\s*<code>alice</code> at <code>admin-spa</code>`)
	m := session.FindSubmatch(body)
	if m == nil {
		t.Fatalf("the IdP's page lists no session of alice at admin-spa:\n%s", body)
	}
	start := time.Now()
	page := d.idpControl(t, "/sessions/end", session, url.Values{"sid": {html.UnescapeString(string(m[1]))}})
	if !strings.Contains(page, "<code>admin-spa</code> acknowledged (200)") || strings.Contains(page, "spa-client") {
		t.Fatalf("ending alice's admin session: the page does not say admin-spa alone acknowledged:\n%s", page)
	}
	d.refusedWithin(t, start, admin, 1, "alice")
	if r := shop.Call("GET", d.apiURL(0), nil); r.Status != 200 {
		t.Errorf("alice's API call at the shop after her admin session ended: %d, want 200", r.Status)
	}
	if r := shop.Call("GET", d.agentURL(0)+"/userInfo", nil); r.Status != 200 {
		t.Errorf("alice's userInfo at the shop after her admin session ended: %d %s, want 200", r.Status, r.Body)
	}
}

// localhostClient dials *.localhost at loopback, as browsers do, and
// follows no redirects.
func localhostClient() *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{Proxy: nil, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, err := net.SplitHostPort(addr); err == nil && strings.HasSuffix(host, "localhost") {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
