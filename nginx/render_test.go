package nginx

import (
	"bufio"
	"flag"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/browser"
)

var update = flag.Bool("update", false, "rewrite the examples in conf/")

// exampleParams are the parameters of the committed examples: conf.d
// snippets for the addresses of deploy/.
func exampleParams(mode string) Params {
	p := Params{Snippet: true}
	if mode == ModeTLS {
		p.ServerName = "api.example.com"
		p.TLSCertificate = "/etc/ssl/certs/api.example.com.pem"
		p.TLSCertificateKey = "/etc/ssl/private/api.example.com.key"
	}
	return p
}

// TestExamples: conf/<mode>.conf is what Render makes of exampleParams
// (go test ./nginx -run TestExamples -update rewrites them).
func TestExamples(t *testing.T) {
	for _, mode := range Modes {
		got, err := Render(mode, exampleParams(mode))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("conf", mode+".conf")
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s is out of date: go test ./nginx -run TestExamples -update", path)
		}
	}
}

func TestRenderRefuses(t *testing.T) {
	tls := func(p Params) Params {
		p.TLSCertificate, p.TLSCertificateKey = "/c.pem", "/k.pem"
		return p
	}
	for _, tc := range []struct {
		name    string
		mode    string
		p       Params
		setting string // the error must name it
	}{
		{"unknown mode", "lua", Params{Snippet: true}, "mode"},
		{"tls without a certificate", ModeTLS, Params{Snippet: true}, "TLSCertificate"},
		{"tls without a key", ModeTLS, Params{Snippet: true, TLSCertificate: "/c.pem"}, "TLSCertificate"},
		{"certificate with a space", ModeTLS, Params{Snippet: true, TLSCertificate: "/c d.pem", TLSCertificateKey: "/k.pem"}, "TLSCertificate"},
		{"key with a newline", ModeAuthRequest, Params{Snippet: true, TLSCertificate: "/c.pem", TLSCertificateKey: "/k.pem\nuser root"}, "TLSCertificateKey"},
		{"run directory and tls", ModeTLS, tls(Params{RunDir: "/tmp/a b"}), "RunDir"},
		{"no run directory", ModeUpstream, Params{}, "RunDir"},
		{"relative run directory", ModeUpstream, Params{RunDir: "run"}, "RunDir"},
		{"run directory /", ModeUpstream, Params{RunDir: "/"}, "RunDir"},
		{"directive in the run directory", ModeUpstream, Params{RunDir: "/tmp;user root"}, "RunDir"},
		{"user with a directive", ModeUpstream, Params{RunDir: "/tmp", User: "root; daemon on"}, "User"},
		{"negative workers", ModeUpstream, Params{RunDir: "/tmp", WorkerProcesses: -1}, "WorkerProcesses"},
		{"listen with a directive", ModeUpstream, Params{Snippet: true, Listen: "80; include /etc/passwd"}, "Listen"},
		{"listen port 0", ModeUpstream, Params{Snippet: true, Listen: "127.0.0.1:0"}, "Listen"},
		{"listen port too large", ModeUpstream, Params{Snippet: true, Listen: "70000"}, "Listen"},
		{"listen name", ModeUpstream, Params{Snippet: true, Listen: "http"}, "Listen"},
		{"server name with a brace", ModeUpstream, Params{Snippet: true, ServerName: "a.example}"}, "ServerName"},
		{"server name as a regex", ModeUpstream, Params{Snippet: true, ServerName: "~^x$"}, "ServerName"},
		{"cookie prefix with a dot", ModeUpstream, Params{Snippet: true, CookiePrefix: "a.b"}, "CookiePrefix"},
		{"cookie prefix too long", ModeUpstream, Params{Snippet: true, CookiePrefix: strings.Repeat("a", 65)}, "CookiePrefix"},
		{"unknown name prefix", ModeUpstream, Params{Snippet: true, NamePrefix: 7}, "CookiePrefix"},
		{"agent base path /", ModeUpstream, Params{Snippet: true, AgentBasePath: "/"}, "AgentBasePath"},
		{"agent base path with a space", ModeUpstream, Params{Snippet: true, AgentBasePath: "/a b"}, "AgentBasePath"},
		{"API prefix without a slash", ModeUpstream, Params{Snippet: true, APIPathPrefix: "/api"}, "APIPathPrefix"},
		{"API prefix /", ModeUpstream, Params{Snippet: true, APIPathPrefix: "/"}, "APIPathPrefix"},
		{"API prefix under the agent", ModeUpstream, Params{Snippet: true, APIPathPrefix: "/oauth-agent/api/"}, "APIPathPrefix"},
		{"auth path under the API", ModeAuthRequest, Params{Snippet: true, AuthPath: "/api/auth"}, "AuthPath"},
		{"auth path with a variable", ModeAuthRequest, Params{Snippet: true, AuthPath: "/$host"}, "AuthPath"},
		{"agent without a port", ModeUpstream, Params{Snippet: true, Agents: []string{"127.0.0.1"}}, "Agents[0]"},
		{"proxy with a directive", ModeUpstream, Params{Snippet: true, Proxies: []string{"127.0.0.1:8081", "127.0.0.1:1 backup; }"}}, "Proxies[1]"},
		{"proxy workers negative", ModeUpstream, Params{Snippet: true, ProxyWorkers: -1}, "ProxyWorkers"},
		{"proxy workers above 64", ModeUpstream, Params{Snippet: true, ProxyWorkers: 65}, "ProxyWorkers"},
		{"API with a scheme", ModeAuthRequest, Params{Snippet: true, APIs: []string{"http://127.0.0.1:9000"}}, "APIs[0]"},
		{"API socket with a quote", ModeAuthRequest, Params{Snippet: true, APIs: []string{`unix:/run/a"b.sock`}}, "APIs[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := Render(tc.mode, tc.p)
			if err == nil {
				t.Fatalf("rendered:\n%s", conf)
			}
			if !strings.HasPrefix(err.Error(), "nginx: ") || !strings.Contains(err.Error(), tc.setting) {
				t.Errorf("error %q does not name %s", err, tc.setting)
			}
		})
	}
}

// TestRenderProxyWorkers: a proxy's Unix socket stands for one socket per
// worker, all in the upstream; a TCP address stays one server.
func TestRenderProxyWorkers(t *testing.T) {
	conf, err := Render(ModeUpstream, Params{Snippet: true, ProxyWorkers: 3, Proxies: []string{"unix:/run/p.sock", "10.0.0.2:8081"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "upstream oauth_proxy {\n    server unix:/run/p.sock.0;\n    server unix:/run/p.sock.1;\n    server unix:/run/p.sock.2;\n    server 10.0.0.2:8081;\n"
	if !strings.Contains(string(conf), want) {
		t.Errorf("the upstream lacks the workers' sockets %q:\n%s", want, conf)
	}
}

func TestRenderDefaults(t *testing.T) {
	conf, err := Render(ModeAuthRequest, Params{Snippet: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"listen 80;", "server_name api.example.localhost;", "server 127.0.0.1:8080;", "server 127.0.0.1:8081;", "server 127.0.0.1:9000;",
		"location /oauth-agent/ {", "location = /oauth-agent/refresh {", "location /api/ {", "auth_request /_oauth-proxy/auth;",
		"large_client_header_buffers 4 16k;", "client_header_buffer_size 4k;", "client_max_body_size 10m;", "proxy_buffer_size 16k;",
		"hash $th_refresh_cookie consistent;", "keepalive 64;", `proxy_set_header x-example-csrf "";`,
		"proxy_pass_request_headers on;", "proxy_set_header Authorization $th_authorization;",
	} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("the default auth_request configuration lacks %q", want)
		}
	}
	if strings.Contains(string(conf), "pid ") || strings.Contains(string(conf), "events") {
		t.Error("a snippet holds main-context directives")
	}
	tls, err := Render(ModeAuthRequest, Params{Snippet: true, TLSCertificate: "/c.pem", TLSCertificateKey: "/k.pem", CookiePrefix: "My-App"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"listen 443 ssl;", "ssl_certificate /c.pem;", `proxy_set_header x-My-App-csrf "";`, "(?:My-App-login|My-App-at|My-App-auth|My-App-id|My-App-csrf)(?:\\.[0-7])?"} {
		if !strings.Contains(string(tls), want) {
			t.Errorf("the TLS auth_request configuration lacks %q", want)
		}
	}
}

// nginxMaps is a small interpreter of the map blocks of a rendered
// configuration, with Go's regexp standing in for PCRE (the expressions use
// nothing on which the two differ), so the cookie rewriting can be checked
// against the proxy's on many headers without starting NGINX.
type nginxMaps map[string]*nginxMap // by result variable

type nginxMap struct {
	src     string
	entries []mapEntry
	def     string
}

type mapEntry struct {
	re    *regexp.Regexp // nil: an exact match of key
	key   string
	value string
}

var (
	mapStart   = regexp.MustCompile(`^map (\$\w+) (\$\w+) \{$`)
	mapEntryRe = regexp.MustCompile(`^"(~?)(.*)" (\S+);$`)
	mapVar     = regexp.MustCompile(`\$\w+`)
)

func parseMaps(t *testing.T, conf []byte) nginxMaps {
	t.Helper()
	maps := nginxMaps{}
	var cur *nginxMap
	sc := bufio.NewScanner(strings.NewReader(string(conf)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case cur == nil:
			if m := mapStart.FindStringSubmatch(line); m != nil {
				cur = &nginxMap{src: m[1]}
				maps[m[2]] = cur
			}
		case line == "}":
			cur = nil
		case strings.HasPrefix(line, "default "):
			cur.def = strings.TrimSuffix(strings.TrimPrefix(line, "default "), ";")
		default:
			m := mapEntryRe.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("map entry %q", line)
			}
			e := mapEntry{key: m[2], value: m[3]}
			if m[1] == "~" {
				e.re = regexp.MustCompile(m[2])
			}
			cur.entries = append(cur.entries, e)
		}
	}
	return maps
}

// eval returns the value of variable name for a request whose only header
// is Cookie. Like NGINX, it computes each map variable once per request.
func (m nginxMaps) eval(name, cookieHeader string) string {
	r := &mapRequest{maps: m, cookie: cookieHeader, cache: map[string]string{}}
	return r.get(name)
}

type mapRequest struct {
	maps   nginxMaps
	cookie string
	cache  map[string]string
}

func (r *mapRequest) get(name string) string {
	if name == "$http_cookie" {
		return r.cookie
	}
	if v, ok := r.cache[name]; ok {
		return v
	}
	mp := r.maps[name]
	if mp == nil {
		panic("unknown variable " + name)
	}
	v := r.match(mp, r.get(mp.src))
	r.cache[name] = v
	return v
}

func (r *mapRequest) match(mp *nginxMap, src string) string {
	for _, e := range mp.entries {
		if e.re == nil {
			if src == e.key {
				return r.expand(e.value, nil)
			}
			continue
		}
		if sm := e.re.FindStringSubmatch(src); sm != nil {
			return r.expand(e.value, func(v string) (string, bool) {
				if i := e.re.SubexpIndex(v[1:]); i > 0 {
					return sm[i], true
				}
				return "", false
			})
		}
	}
	return r.expand(mp.def, nil)
}

// expand substitutes the captures and variables of a map value.
func (r *mapRequest) expand(value string, capture func(string) (string, bool)) string {
	if value == `""` {
		return ""
	}
	return mapVar.ReplaceAllStringFunc(value, func(v string) string {
		if capture != nil {
			if c, ok := capture(v); ok {
				return c
			}
		}
		return r.get(v)
	})
}

// TestCookieStripping: the Cookie header NGINX gives the API in
// auth_request mode is the one the proxy forwards in upstream mode, or no
// cookie at all when more runs of token-handler cookies than the maps remove
// (a browser does not send such a header).
func TestCookieStripping(t *testing.T) {
	t.Parallel()
	for _, mode := range []browser.NamePrefix{browser.NamePrefixNone, browser.NamePrefixHost, browser.NamePrefixHostHTTP} {
		conf, err := Render(ModeAuthRequest, Params{Snippet: true, NamePrefix: mode})
		if err != nil {
			t.Fatal(err)
		}
		maps := parseMaps(t, conf)
		names, err := browser.NewNames("example", mode)
		if err != nil {
			t.Fatal(err)
		}
		p := map[browser.NamePrefix]string{browser.NamePrefixHost: "__Host-", browser.NamePrefixHostHTTP: "__Host-Http-"}[mode]
		hostPrefix := mode.Host()
		th := []string{p + "example-at=v1", p + "example-at.0=v2", p + "example-at.7=v3", p + "example-csrf=v4", p + "example-login=v5",
			p + "example-id=v6", p + "example-auth=", p + "example-auth.3=v8"}
		other := []string{"theme=dark", "lang=fr", "x-example-at=1", "example-atx=2", "myexample-at=3", "example-at.8=4", "example-AT=5",
			"example=6", "a=example-at=7", "example-csrf.x=8"}
		switch mode {
		case browser.NamePrefixHost:
			other = append(other, "example-at=9", "__host-example-at=10", "__Host-Http-example-at=11")
		case browser.NamePrefixHostHTTP:
			other = append(other, "example-at=9", "__Host-example-at=10", "__Host-http-example-at=11")
		default:
			other = append(other, "__Host-example-at=9")
		}

		// Hand-picked headers, then random ones.
		headers := []string{"", "example-at=x", "theme=dark", "a=1;example-at=x;b=2", "a=1 ;  example-at=x ;b=2"}
		rng := rand.New(rand.NewPCG(1, uint64(len(p))))
		for range 2000 {
			var pairs []string
			for range rng.IntN(18) {
				if rng.IntN(2) == 0 {
					pairs = append(pairs, th[rng.IntN(len(th))])
				} else {
					pairs = append(pairs, other[rng.IntN(len(other))])
				}
			}
			headers = append(headers, strings.Join(pairs, "; "))
		}
		failClosed := 0
		for _, h := range headers {
			got := maps.eval("$th_api_cookie", h)
			raw := browser.RawCookies{[]byte(h)}
			want := string(raw.AppendWithout(nil, names.All()))
			if runs(h, names.All()) > stripSteps {
				want = ""
				failClosed++
			}
			// NGINX keeps the separators of a header it rewrites; the
			// proxy writes "; ".
			if got != want && (h == normalize(h) || normalize(got) != want) {
				t.Fatalf("host prefix %v, Cookie %q: NGINX forwards %q, the proxy %q", hostPrefix, h, got, want)
			}
		}
		if failClosed == 0 {
			t.Error("no header had more runs than the maps remove")
		}
	}
}

// runs counts the maximal runs of adjacent token-handler cookies.
func runs(header string, names []string) int {
	n, in := 0, false
	for pair := range strings.SplitSeq(header, ";") {
		name, _, _ := strings.Cut(strings.TrimSpace(pair), "=")
		isTH := false
		for _, nm := range names[:len(names)-1] { // the last is the nameless cookie
			isTH = isTH || strings.TrimSpace(name) == nm
		}
		if isTH && !in {
			n++
		}
		in = isTH
	}
	return n
}

// normalize rewrites the separators of a cookie-string to "; ".
func normalize(s string) string {
	var parts []string
	for p := range strings.SplitSeq(s, ";") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "; ")
}

// TestRefreshCookieMap: the hash key is the refresh cookie's value (its
// first chunk when chunked), wherever it sits in the header.
func TestRefreshCookieMap(t *testing.T) {
	conf, err := Render(ModeUpstream, Params{Snippet: true})
	if err != nil {
		t.Fatal(err)
	}
	maps := parseMaps(t, conf)
	for header, want := range map[string]string{
		"":                                   "",
		"example-auth=V":                     "V",
		"a=1; example-auth=V; b=2":           "V",
		"a=1;example-auth=V":                 "V",
		"example-auth.0=V; example-auth.1=W": "V",
		"example-auth.1=W; example-auth.0=V": "V",
		"xexample-auth=V":                    "",
		"example-authx=V":                    "",
		"example-auth=":                      "",
		"example-at=A; example-csrf=C":       "",
	} {
		if got := maps.eval("$th_refresh_cookie", header); got != want {
			t.Errorf("Cookie %q: hash key %q, want %q", header, got, want)
		}
	}
}

// TestLinksNoProxy: the renderer takes the error answers from browser by
// their code, so it does not link the proxy (its fasthttp, its Redis
// client) for five JSON bodies (review N2).
func TestLinksNoProxy(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/tokenhandler/tokenhandler/proxy" || dep == "github.com/valyala/fasthttp" {
			t.Errorf("package nginx links %s", dep)
		}
	}
}

// twoApps are two applications whose cookie prefixes start alike (shop,
// shop-admin), with a '-' in a name, which NGINX variables cannot hold.
func twoApps() []App {
	return []App{
		{Name: "shop", ServerNames: []string{"api.shop.example", "[::1]"}, CookiePrefix: "shop"},
		{Name: "shop-admin", ServerNames: []string{"api.admin.example"}, CookiePrefix: "shop-admin", NamePrefix: browser.NamePrefixHost,
			AgentBasePath: "/bff", APIPathPrefix: "/admin-api/", AuthPath: "/_th/auth"},
	}
}

// TestRenderApps: with Apps, a server for unknown hosts comes first, then
// each application's maps and server block, named after it; the upstreams
// stay one each.
func TestRenderApps(t *testing.T) {
	conf, err := Render(ModeAuthRequest, Params{Snippet: true, Apps: twoApps()})
	if err != nil {
		t.Fatal(err)
	}
	text := string(conf)
	servers := strings.Split(text, "\nserver {\n")
	if len(servers) != 4 {
		t.Fatalf("%d server blocks, want 3 (unknown hosts, shop, shop-admin):\n%s", len(servers)-1, text)
	}
	if unknown := servers[1]; strings.Contains(unknown, "server_name") || !strings.Contains(unknown, `return 404 '{"code":"not_found"`) ||
		!strings.Contains(unknown, "large_client_header_buffers 4 16k;") || strings.Contains(unknown, "proxy_pass") {
		t.Errorf("the first server is not the unknown hosts' 404:\n%s", unknown)
	}
	for i, want := range [][]string{
		{"server_name api.shop.example [::1];", "location /oauth-agent/ {", "location = /oauth-agent/refresh {",
			"set $th_refresh_cookie $th_refresh_cookie_shop;", "location /api/ {", "auth_request /_oauth-proxy/auth;",
			"location = /_oauth-proxy/auth {", "proxy_set_header Cookie $th_api_cookie_shop;", `proxy_set_header x-shop-csrf "";`,
			"proxy_set_header Host $host;"},
		{"server_name api.admin.example;", "location /bff/ {", "location = /bff/refresh {",
			"set $th_refresh_cookie $th_refresh_cookie_shop_admin;", "location /admin-api/ {", "auth_request /_th/auth;",
			"location = /_th/auth {", "proxy_pass http://oauth_proxy/_th/auth;", "proxy_set_header Cookie $th_api_cookie_shop_admin;",
			`proxy_set_header x-shop-admin-csrf "";`, "proxy_set_header Host $host;"},
	} {
		for _, w := range want {
			if !strings.Contains(servers[i+2], w) {
				t.Errorf("server %d lacks %q", i+2, w)
			}
		}
	}
	for _, once := range []string{"upstream oauth_agent {", "upstream oauth_agent_refresh {", "upstream oauth_proxy {", "upstream protected_api {",
		"map $http_upgrade $th_connection {", "hash $th_refresh_cookie consistent;",
		"map $http_cookie $th_refresh_cookie_shop {", "map $http_cookie $th_refresh_cookie_shop_admin {",
		"map $th_cookie_1_shop $th_api_cookie_shop {", "map $th_cookie_1_shop_admin $th_api_cookie_shop_admin {",
		"map $th_cookie_6_shop_admin $th_cookie_checked_shop_admin {"} {
		if n := strings.Count(text, once); n != 1 {
			t.Errorf("%q appears %d times, want once", once, n)
		}
	}
	// No map of the one-application configuration: every name is an
	// application's.
	for _, unnamed := range []string{"$th_api_cookie;", "$th_api_cookie {", "$th_cookie_1 ", "$th_cookie_checked;", "map $http_cookie $th_refresh_cookie {"} {
		if strings.Contains(text, unnamed) {
			t.Errorf("the configuration holds %q, a name no application owns", unnamed)
		}
	}
	if strings.Contains(text, "server_names_hash_bucket_size") {
		t.Error("short host names got a server_names_hash_bucket_size")
	}

	// A host name of 253 characters needs a bigger bucket (nginx_test
	// checks NGINX's view).
	long := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "." + strings.Repeat("d", 62) + ".example"
	apps := twoApps()
	apps[1].ServerNames = append(apps[1].ServerNames, long)
	conf, err = Render(ModeUpstream, Params{Snippet: true, Apps: apps})
	if err != nil {
		t.Fatal(err)
	}
	if want := "server_names_hash_bucket_size 320;"; len(long) != 253 || !strings.Contains(string(conf), want) {
		t.Errorf("a %d-character host: no %q", len(long), want)
	}
}

func TestRenderAppsRefuses(t *testing.T) {
	with := func(edit func(p *Params)) Params {
		p := Params{Snippet: true, Apps: twoApps()}
		edit(&p)
		return p
	}
	for _, tc := range []struct {
		name    string
		p       Params
		setting string // the error must name it
	}{
		{"server name besides apps", with(func(p *Params) { p.ServerName = "api.example.com" }), "ServerName"},
		{"cookie prefix besides apps", with(func(p *Params) { p.CookiePrefix = "shop" }), "CookiePrefix"},
		{"name prefix besides apps", with(func(p *Params) { p.NamePrefix = browser.NamePrefixHost }), "NamePrefix"},
		{"agent base path besides apps", with(func(p *Params) { p.AgentBasePath = "/a" }), "AgentBasePath"},
		{"API prefix besides apps", with(func(p *Params) { p.APIPathPrefix = "/v1/" }), "APIPathPrefix"},
		{"auth path besides apps", with(func(p *Params) { p.AuthPath = "/auth" }), "AuthPath"},
		{"keep cookie headers besides apps", with(func(p *Params) { p.KeepCookieHeaders = true }), "KeepCookieHeaders"},
		{"CORS disabled besides apps", with(func(p *Params) { p.CORSDisabled = true }), "CORSDisabled"},
		{"no name", with(func(p *Params) { p.Apps[1].Name = "" }), "Apps[1].Name"},
		{"name in upper case", with(func(p *Params) { p.Apps[1].Name = "Admin" }), "Apps[1].Name"},
		{"name with an underscore", with(func(p *Params) { p.Apps[1].Name = "shop_admin" }), "Apps[1].Name"},
		{"name with a directive", with(func(p *Params) { p.Apps[0].Name = "a;b" }), "Apps[0].Name"},
		{"name twice", with(func(p *Params) { p.Apps[1].Name = "shop" }), "Apps[1].Name"},
		{"no host", with(func(p *Params) { p.Apps[0].ServerNames = nil }), "Apps[0].ServerNames"},
		{"host with a directive", with(func(p *Params) { p.Apps[0].ServerNames = []string{"a.example;"} }), "Apps[0].ServerNames"},
		{"host with a space", with(func(p *Params) { p.Apps[0].ServerNames = []string{"a.example b.example"} }), "Apps[0].ServerNames"},
		{"host in upper case", with(func(p *Params) { p.Apps[0].ServerNames = []string{"API.example"} }), "Apps[0].ServerNames"},
		{"host with a port", with(func(p *Params) { p.Apps[0].ServerNames = []string{"api.example:443"} }), "Apps[0].ServerNames"},
		{"wildcard host", with(func(p *Params) { p.Apps[0].ServerNames = []string{"*.example"} }), "Apps[0].ServerNames"},
		{"regular expression host", with(func(p *Params) { p.Apps[0].ServerNames = []string{"~^a"} }), "Apps[0].ServerNames"},
		{"bracketed non-address", with(func(p *Params) { p.Apps[0].ServerNames = []string{"[a;b]"} }), "Apps[0].ServerNames"},
		{"host of two apps", with(func(p *Params) { p.Apps[1].ServerNames = []string{"api.admin.example", "[::1]"} }), "Apps[1].ServerNames"},
		{"cookie prefix of two apps", with(func(p *Params) { p.Apps[1].CookiePrefix = "shop" }), "Apps[1].CookiePrefix"},
		{"both default cookie prefixes", with(func(p *Params) { p.Apps[0].CookiePrefix, p.Apps[1].CookiePrefix = "", "" }), "Apps[1].CookiePrefix"},
		{"bad cookie prefix", with(func(p *Params) { p.Apps[1].CookiePrefix = "a.b" }), "Apps[1].CookiePrefix"},
		{"unknown name prefix", with(func(p *Params) { p.Apps[1].NamePrefix = 7 }), "Apps[1].CookiePrefix"},
		{"agent base path /", with(func(p *Params) { p.Apps[1].AgentBasePath = "/" }), "Apps[1].AgentBasePath"},
		{"agent base path with a directive", with(func(p *Params) { p.Apps[1].AgentBasePath = "/a;" }), "Apps[1].AgentBasePath"},
		{"API prefix without a slash", with(func(p *Params) { p.Apps[0].APIPathPrefix = "/api" }), "Apps[0].APIPathPrefix"},
		{"API prefix under the agent", with(func(p *Params) { p.Apps[1].APIPathPrefix = "/bff/api/" }), "Apps[1].APIPathPrefix"},
		{"auth path under the API", with(func(p *Params) { p.Apps[1].AuthPath = "/admin-api/auth" }), "Apps[1].AuthPath"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Render(ModeAuthRequest, tc.p); err == nil {
				t.Fatal("rendered")
			} else if !strings.HasPrefix(err.Error(), "nginx: ") || !strings.Contains(err.Error(), tc.setting) {
				t.Errorf("error %q does not name %s", err, tc.setting)
			}
		})
	}
}

// TestCookieStrippingApps: each application's maps strip its own cookies,
// as its proxy does (remove_cookie_headers strips the application's names),
// and keep the other application's, although one prefix starts the other;
// each refresh map reads its own application's refresh cookie.
func TestCookieStrippingApps(t *testing.T) {
	apps := twoApps()
	conf, err := Render(ModeAuthRequest, Params{Snippet: true, Apps: apps})
	if err != nil {
		t.Fatal(err)
	}
	maps := parseMaps(t, conf)
	var names [2]browser.Names
	for i, a := range apps {
		if names[i], err = browser.NewNames(a.CookiePrefix, a.NamePrefix); err != nil {
			t.Fatal(err)
		}
	}
	var pairs []string
	for i := range names {
		for _, c := range names[i].Cookies() {
			pairs = append(pairs, c.Name+"=v", c.Name+".1=w")
		}
	}
	pairs = append(pairs, "theme=dark", "shop=1", "shop-admin=2", "__Host-shop-at=3", "shop-admin-at=4", "lang=fr")
	rng := rand.New(rand.NewPCG(2, 3))
	headers := []string{"", "shop-at=A; __Host-shop-admin-at=B; theme=dark"}
	for range 2000 {
		var h []string
		for range rng.IntN(12) {
			h = append(h, pairs[rng.IntN(len(pairs))])
		}
		headers = append(headers, strings.Join(h, "; "))
	}
	for i, suffix := range []string{"_shop", "_shop_admin"} {
		for _, h := range headers {
			raw := browser.RawCookies{[]byte(h)}
			want := string(raw.AppendWithout(nil, names[i].All()))
			if runs(h, names[i].All()) > stripSteps {
				want = ""
			}
			if got := maps.eval("$th_api_cookie"+suffix, h); got != want && normalize(got) != want {
				t.Fatalf("%s, Cookie %q: NGINX forwards %q, the proxy %q", apps[i].Name, h, got, want)
			}
		}
	}
	for header, want := range map[string][2]string{
		"shop-auth=S; __Host-shop-admin-auth=A":       {"S", "A"},
		"__Host-shop-admin-auth=A; shop-auth.0=S":     {"S", "A"},
		"shop-admin-auth=X; __Host-shop-auth=Y":       {"", ""},
		"__Host-shop-admin-auth.0=A; theme=shop-auth": {"", "A"},
	} {
		for i, suffix := range []string{"_shop", "_shop_admin"} {
			if got := maps.eval("$th_refresh_cookie"+suffix, header); got != want[i] {
				t.Errorf("Cookie %q: %s's hash key %q, want %q", header, apps[i].Name, got, want[i])
			}
		}
	}
}
