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
		{"host prefix contradicting the name prefix", ModeUpstream, Params{Snippet: true, HostPrefix: true, NamePrefix: browser.NamePrefixHostHTTP}, "HostPrefix"},
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
