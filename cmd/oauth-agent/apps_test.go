package main

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// appsYAML is a file with the applications named, each on the issuer
// issuers[name], with its own key and cookie prefix.
func appsYAML(listen, metricsListen string, issuers map[string]string, names ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\nmetrics_listen: %q\n", listen, metricsListen)
	b.WriteString("client_id: spa-client\n")
	b.WriteString("timeouts: {read: 30s, as: 2s, shutdown: 10s}\nlog: {level: info, format: json}\napps:\n")
	for _, name := range names {
		origin := "http://" + name + ".example.localhost:3000"
		fmt.Fprintf(&b, "  - name: %s\n    hosts: [%s.example.localhost]\n    issuer: %q\n", name, name, issuers[name])
		fmt.Fprintf(&b, "    redirect_uri: %q\n    trusted_web_origins: [%q]\n", origin+"/", origin)
		fmt.Fprintf(&b, "    cookie: {prefix: %s}\n    encryption_keys: [%q]\n", name, appKeys[name])
		// Each provider its own client's secret (the same text here).
		fmt.Fprintf(&b, "    client_secret: %q\n", clientSecret)
	}
	return b.String()
}

// appKeys are the applications' keys, one each for the whole test binary.
var appKeys = map[string]string{"shop": newKey(), "admin": newKey()}

// TestApps: a file with two applications, one of whose providers is down
// at start. /readyz is 200 with one ready and lists both, /readyz?app=
// answers for each, the per-application gauges follow; a request for a
// host no application lists is 404 not_found; the provider coming up makes
// its application ready; a SIGHUP that removes it leaves the other ready
// and its gauge gone.
func TestApps(t *testing.T) {
	shopAS, _ := net.Listen("tcp", "127.0.0.1:0")
	serveDiscovery(t, shopAS)
	adminAddr := bintest.FreeTCPAddr(t) // nothing listens there yet
	issuers := map[string]string{"shop": "http://" + shopAS.Addr().String(), "admin": "http://" + adminAddr}
	p := &agentProc{cfg: agentConfig{Listen: bintest.FreeTCPAddr(t), MetricsListen: bintest.FreeTCPAddr(t)},
		configPath: filepath.Join(t.TempDir(), "oauth-agent.yaml"), client: &http.Client{Timeout: 5 * time.Second}}
	bintest.WriteFile(t, p.configPath, appsYAML(p.cfg.Listen, p.cfg.MetricsListen, issuers, "shop", "admin"))
	p.Process = bin.Start(t, "-config", p.configPath)

	p.waitReady(t, 15*time.Second, "/readyz?app=shop", "")
	want := func(path string, code int, body string) {
		t.Helper()
		if c, b, err := p.ops(path); err != nil || c != code || b != body {
			t.Errorf("%s: %d %s %v, want %d %s", path, c, b, err, code, body)
		}
	}
	want("/readyz", 200, `{"status":"ready","apps":{"admin":"not_ready","shop":"ready"}}`)
	want("/readyz?app=admin", 503, `{"app":"admin","status":"not ready"}`)
	want("/readyz?app=blog", 404, `{"status":"unknown application"}`)
	wantSeries := func(present bool, series ...string) {
		t.Helper()
		_, page, err := p.ops("/metrics")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range series {
			if strings.Contains(page, "\n"+s) != present {
				t.Errorf("/metrics has %q: %v, want %v", s, !present, present)
			}
		}
	}
	wantSeries(true, "oauth_agent_ready 1\n", `oauth_agent_ready{app="shop"} 1`+"\n", `oauth_agent_ready{app="admin"} 0`+"\n")

	req, _ := http.NewRequest("POST", "http://"+p.cfg.Listen+"/oauth-agent/login/start", nil)
	req.Host = "blog.example.localhost"
	resp, body := bintest.Do(t, p.client, req)
	if resp.StatusCode != 404 || !strings.Contains(string(body), `"code":"not_found"`) {
		t.Errorf("a host no application lists: %d %s, want 404 not_found", resp.StatusCode, body)
	}
	wantSeries(true, "oauth_agent_unknown_host_total 1\n")

	ln, err := net.Listen("tcp", adminAddr)
	if err != nil {
		t.Fatalf("admin's issuer address was taken meanwhile: %v", err)
	}
	serveDiscovery(t, ln)
	p.waitReady(t, 40*time.Second, "/readyz?app=admin", " once its provider is up")

	bintest.WriteFile(t, p.configPath, appsYAML(p.cfg.Listen, p.cfg.MetricsListen, issuers, "shop"))
	p.Signal(t, syscall.SIGHUP)
	p.Eventually(t, 10*time.Second, "the reload", func() bool {
		_, page, err := p.ops("/metrics")
		return err == nil && strings.Contains(page, `oauth_agent_config_reloads_total{result="ok"} 1`)
	})
	want("/readyz", 200, `{"status":"ready","apps":{"shop":"ready"}}`)
	want("/readyz?app=admin", 404, `{"status":"unknown application"}`)
	wantSeries(false, `oauth_agent_ready{app="admin"}`)

	p.Stop(t, 15*time.Second)
	if out := p.Stderr(); strings.Contains(out, clientSecret) || strings.Contains(out, appKeys["shop"]) || strings.Contains(out, appKeys["admin"]) {
		t.Errorf("stderr holds the client secret or a key:\n%s", out)
	}
}
