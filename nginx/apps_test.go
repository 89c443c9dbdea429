package nginx_test

// Black-box tests of configurations with several applications (issue
// #15) with real NGINX: every mode passes nginx -t with 2 and 50
// applications; each application's requests reach the agent and the proxy
// with its Host, its own locations, cookies and CSRF header, and its own
// refresh hashing; an unknown host gets the 404 JSON; a real proxy with
// apps behind NGINX serves each application and refuses the other's
// cookies.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/nginx"
	"github.com/tokenhandler/tokenhandler/nginx/nginxtest"
	"github.com/tokenhandler/tokenhandler/proxy"
	"github.com/tokenhandler/tokenhandler/proxy/proxytest"
	"github.com/tokenhandler/tokenhandler/session"
)

// manyApps returns n applications app-00, app-01, ... on the hosts
// api.app-NN.example.localhost and www.app-NN.example.localhost, with the
// other settings varied: their own agent base path, API prefix and auth
// path, cookie headers kept, CORS off, __Host- names.
func manyApps(n int) []nginx.App {
	apps := make([]nginx.App, n)
	for i := range apps {
		a := nginx.App{
			Name:         fmt.Sprintf("app-%02d", i),
			ServerNames:  []string{fmt.Sprintf("api.app-%02d.example.localhost", i), fmt.Sprintf("www.app-%02d.example.localhost", i)},
			CookiePrefix: fmt.Sprintf("app%02d", i),
		}
		if i%3 == 1 {
			a.AgentBasePath, a.APIPathPrefix, a.AuthPath = "/bff", "/v1/", "/_auth"
		}
		if i%4 == 2 {
			a.KeepCookieHeaders = true
		}
		if i%5 == 3 {
			a.CORSDisabled = true
		}
		if i%2 == 1 {
			a.NamePrefix = browser.NamePrefixHost
		}
		apps[i] = a
	}
	return apps
}

// longHost is a host name of 253 characters, the longest there is: NGINX's
// default server_names_hash_bucket_size cannot hold it.
var longHost = strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "." + strings.Repeat("d", 62) + ".example"

// TestNginxAcceptsApps runs nginx -t on every mode with 2 and with 50
// applications, whole and as a conf.d snippet; one application has an IPv6
// host and one a host of 253 characters, which only the rendered
// server_names_hash_bucket_size lets NGINX accept.
func TestNginxAcceptsApps(t *testing.T) {
	bin := nginxtest.Binary(t)
	t.Parallel()
	certFile, keyFile, _ := selfSigned(t, t.TempDir())
	for _, mode := range nginx.Modes {
		for _, n := range []int{2, 50} {
			for _, snippet := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%d apps/snippet=%v", mode, n, snippet), func(t *testing.T) {
					apps := manyApps(n)
					apps[0].ServerNames = append(apps[0].ServerNames, "[::1]")
					apps[n-1].ServerNames = append(apps[n-1].ServerNames, longHost)
					p := nginx.Params{Snippet: snippet, Apps: apps, Agents: []string{"127.0.0.1:8080", "127.0.0.1:8090"},
						Proxies: []string{"unix:/run/th/proxy.sock"}, ProxyWorkers: 2}
					if mode == nginx.ModeTLS {
						p.TLSCertificate, p.TLSCertificateKey = certFile, keyFile
					}
					conf, err := nginx.Render(mode, runParams(t, p))
					if err != nil {
						t.Fatal(err)
					}
					if got := strings.Count(string(conf), "server_name "); got != n {
						t.Errorf("%d server_name directives, want %d", got, n)
					}
					nginxTest(t, bin, conf, snippet)
					if snippet {
						return
					}
					bucket := "server_names_hash_bucket_size 320;"
					if !strings.Contains(string(conf), bucket) {
						t.Fatalf("no %q for a host of %d characters", bucket, len(longHost))
					}
					without := strings.Replace(string(conf), bucket, "", 1)
					if err := nginxCheck(t, bin, []byte(without)); err == nil || !strings.Contains(err.Error(), "server_names_hash") {
						t.Errorf("NGINX accepts the long host without %q (%v): the directive is not needed", bucket, err)
					}
				})
			}
		}
	}
}

// recorder is a fake agent or proxy: it records the requests it gets and
// answers each with its id. As a proxy it answers the auth requests of
// auth_request mode (a path ending in /auth) with a bearer token naming
// the Host it saw, and preflights with 204.
type recorder struct {
	*httptest.Server
	id   string
	mu   sync.Mutex
	reqs []*http.Request
}

func newRecorder(t *testing.T, id string) *recorder {
	t.Helper()
	r := &recorder{id: id}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, req.Clone(req.Context()))
		r.mu.Unlock()
		switch {
		case req.Method == http.MethodOptions:
			w.WriteHeader(http.StatusNoContent)
		case strings.HasSuffix(req.URL.Path, "/auth"):
			w.Header().Set("Authorization", "Bearer for-"+req.Host)
			w.Header().Set("Access-Control-Allow-Origin", req.Header.Get("Origin"))
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Set("Vary", "Origin")
		default:
			fmt.Fprint(w, r.id)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) addr() string { return strings.TrimPrefix(r.URL, "http://") }

// take returns the requests recorded since the last take.
func (r *recorder) take() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	reqs := r.reqs
	r.reqs = nil
	return reqs
}

// TestAppsRouting: in every mode, each application's requests reach the
// agent and the proxy with the application's Host, through its own
// locations; in auth_request mode the auth request carries that Host and
// the API gets the Cookie header without the application's cookies (the
// other application's stay, as its proxy leaves them) and without its CSRF
// header; /refresh hashes on the application's own refresh cookie; an
// unknown host and another application's paths get the 404 JSON.
func TestAppsRouting(t *testing.T) {
	nginxtest.Binary(t)
	t.Parallel()
	certFile, keyFile, cert := selfSigned(t, t.TempDir())
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	apps := []nginx.App{
		{Name: "shop", ServerNames: []string{"api.shop.example", "shop.example"}, CookiePrefix: "shop"},
		{Name: "shop-admin", ServerNames: []string{"api.admin.example"}, CookiePrefix: "shop-admin",
			AgentBasePath: "/bff", APIPathPrefix: "/admin-api/", AuthPath: "/_th/auth"},
	}
	for _, mode := range nginx.Modes {
		t.Run(mode, func(t *testing.T) {
			agents := []*recorder{newRecorder(t, "agent-a"), newRecorder(t, "agent-b")}
			prx := newRecorder(t, "proxy")
			a := newAPI(t)
			p := nginx.Params{Apps: apps, Agents: []string{agents[0].addr(), agents[1].addr()}, Proxies: []string{prx.addr()}, APIs: []string{a.addr()}}
			c := client
			if mode == nginx.ModeTLS {
				p.TLSCertificate, p.TLSCertificateKey = certFile, keyFile
				c = newClient(&tls.Config{RootCAs: roots, ServerName: apiHost})
			}
			in := startNGINX(t, mode, p)
			scheme := strings.SplitN(in.url, ":", 2)[0]
			agentGot := func() []*http.Request { return append(agents[0].take(), agents[1].take()...) }
			notFound := string(browser.ErrorAnswerFor("not_found").Body)

			for i, app := range apps {
				other := apps[1-i]
				base, prefix, auth := app.AgentBasePath, app.APIPathPrefix, app.AuthPath
				if base == "" {
					base, prefix, auth = "/oauth-agent", "/api/", "/_oauth-proxy/auth"
				}
				for _, host := range app.ServerNames {
					// The agent.
					resp := do(t, c, in.url, request{method: "GET", path: base + "/claims", headers: [][2]string{hdr("Host", host+":8443"), trusted()}})
					got := agentGot()
					if resp.status != 200 || len(got) != 1 || got[0].Host != host || got[0].URL.Path != base+"/claims" ||
						got[0].Header.Get("X-Forwarded-Host") != host || got[0].Header.Get("X-Forwarded-Proto") != scheme {
						t.Fatalf("%s: GET %s/claims: %d %q; the agents got %s", host, base, resp.status, resp.body, describe(got))
					}

					// The API, through the proxy or after its yes.
					cookies := "theme=dark; " + app.CookiePrefix + "-at=A; " + other.CookiePrefix + "-at=B; " + app.CookiePrefix + "-csrf=C; " +
						other.CookiePrefix + "-csrf=D; lang=fr"
					hdrs := [][2]string{hdr("Host", host), trusted(), cookie(cookies), hdr("x-"+app.CookiePrefix+"-csrf", "c"), hdr("x-"+other.CookiePrefix+"-csrf", "d")}
					a.Received()
					resp = do(t, c, in.url, request{method: "POST", path: prefix + "things?q=1", headers: hdrs})
					seen := prx.take()
					r, _ := a.Received()
					if mode == nginx.ModeAuthRequest {
						if resp.status != 200 || len(seen) != 1 || seen[0].Host != host || seen[0].URL.Path != auth ||
							seen[0].Header.Get("X-Original-URI") != prefix+"things?q=1" || seen[0].Header.Get("Cookie") != cookies {
							t.Fatalf("%s: POST %sthings: %d %q; the proxy got %s", host, prefix, resp.status, resp.body, describe(seen))
						}
						if r == nil || r.Host != host || r.Header.Get("Authorization") != "Bearer for-"+host {
							t.Fatalf("%s: the API got %v", host, r)
						}
						want := "theme=dark; " + other.CookiePrefix + "-at=B; " + other.CookiePrefix + "-csrf=D; lang=fr"
						if got := r.Header.Get("Cookie"); got != want {
							t.Errorf("%s: the API got Cookie %q, want %q (the application's own cookies stripped)", host, got, want)
						}
						if r.Header.Get("x-"+app.CookiePrefix+"-csrf") != "" || r.Header.Get("x-"+other.CookiePrefix+"-csrf") != "d" {
							t.Errorf("%s: the API got x-%s-csrf %q and x-%s-csrf %q, want only the second", host,
								app.CookiePrefix, r.Header.Get("x-"+app.CookiePrefix+"-csrf"), other.CookiePrefix, r.Header.Get("x-"+other.CookiePrefix+"-csrf"))
						}
						if resp.header.Get("Access-Control-Allow-Origin") != trustedOrigin {
							t.Errorf("%s: Access-Control-Allow-Origin %q", host, resp.header.Get("Access-Control-Allow-Origin"))
						}

						// A preflight goes to the proxy with the Host.
						resp = do(t, c, in.url, request{method: "OPTIONS", path: prefix + "things", headers: [][2]string{hdr("Host", host), trusted(),
							hdr("Access-Control-Request-Method", "POST")}})
						if seen := prx.take(); resp.status != 204 || len(seen) != 1 || seen[0].Host != host || seen[0].Method != "OPTIONS" {
							t.Errorf("%s: preflight: %d; the proxy got %s", host, resp.status, describe(seen))
						}
					} else {
						// The proxy strips the cookies itself: NGINX passes them on.
						if resp.status != 200 || resp.body != "proxy" || len(seen) != 1 || seen[0].Host != host ||
							seen[0].URL.RequestURI() != prefix+"things?q=1" || seen[0].Header.Get("Cookie") != cookies ||
							seen[0].Header.Get("X-Forwarded-Proto") != scheme {
							t.Fatalf("%s: POST %sthings: %d %q; the proxy got %s", host, prefix, resp.status, resp.body, describe(seen))
						}
						if r != nil {
							t.Errorf("%s: NGINX called the API itself in upstream mode", host)
						}
					}

					// The other application's paths are not this one's.
					for _, path := range []string{map[bool]string{true: "/oauth-agent/claims", false: "/bff/claims"}[i == 1],
						map[bool]string{true: "/api/x", false: "/admin-api/x"}[i == 1]} {
						resp := do(t, c, in.url, request{method: "GET", path: path, headers: [][2]string{hdr("Host", host), trusted()}})
						if resp.status != 404 || resp.body != notFound {
							t.Errorf("%s: GET %s (the other application's): %d %q, want 404", host, path, resp.status, resp.body)
						}
					}
				}

				// Refresh: the application's own refresh cookie is the hash
				// key, whatever the other application's says.
				host := app.ServerNames[0]
				perAgent := map[string]int{}
				for j := range 24 {
					v := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s-refresh-%d", app.Name, j))
					refresh := func(cookieLine string) string {
						t.Helper()
						resp := do(t, c, in.url, request{method: "POST", path: base + "/refresh", headers: [][2]string{hdr("Host", host), trusted(), cookie(cookieLine)}})
						if got := agentGot(); resp.status != 200 || len(got) != 1 || got[0].Host != host {
							t.Fatalf("%s: POST %s/refresh: %d; the agents got %s", host, base, resp.status, describe(got))
						}
						return resp.body
					}
					first := refresh(app.CookiePrefix + "-auth=" + v)
					perAgent[first]++
					for k := range 3 {
						line := fmt.Sprintf("%s-auth=other-%d-%d; %s-auth=%s", other.CookiePrefix, j, k, app.CookiePrefix, v)
						if got := refresh(line); got != first {
							t.Fatalf("%s: refresh cookie %d with Cookie %q reached %s, alone %s: the hash key is not the application's cookie", host, j, line, got, first)
						}
					}
				}
				if perAgent["agent-a"] == 0 || perAgent["agent-b"] == 0 {
					t.Errorf("%s: 24 refresh cookies reached %v; want both agents", host, perAgent)
				}
			}

			// An unknown host: NGINX's 404, nothing reaches the daemons.
			for _, host := range []string{"other.example", "127.0.0.1", "shop.example.evil"} {
				resp := do(t, c, in.url, request{method: "GET", path: "/api/x", headers: [][2]string{hdr("Host", host), trusted()}})
				if resp.status != 404 || resp.body != notFound || resp.header.Get("Content-Type") != "application/json" {
					t.Errorf("host %s: %d %q (%s), want 404 %s", host, resp.status, resp.body, resp.header.Get("Content-Type"), notFound)
				}
			}
			if got := append(agentGot(), prx.take()...); len(got) != 0 {
				t.Errorf("unknown hosts reached the daemons: %s", describe(got))
			}
		})
	}
}

// describe lists requests by method, Host and URI, for failure messages.
func describe(reqs []*http.Request) string {
	var b strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&b, "[%s %s %s] ", r.Method, r.Host, r.URL.RequestURI())
	}
	return fmt.Sprintf("%d requests %s", len(reqs), b.String())
}

// TestAppsRealProxy: two applications through NGINX in both modes and one
// real oauth-proxy with apps, which picks the application by the Host NGINX
// passes on (in auth_request mode, that of the auth subrequest): each
// application's cookie reaches the API as its token, the other
// application's is refused at its host, the cookies and CSRF header the
// API gets are as the proxy alone strips them, and an unknown host never
// reaches the proxy.
func TestAppsRealProxy(t *testing.T) {
	const adminOrigin = "http://admin.example.localhost:3000"
	nginxtest.Binary(t)
	t.Parallel()
	a := newAPI(t)
	keys := map[string]*proxytest.Keys{"shop": proxytest.NewKeys(t), "admin": proxytest.NewKeys(t)}
	for name, k := range keys {
		k.Codec = k.Codec.WithApp(name)
	}
	yaml := fmt.Sprintf(`
listen: 127.0.0.1:0
trusted_web_origins: [%q]
auth_endpoint: true
timeouts: {upstream: 5s}
log: {level: warn}
apps:
  - name: shop
    hosts: [shop.example.localhost]
    cookie: {prefix: shop}
    encryption_keys: [%q]
    routes: [{path_prefix: /api/, upstream: "http://%s"}]
  - name: admin
    hosts: [admin.example.localhost]
    trusted_web_origins: [%q]
    cookie: {prefix: admin}
    encryption_keys: [%q]
    auth_path: /_th/auth
    routes: [{path_prefix: /admin-api/, upstream: "http://%s"}]
`, trustedOrigin, keys["shop"].Hex[0], a.addr(), adminOrigin, keys["admin"].Hex[0], a.addr())
	cfg, err := proxy.ParseConfig([]byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := proxy.NewServer(cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	bintest.Serve(t, srv.Serve, srv.Shutdown)
	apps := []nginx.App{
		{Name: "shop", ServerNames: []string{"shop.example.localhost"}, CookiePrefix: "shop"},
		{Name: "admin", ServerNames: []string{"admin.example.localhost"}, CookiePrefix: "admin", APIPathPrefix: "/admin-api/", AuthPath: "/_th/auth"},
	}
	seal := func(app string, p session.Purpose, v string) string { return keys[app].Seal(t, p, v) }
	for _, mode := range []string{nginx.ModeUpstream, nginx.ModeAuthRequest} {
		t.Run(mode, func(t *testing.T) {
			in := startNGINX(t, mode, nginx.Params{Apps: apps, Proxies: []string{srv.Addr().String()}, APIs: []string{a.addr()}, Agents: []string{"127.0.0.1:1"}})
			for i, app := range []struct{ name, host, other, path, origin string }{
				{"shop", "shop.example.localhost", "admin", "/api/x", trustedOrigin},
				{"admin", "admin.example.localhost", "shop", "/admin-api/x", adminOrigin},
			} {
				own := app.name + "-at=" + seal(app.name, session.AccessToken, "token-of-"+app.name)
				theirs := app.other + "-at=" + seal(app.other, session.AccessToken, "token-of-"+app.other)
				csrf := app.name + "-csrf=" + seal(app.name, session.CSRF, "csrf-"+app.name)
				a.Received()
				resp := do(t, client, in.url, request{method: "POST", path: app.path, headers: [][2]string{hdr("Host", app.host), hdr("Origin", app.origin),
					cookie("theme=dark; " + own + "; " + theirs + "; " + csrf), hdr("x-"+app.name+"-csrf", "csrf-"+app.name)}})
				r, _ := a.Received()
				if resp.status != 200 || r == nil || r.Header.Get("Authorization") != "Bearer token-of-"+app.name {
					t.Fatalf("%s: POST with its cookies: %d %q; the API got %v", app.host, resp.status, resp.body, r)
				}
				if got, want := r.Header.Get("Cookie"), "theme=dark; "+theirs; got != want || r.Header.Get("x-"+app.name+"-csrf") != "" {
					t.Errorf("%s: the API got Cookie %.60q… and x-%s-csrf %q, want %.60q… and none", app.host, got, app.name, r.Header.Get("x-"+app.name+"-csrf"), want)
				}
				// The other application's cookie, under this one's name or
				// its own: refused at this host.
				for _, c := range []string{theirs, app.name + "-at=" + seal(apps[1-i].Name, session.AccessToken, "token-of-"+app.other)} {
					resp := do(t, client, in.url, request{method: "GET", path: app.path, headers: [][2]string{hdr("Host", app.host), hdr("Origin", app.origin), cookie(c)}})
					if r, _ := a.Received(); resp.status != 401 || resp.body != unauthorizedJSON || r != nil {
						t.Errorf("%s: another application's cookie %.20q…: %d %q; the API got %v", app.host, c, resp.status, resp.body, r)
					}
				}
			}
			resp := do(t, client, in.url, request{method: "GET", path: "/api/x", headers: [][2]string{hdr("Host", "other.example.localhost"), trusted(),
				cookie("shop-at=" + seal("shop", session.AccessToken, "token-of-shop"))}})
			if r, _ := a.Received(); resp.status != 404 || r != nil {
				t.Errorf("an unknown host: %d %q; the API got %v", resp.status, resp.body, r)
			}
		})
	}
}
