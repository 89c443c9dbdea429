package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/agent"
	"github.com/tokenhandler/tokenhandler/examples/spa"
	"github.com/tokenhandler/tokenhandler/internal/settings/settingstest"
	"github.com/tokenhandler/tokenhandler/proxy"
)

var defaultPorts = ports{spa: 3000, agent: 8080, proxy: 8081, api: 9000, idp: 8443, nginx: 8000, agentMetrics: 9100}

// TestConfigs: the agent's and the proxy's files that devstack writes
// parse into two applications, the shop with the names make run always
// had (host, client, cookie prefix, origin), and the admin app with its
// own host, client, cookies and key, the same in both daemons.
func TestConfigs(t *testing.T) {
	o := options{ports: defaultPorts, logLevel: "info"}
	apps := demoApps()
	acfg, err := agent.ParseConfig(agentConfig(o, "http://login.example.localhost:8443", t.TempDir(), apps), nil)
	if err != nil {
		t.Fatal(err)
	}
	pcfg, err := proxy.ParseConfig(proxyConfig(o, "http://127.0.0.1:9100", apps), nil)
	if err != nil {
		t.Fatal(err)
	}
	type want struct{ name, host, client, prefix, origin string }
	wants := []want{
		{"shop", "api.example.localhost", "spa-client", "example", "http://www.example.localhost:3000"},
		{"admin", "api.admin.example.localhost", "admin-spa", "admin", "http://admin.example.localhost:3000"},
	}
	aa, pa := acfg.Applications(), pcfg.Applications()
	if len(aa) != len(wants) || len(pa) != len(wants) || acfg.Listen != "127.0.0.1:8080" || pcfg.Listen != "127.0.0.1:8081" {
		t.Fatalf("%d agent and %d proxy applications, listening on %s and %s", len(aa), len(pa), acfg.Listen, pcfg.Listen)
	}
	for i, w := range wants {
		a, p := aa[i], pa[i]
		if a.Name != w.name || !slices.Equal(a.Hosts, []string{w.host}) || a.ClientID != w.client || a.CookieNamePrefix != w.prefix ||
			a.ClientSecret != apps[i].secret || a.RedirectURI != w.origin+"/" || a.PostLogoutRedirectURI != w.origin+"/" ||
			!slices.Equal(a.TrustedWebOrigins, []string{w.origin}) || a.BasePath != "/oauth-agent" || a.Issuer != "http://login.example.localhost:8443" {
			t.Errorf("agent's apps[%d]: %s on %v, client %s, prefix %s, redirect %s, origins %v, base path %s; want %+v",
				i, a.Name, a.Hosts, a.ClientID, a.CookieNamePrefix, a.RedirectURI, a.TrustedWebOrigins, a.BasePath, w)
		}
		if p.Name != w.name || !slices.Equal(p.Hosts, []string{w.host}) || p.CookieNamePrefix != w.prefix ||
			!slices.Equal(p.TrustedWebOrigins, []string{w.origin}) || len(p.Routes) != 1 || p.Routes[0].PathPrefix != "/api/" {
			t.Errorf("proxy's apps[%d]: %s on %v, prefix %s, origins %v, routes %+v; want %+v", i, p.Name, p.Hosts, p.CookieNamePrefix, p.TrustedWebOrigins, p.Routes, w)
		}
		hexKey := string(apps[i].key.AppendHex(nil))
		settingstest.SealsWith(t, a.Keys, hexKey)
		settingstest.SealsWith(t, p.Keys, hexKey)
	}
	if aa[0].Keys.Shares(aa[1].Keys) || apps[0].secret == apps[1].secret {
		t.Error("the two applications share a key or a client secret")
	}
}

// TestIDPClients: each application's client at the development IdP sends
// the browser back to its own SPA and its logout tokens to its own host at
// the agent, which picks the application by it.
func TestIDPClients(t *testing.T) {
	apps := demoApps()
	clients := idpClients(apps, defaultPorts)
	want := map[string][2]string{
		"spa-client": {"http://www.example.localhost:3000/", "http://api.example.localhost:8080/oauth-agent/backchannel-logout"},
		"admin-spa":  {"http://admin.example.localhost:3000/", "http://api.admin.example.localhost:8080/oauth-agent/backchannel-logout"},
	}
	if len(clients) != len(want) {
		t.Fatalf("%d clients, want %d", len(clients), len(want))
	}
	for i, c := range clients {
		w, ok := want[c.ID]
		if !ok || c.Secret != apps[i].secret || !slices.Equal(c.RedirectURIs, []string{w[0]}) ||
			!slices.Equal(c.PostLogoutRedirectURIs, []string{w[0]}) || c.BackchannelLogoutURI != w[1] {
			t.Errorf("client %s: redirect %v, post-logout %v, back-channel %s; want %v", c.ID, c.RedirectURIs, c.PostLogoutRedirectURIs, c.BackchannelLogoutURI, w)
		}
	}
}

// TestSPAHosts: the SPA port serves each application's SPA on its host,
// told its own agent, API and cookie prefix (the admin app its title); any
// other host gets the shop's. With -nginx both call NGINX, on their own
// hosts.
func TestSPAHosts(t *testing.T) {
	for _, tc := range []struct {
		nginx       bool
		shop, admin spa.Config
	}{
		{false,
			spa.Config{AgentBaseURL: "http://api.example.localhost:8080/oauth-agent", APIBaseURL: "http://api.example.localhost:8081/api", CookieNamePrefix: "example"},
			spa.Config{AgentBaseURL: "http://api.admin.example.localhost:8080/oauth-agent", APIBaseURL: "http://api.admin.example.localhost:8081/api", CookieNamePrefix: "admin", Title: "Admin"}},
		{true,
			spa.Config{AgentBaseURL: "http://api.example.localhost:8000/oauth-agent", APIBaseURL: "http://api.example.localhost:8000/api", CookieNamePrefix: "example"},
			spa.Config{AgentBaseURL: "http://api.admin.example.localhost:8000/oauth-agent", APIBaseURL: "http://api.admin.example.localhost:8000/api", CookieNamePrefix: "admin", Title: "Admin"}},
	} {
		t.Run(fmt.Sprintf("nginx=%v", tc.nginx), func(t *testing.T) {
			o := options{ports: defaultPorts, nginx: tc.nginx}
			apps := demoApps()
			byHost := map[string]http.Handler{}
			for _, a := range apps {
				byHost[a.spaHost] = spa.Handler(spaConfig(o, a))
			}
			h := spaHandler(byHost, byHost[apps[0].spaHost])
			for host, want := range map[string]spa.Config{
				"www.example.localhost:3000": tc.shop, "admin.example.localhost:3000": tc.admin, "Admin.Example.Localhost": tc.admin,
				"127.0.0.1:3000": tc.shop, "other.example.localhost:3000": tc.shop,
			} {
				req := httptest.NewRequest(http.MethodGet, "/config.json", nil)
				req.Host = host
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				var got spa.Config
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got != want {
					t.Errorf("Host %s: config.json %s, want %+v", host, w.Body, want)
				}
			}
		})
	}
}

// TestBanner: the banner lists both applications, each SPA's URL on a
// line of its own (the shop's first, which devstacktest, the e2e tests and
// the curl walkthrough read), with its client, cookies, agent and API.
func TestBanner(t *testing.T) {
	o := options{ports: defaultPorts, nginx: true}
	s := &stack{idpURL: "http://login.example.localhost:8443/"}
	for _, a := range demoApps() {
		s.apps = append(s.apps, running{app: a, spaURL: a.origin(o.ports) + "/", spa: spaConfig(o, a)})
	}
	b := s.banner(o)
	urls := regexp.MustCompile(`(?m)^\s*(http://\S+/)\s*$`).FindAllStringSubmatch(b, -1)
	var got []string
	for _, m := range urls {
		got = append(got, m[1])
	}
	if want := []string{"http://www.example.localhost:3000/", "http://admin.example.localhost:3000/", "http://login.example.localhost:8443/"}; !slices.Equal(got, want) {
		t.Errorf("the banner's URL lines: %q, want %q:\n%s", got, want, b)
	}
	for _, want := range []string{
		"behind NGINX on port 8000",
		"shop: client spa-client, cookies example-*\n  agent http://api.example.localhost:8000/oauth-agent\n  API   http://api.example.localhost:8000/api\n",
		"admin: client admin-spa, cookies admin-*\n  agent http://api.admin.example.localhost:8000/oauth-agent\n  API   http://api.admin.example.localhost:8000/api\n",
	} {
		if !strings.Contains(b, want) {
			t.Errorf("the banner lacks %q:\n%s", want, b)
		}
	}
}
