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
)

// TestLogoutEverywhere is make run's back-channel logout demo, over HTTP:
// alice and bob log in to the SPA; "Log out alice everywhere" on the
// development IdP's page makes the IdP POST the agent a logout token that
// names alice; within a second the proxy refuses alice's API calls and the
// agent answers her session_expired (the SPA then shows her logged out),
// while bob goes on.
func TestLogoutEverywhere(t *testing.T) {
	p := bintest.FreePorts(t, 5)
	o := options{ports: ports{spa: p[0], agent: p[1], proxy: p[2], api: p[3], idp: p[4]}, accessTTL: 5 * time.Minute, logLevel: "warn"}
	var logs bintest.Buffer
	s, err := start(o, &logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("stack log:\n%s", logs.String())
		}
	})
	spaOrigin := strings.TrimSuffix(s.spaURL, "/")
	agentURL := fmt.Sprintf("http://127.0.0.1:%d/oauth-agent", o.ports.agent)
	apiURL := fmt.Sprintf("http://127.0.0.1:%d/api/hello", o.ports.proxy)
	idp := fmt.Sprintf("http://127.0.0.1:%d", o.ports.idp)
	client := localhostClient()

	login := func(user string) *spatest.Browser {
		b := spatest.New(t, spaOrigin)
		start := b.Call("POST", agentURL+"/login/start", nil)
		authURL, _ := start.JSON()["authorizationRequestUrl"].(string)
		if start.Status != 200 || authURL == "" {
			t.Fatalf("login/start: %d %s", start.Status, start.Body)
		}
		redirect, err := devidp.Login(t.Context(), client, authURL, user)
		if err != nil {
			t.Fatal(err)
		}
		end := b.Call("POST", agentURL+"/login/end", map[string]string{"pageUrl": redirect.String()})
		if end.Status != 200 || end.JSON()["isLoggedIn"] != true {
			t.Fatalf("login/end: %d %s", end.Status, end.Body)
		}
		b.CSRF, _ = end.JSON()["csrf"].(string)
		if r := b.Call("GET", apiURL, nil); r.Status != 200 {
			t.Fatalf("%s's API call: %d %s", user, r.Status, r.Body)
		}
		return b
	}
	alice, bob := login("alice"), login("bob")

	// The IdP's page, as the developer's browser sees it.
	resp, err := client.Get(idp + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="form_token" value="([^"]*)"`).FindSubmatch(body)
	if m == nil || !strings.Contains(string(body), "Log out alice everywhere") {
		t.Fatalf("the IdP's page has no 'Log out alice everywhere':\n%s", body)
	}
	start := time.Now()
	resp, err = client.PostForm(idp+"/users/logout", url.Values{"sub": {"alice"}, "form_token": {html.UnescapeString(string(m[1]))}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<code>spa-client</code> acknowledged (200)") {
		t.Fatalf("log out everywhere: %s; the page does not say the agent acknowledged:\n%s", resp.Status, body)
	}
	var status int
	if !bintest.Within(time.Until(start.Add(time.Second)), func() bool {
		status = alice.Call("GET", apiURL, nil).Status
		return status == 401
	}) {
		t.Fatalf("alice's API call a second after the logout: %d, want 401", status)
	}
	t.Logf("the proxy refused alice %v after the click", time.Since(start).Round(time.Millisecond))
	if r := alice.Call("GET", agentURL+"/userInfo", nil); r.Status != 401 || r.Code() != "session_expired" {
		t.Errorf("alice's userInfo: %d %s, want 401 session_expired", r.Status, r.Body)
	}
	if r := bob.Call("GET", apiURL, nil); r.Status != 200 {
		t.Errorf("bob's API call after alice's logout: %d, want 200", r.Status)
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
