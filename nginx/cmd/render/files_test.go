package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/nginx"
	"github.com/tokenhandler/tokenhandler/nginx/nginxtest"
)

const clientSecret = "s3cret-client-value"

// daemonYAML are a proxy's and an agent's files with two applications, shop
// and admin, that agree: admin has its own base path, auth path, cookie
// names (__Host-), keeps the cookie headers, has CORS off, and a second
// route. The keys are each application's, the same in both files.
type daemonYAML struct {
	proxy, agent string
	keys         []string // hex, never in an error
}

func newDaemonYAML() daemonYAML {
	k1, k2 := string(crypto.GenerateKey().AppendHex(nil)), string(crypto.GenerateKey().AppendHex(nil))
	return daemonYAML{keys: []string{k1, k2}, proxy: `
listen: 127.0.0.1:18081
trusted_web_origins: ["https://www.shop.example"]
routes: [{path_prefix: /api/, upstream: "http://127.0.0.1:9000"}]
auth_endpoint: true
apps:
  - name: shop
    hosts: [api.shop.example, shop.example]
    cookie: {prefix: shop}
    encryption_keys: ["` + k1 + `"]
  - name: admin
    hosts: [api.admin.example]
    cookie: {prefix: admin, name_prefix: host}
    encryption_keys: ["` + k2 + `"]
    trusted_web_origins: ["https://admin.example"]
    routes: [{path_prefix: /admin-api/, upstream: "http://127.0.0.1:9001"}, {path_prefix: /reports/, upstream: "http://127.0.0.1:9002"}]
    auth_path: /_th/auth
    remove_cookie_headers: false
    cors: {enabled: false}
`, agent: `
listen: unix:/run/th/agent.sock
client_secret: ` + clientSecret + `
issuer: https://login.example.com
apps:
  - name: shop
    hosts: [shop.example, api.shop.example]
    client_id: shop-spa
    redirect_uri: https://www.shop.example/
    trusted_web_origins: ["https://www.shop.example"]
    cookie: {prefix: shop}
    encryption_keys: ["` + k1 + `"]
  - name: admin
    hosts: [api.admin.example]
    base_path: /bff
    client_id: admin-spa
    redirect_uri: https://admin.example/
    trusted_web_origins: ["https://admin.example"]
    cookie: {prefix: admin, name_prefix: host}
    encryption_keys: ["` + k2 + `"]
`}
}

// write writes the two files into a new directory and returns their paths.
func (d daemonYAML) write(t *testing.T) (proxyFile, agentFile string) {
	t.Helper()
	dir := t.TempDir()
	proxyFile, agentFile = filepath.Join(dir, "proxy.yaml"), filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(proxyFile, []byte(d.proxy), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(agentFile, []byte(d.agent), 0o600); err != nil {
		t.Fatal(err)
	}
	return proxyFile, agentFile
}

// wantApps are the applications of newDaemonYAML as nginx.Render takes
// them, for mode.
func wantApps(mode string) []nginx.App {
	apps := []nginx.App{
		{Name: "shop", ServerNames: []string{"api.shop.example", "shop.example"}, CookiePrefix: "shop", AgentBasePath: "/oauth-agent",
			APIPathPrefix: "/api/", AuthPath: "/_oauth-proxy/auth"},
		{Name: "admin", ServerNames: []string{"api.admin.example"}, CookiePrefix: "admin", NamePrefix: browser.NamePrefixHost,
			AgentBasePath: "/bff", APIPathPrefix: "/admin-api/", AuthPath: "/_th/auth", KeepCookieHeaders: true, CORSDisabled: true},
	}
	if mode == nginx.ModeAuthRequest {
		apps[0].APIPathPrefix, apps[1].APIPathPrefix = "/v1/", "/v1/"
	}
	return apps
}

// TestRunFromFiles: the applications, their cookie names and paths, and
// the daemons' addresses come from the two files, in both modes; upstream
// mode warns of the routes after the first.
func TestRunFromFiles(t *testing.T) {
	proxyFile, agentFile := newDaemonYAML().write(t)
	for _, tc := range []struct {
		mode  string
		extra []string
		warn  string
	}{
		{nginx.ModeUpstream, nil, "render: warning: application admin: NGINX sends only routes[0].path_prefix /admin-api/ to the proxy; the other routes (/reports/) of -proxy-config " + proxyFile + " get NGINX's 404\n"},
		{nginx.ModeAuthRequest, []string{"-api-path-prefix", "/v1/", "-api", "127.0.0.1:9000"}, ""},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			var out, warn bytes.Buffer
			args := append([]string{"-snippet", "-mode", tc.mode, "-proxy-config", proxyFile, "-agent-config", agentFile}, tc.extra...)
			if err := run(args, &out, &warn); err != nil {
				t.Fatal(err)
			}
			want, err := nginx.Render(tc.mode, nginx.Params{Snippet: true, Apps: wantApps(tc.mode), Agents: []string{"unix:/run/th/agent.sock"},
				Proxies: []string{"127.0.0.1:18081"}, ProxyWorkers: 1, APIs: []string{"127.0.0.1:9000"}})
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != string(want) {
				t.Errorf("render %q wrote\n%s\nwant\n%s", args, out.String(), want)
			}
			if warn.String() != tc.warn {
				t.Errorf("stderr %q, want %q", warn.String(), tc.warn)
			}
			for _, w := range []string{"server_name api.shop.example shop.example;", "server_name api.admin.example;", "location /bff/ {"} {
				if !strings.Contains(out.String(), w) {
					t.Errorf("no %q", w)
				}
			}
		})
	}

	// NGINX takes the whole configuration of either mode.
	if bin, err := nginxtest.Find(); err == nil {
		for _, mode := range []string{nginx.ModeUpstream, nginx.ModeAuthRequest} {
			dir := t.TempDir()
			conf := filepath.Join(dir, "nginx.conf")
			if err := run([]string{"-mode", mode, "-run-dir", dir, "-proxy-config", proxyFile, "-agent-config", agentFile, "-o", conf}, io.Discard, io.Discard); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			out, err := exec.CommandContext(ctx, bin, "-t", "-q", "-p", dir, "-c", conf).CombinedOutput()
			cancel()
			if err != nil {
				t.Errorf("%s: nginx -t: %v\n%s", mode, err, out)
			}
		}
	}

	// Flags that agree with the files, and those no file sets, pass.
	var out bytes.Buffer
	args := []string{"-snippet", "-proxy-config", proxyFile, "-agent-config", agentFile, "-proxy", "10.0.0.2:8081", "-agent", "10.0.0.3:8080",
		"-proxy-workers", "1", "-listen", "8080"}
	if err := run(args, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	want, err := nginx.Render(nginx.ModeUpstream, nginx.Params{Snippet: true, Apps: wantApps(nginx.ModeUpstream), Agents: []string{"10.0.0.3:8080"},
		Proxies: []string{"10.0.0.2:8081"}, Listen: "8080"})
	if err != nil || out.String() != string(want) {
		t.Errorf("render %q: %v\n%s", args, err, out.String())
	}

	// The proxy's file alone: the agent's settings are the flags', for
	// every application.
	out.Reset()
	if err := run([]string{"-snippet", "-proxy-config", proxyFile, "-agent-base-path", "/auth-agent"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "location /auth-agent/ {") != 2 {
		t.Errorf("-agent-base-path with the proxy's file alone is not every application's:\n%s", out.String())
	}
}

// oneAppAgent is an agent's file without apps, its one application
// client spa on www.example.com with key k (hex); rest ends the file.
func oneAppAgent(k, rest string) string {
	return `
listen: 127.0.0.1:18080
client_secret: ` + clientSecret + `
issuer: https://login.example.com
client_id: spa
redirect_uri: https://www.example.com/
trusted_web_origins: ["https://www.example.com"]
encryption_keys: ["` + k + `"]
` + rest
}

// TestRunFromFilesOneApp: files without apps fill in the one
// application's cookie names and paths; -server-name still names it.
func TestRunFromFilesOneApp(t *testing.T) {
	k := string(crypto.GenerateKey().AppendHex(nil))
	d := daemonYAML{proxy: `
listen: unix:/run/th/proxy.sock
workers: 2
trusted_web_origins: ["https://www.example.com"]
encryption_keys: ["` + k + `"]
cookie: {prefix: one, name_prefix: host-http}
auth_path: /_check
`, agent: oneAppAgent(k, `cookie: {prefix: one, name_prefix: host-http}
base_path: /agent
`)}
	proxyFile, agentFile := d.write(t)
	var out bytes.Buffer
	args := []string{"-snippet", "-mode", "auth_request", "-proxy-config", proxyFile, "-agent-config", agentFile, "-server-name", "api.example.com",
		"-cookie-prefix", "one"}
	if err := run(args, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	want, err := nginx.Render(nginx.ModeAuthRequest, nginx.Params{Snippet: true, ServerName: "api.example.com", CookiePrefix: "one",
		NamePrefix: browser.NamePrefixHostHTTP, AgentBasePath: "/agent", AuthPath: "/_check", Agents: []string{"127.0.0.1:18080"},
		Proxies: []string{"unix:/run/th/proxy.sock"}, ProxyWorkers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("render %q wrote\n%s\nwant\n%s", args, out.String(), want)
	}
}

// TestRunFromFilesRefuses: files that disagree, flags that contradict
// them, and proxies that do not serve the mode are refused with a message
// that says which; none quotes a key or the client secret.
func TestRunFromFilesRefuses(t *testing.T) {
	d := newDaemonYAML()
	edit := func(which, old, new string) daemonYAML {
		e := d
		if which == "proxy" {
			e.proxy = strings.Replace(e.proxy, old, new, 1)
		} else {
			e.agent = strings.Replace(e.agent, old, new, 1)
		}
		return e
	}
	adminOfAgent := d.agent[strings.Index(d.agent, "  - name: admin"):]
	noAppsAgent := oneAppAgent(d.keys[0], "cookie: {prefix: shop}\n")
	for _, tc := range []struct {
		name  string
		files daemonYAML
		args  []string
		want  string // the message holds it; PROXY and AGENT stand for the files' paths
	}{
		{"an application missing in the agent's file", edit("agent", adminOfAgent, ""), nil,
			"application admin is in -proxy-config PROXY but not in -agent-config AGENT: both files must list the same applications"},
		{"an application missing in the proxy's file", edit("agent", "  - name: admin", "  - name: extra"), nil,
			"application extra is in -agent-config AGENT but not in -proxy-config PROXY: both files must list the same applications"},
		{"apps in one file only", daemonYAML{proxy: d.proxy, agent: noAppsAgent}, nil,
			"-proxy-config PROXY lists applications (apps:) and -agent-config AGENT does not: both files must list the same applications"},
		{"other hosts", edit("agent", "hosts: [api.admin.example]", "hosts: [admin.example]"), nil,
			"application admin: hosts [api.admin.example] in -proxy-config PROXY, [admin.example] in -agent-config AGENT: NGINX sends one set of hosts to both"},
		{"other cookie prefixes", edit("agent", "cookie: {prefix: admin, name_prefix: host}", "cookie: {prefix: adm, name_prefix: host}"), nil,
			`application admin: cookie.prefix "admin" in -proxy-config PROXY, "adm" in -agent-config AGENT: they must be equal`},
		{"keys that share nothing", edit("agent", `encryption_keys: ["`+d.keys[1]+`"]`, `encryption_keys: ["`+string(crypto.GenerateKey().AppendHex(nil))+`"]`), nil,
			"application admin: the encryption keys of -proxy-config PROXY and -agent-config AGENT share no key: the proxy could open no cookie the agent writes"},
		{"a format the proxy does not read", edit("agent", "cookie: {prefix: admin, name_prefix: host}", "cookie: {prefix: admin, name_prefix: host, format: v1}"), nil,
			"application admin: cookie.format v1 in -agent-config AGENT is not read by -proxy-config PROXY (cookie.format v2"},
		{"other name prefixes", edit("agent", "cookie: {prefix: admin, name_prefix: host}", "cookie: {prefix: admin}"), nil,
			"application admin: cookie.name_prefix host in -proxy-config PROXY, none in -agent-config AGENT: they must be equal"},
		{"-cookie-prefix", d, []string{"-cookie-prefix", "shop"},
			"-cookie-prefix shop contradicts cookie.prefix admin of application admin in -proxy-config PROXY: leave the flag out"},
		{"-name-prefix", d, []string{"-name-prefix", "host"},
			"-name-prefix host contradicts cookie.name_prefix none of application shop in -proxy-config PROXY: leave the flag out"},
		{"-host-prefix", d, []string{"-host-prefix"},
			"-name-prefix host contradicts cookie.name_prefix none of application shop in -proxy-config PROXY: leave the flag out"},
		{"-server-name", d, []string{"-server-name", "api.example.com"},
			"-server-name: the hosts of the applications in -proxy-config PROXY are the server names: leave it out"},
		{"-agent-base-path", d, []string{"-agent-base-path", "/oauth-agent/"},
			"-agent-base-path /oauth-agent/ contradicts base_path /bff of application admin in -agent-config AGENT: leave the flag out"},
		{"-auth-path", d, []string{"-mode", "auth_request", "-auth-path", "/_th/auth"},
			"-auth-path /_th/auth contradicts auth_path /_oauth-proxy/auth of application shop in -proxy-config PROXY: leave the flag out"},
		{"-keep-cookie-headers", d, []string{"-keep-cookie-headers"},
			"-keep-cookie-headers true contradicts remove_cookie_headers true of application shop in -proxy-config PROXY: leave the flag out"},
		{"-cors-enabled", d, []string{"-cors-enabled=true"},
			"-cors-enabled true contradicts cors.enabled false of application admin in -proxy-config PROXY: leave the flag out"},
		{"-api-path-prefix in upstream mode", d, []string{"-api-path-prefix", "/api/"},
			"-api-path-prefix /api/ contradicts routes[0].path_prefix /admin-api/ of application admin in -proxy-config PROXY: leave the flag out"},
		{"-proxy-workers", d, []string{"-proxy-workers", "2"}, "-proxy-workers 2 contradicts workers 1 in -proxy-config PROXY: leave the flag out"},
		{"upstream mode without routes", edit("proxy", `routes: [{path_prefix: /api/, upstream: "http://127.0.0.1:9000"}]`, ""), nil,
			"application shop has no routes in -proxy-config PROXY: upstream mode sends the API calls through the proxy's routes"},
		{"auth_request mode without the auth endpoint", edit("proxy", "auth_endpoint: true", "auth_endpoint: false"), []string{"-mode", "auth_request"},
			"application shop: auth_endpoint is off in -proxy-config PROXY: -mode auth_request asks the proxy's auth endpoint"},
		{"a proxy on every address", edit("proxy", "listen: 127.0.0.1:18081", "listen: 0.0.0.0:18081"), nil,
			`-proxy: the proxy listens on "0.0.0.0:18081" (-proxy-config PROXY), every address: say where NGINX reaches it with -proxy`},
		{"an agent on port 0", edit("agent", "listen: unix:/run/th/agent.sock", "listen: 127.0.0.1:0"), nil,
			`-agent: the agent listens on "127.0.0.1:0" (-agent-config AGENT), a port chosen at start: say where NGINX reaches it with -agent`},
		{"a file the proxy refuses", edit("proxy", d.keys[1], d.keys[0]), nil, "-proxy-config: proxy: config: PROXY: apps[1].encryption_keys: share a key"},
		{"a file the agent refuses", edit("agent", "client_id: admin-spa", ""), nil, "-agent-config: agent: config: AGENT: apps[1].client_id: is required"},
		{"a host the configuration refuses", edit("proxy", "hosts: [api.shop.example, shop.example]", `hosts: [api.shop.example, shop.example, "[v1.x]"]`),
			[]string{"-agent-config", ""}, `apps[0].hosts[2]: "[v1.x]" must be a bare IPv6 address in brackets`},
		{"a flag NGINX cannot take, for every application", d, []string{"-agent-config", "", "-agent-base-path", "/a;b"},
			`-agent-base-path: "/a;b" must be an absolute path`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxyFile, agentFile := tc.files.write(t)
			args := append([]string{"-snippet", "-proxy-config", proxyFile, "-agent-config", agentFile}, tc.args...)
			err := run(args, &bytes.Buffer{}, &bytes.Buffer{})
			want := strings.NewReplacer("PROXY", proxyFile, "AGENT", agentFile).Replace(tc.want)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("render %q: %v, want %q", tc.args, err, want)
			}
			for _, secret := range append([]string{clientSecret}, d.keys...) {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error quotes a secret: %v", err)
				}
			}
		})
	}
	if err := run([]string{"-snippet", "-proxy-config", "/nonexistent/proxy.yaml"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil ||
		!strings.HasPrefix(err.Error(), "-proxy-config: ") || !strings.Contains(err.Error(), "/nonexistent/proxy.yaml") {
		t.Errorf("a missing file: %v", err)
	}
}
