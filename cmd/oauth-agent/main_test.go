package main

// Black-box tests: they build the real oauth-agent binary once and drive it
// over real loopback sockets, with real signals, as an operator would.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

const trustedOrigin = "http://www.example.localhost:3000"

// clientSecret is the client secret of the generated configurations; it
// must never appear on stderr.
const clientSecret = "s3cret-agent-client-Passw0rd"

// bin is the oauth-agent binary. The secrets' variables would clash with
// the configurations' own.
var bin = &bintest.Binary{Name: "oauth-agent", Unset: []string{"TH_ENCRYPTION_KEYS", "TH_CLIENT_SECRET"}}

func TestMain(m *testing.M) { os.Exit(bin.Main(m)) }

// ---- configuration ----

type agentConfig struct {
	Listen        string
	MetricsListen string
	Issuer        string
	Key           string // hex
	Timeouts      string // the timeouts section; "" is {read: 30s, as: 2s, shutdown: 10s}
	Extra         string // more YAML, appended
}

func (c agentConfig) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\n", c.Listen)
	fmt.Fprintf(&b, "metrics_listen: %q\n", c.MetricsListen)
	fmt.Fprintf(&b, "issuer: %q\n", c.Issuer)
	b.WriteString("client_id: spa-client\n")
	fmt.Fprintf(&b, "client_secret: %q\n", clientSecret)
	fmt.Fprintf(&b, "redirect_uri: %q\n", trustedOrigin+"/")
	fmt.Fprintf(&b, "encryption_keys: [%q]\n", c.Key)
	fmt.Fprintf(&b, "trusted_web_origins: [%q]\n", trustedOrigin)
	timeouts := c.Timeouts
	if timeouts == "" {
		timeouts = "{read: 30s, as: 2s, shutdown: 10s}"
	}
	fmt.Fprintf(&b, "timeouts: %s\n", timeouts)
	b.WriteString("log: {level: info, format: json}\n")
	b.WriteString(c.Extra)
	return b.String()
}

func newKey() string { return string(crypto.GenerateKey().AppendHex(nil)) }

// ---- running the binary ----

// agentProc is one running oauth-agent process.
type agentProc struct {
	*bintest.Process
	cfg        agentConfig
	configPath string
	client     *http.Client
}

// launch writes cfg to a file in a fresh directory and starts the binary
// with it; the process is killed, by its PID, when the test ends.
func launch(t *testing.T, cfg agentConfig) *agentProc {
	t.Helper()
	p := &agentProc{cfg: cfg, configPath: filepath.Join(t.TempDir(), "oauth-agent.yaml")}
	bintest.WriteFile(t, p.configPath, cfg.yaml())
	p.Process = bin.Start(t, "-config", p.configPath)
	tr := &http.Transport{DisableCompression: true}
	p.client = &http.Client{Transport: tr, Timeout: 5 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return p
}

// get sends GET url and returns the status and body.
func (p *agentProc) get(url string) (int, string, error) { return bintest.Get(p.client, url) }

// ops sends GET path to the metrics listener.
func (p *agentProc) ops(path string) (int, string, error) {
	return p.get("http://" + p.cfg.MetricsListen + path)
}

// waitReady waits up to d for path on the metrics listener (/readyz, or
// /readyz?app=NAME) to answer 200; when says after what, for the message.
func (p *agentProc) waitReady(t *testing.T, d time.Duration, path, when string) {
	t.Helper()
	p.Eventually(t, d, path+" to answer 200"+when, func() bool {
		code, _, err := p.ops(path)
		return err == nil && code == http.StatusOK
	})
}

// ---- a minimal Authorization Server ----

// serveDiscovery serves an OpenID Connect discovery document for the issuer
// http://<ln address> on ln, until the test ends.
func serveDiscovery(t *testing.T, ln net.Listener) {
	t.Helper()
	issuer := "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		oidcfake.WriteJSON(w, http.StatusOK, oidcfake.NewMetadata(issuer, nil))
	})
	keys, err := oidcfake.NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("GET /jwks", keys)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// ---- tests ----

func TestCommandLine(t *testing.T) {
	key := newKey()
	valid := agentConfig{Listen: "127.0.0.1:8080", MetricsListen: "127.0.0.1:9100", Issuer: "https://login.example.com", Key: key}.yaml()
	configs := map[string]string{
		"valid.yaml":        valid,
		"unknown-key.yaml":  valid + "colour: blue\n",
		"http-issuer.yaml":  strings.Replace(valid, `issuer: "https://login.example.com"`, `issuer: "http://login.example.com"`, 1),
		"alg-none.yaml":     valid + "id_token: {allowed_algs: [none]}\n",
		"no-client-id.yaml": strings.Replace(valid, "client_id: spa-client\n", "", 1),
		"short-key.yaml":    strings.Replace(valid, key, key[:62], 1),
		"bad-duration.yaml": strings.Replace(valid, "as: 2s", "as: soon", 1),
		"two-secrets.yaml":  valid + "client_secret_file: /etc/tokenhandler/client-secret\n",
	}
	cfg := bintest.WriteFiles(t, configs)

	tests := []bintest.Case{
		{Name: "version", Args: []string{"-version"}, Code: 0, Stdout: "oauth-agent "},
		{Name: "check the example config", Args: []string{"-config", "../../deploy/oauth-agent.example.yaml", "-check-config"}, Code: 0, Stdout: "configuration OK"},
		{Name: "check a generated config", Args: []string{"-config", cfg("valid.yaml"), "-check-config"}, Code: 0, Stdout: "configuration OK"},
		{Name: "unknown setting", Args: []string{"-config", cfg("unknown-key.yaml"), "-check-config"}, Code: 1, Stderr: []string{"agent: config: ", `unknown setting "colour"`}, OneLine: true},
		{Name: "http issuer", Args: []string{"-config", cfg("http-issuer.yaml"), "-check-config"}, Code: 1, Stderr: []string{"agent: config: issuer: ", "https"}, OneLine: true},
		{Name: "alg none", Args: []string{"-config", cfg("alg-none.yaml"), "-check-config"}, Code: 1, Stderr: []string{"agent: config: id_token.allowed_algs[0]: "}, OneLine: true},
		{Name: "no client_id", Args: []string{"-config", cfg("no-client-id.yaml"), "-check-config"}, Code: 1, Stderr: []string{"agent: config: client_id: is required"}, OneLine: true},
		{Name: "short key", Args: []string{"-config", cfg("short-key.yaml"), "-check-config"}, Code: 1, Stderr: []string{"agent: config: encryption_keys: "}, OneLine: true},
		{Name: "two client secrets", Args: []string{"-config", cfg("two-secrets.yaml"), "-check-config"}, Code: 1, Stderr: []string{"agent: config: client_secret: "}, OneLine: true},
		{Name: "bad config without -check-config", Args: []string{"-config", cfg("bad-duration.yaml")}, Code: 1, Stderr: []string{"agent: config: ", "bad-duration.yaml: timeouts.as: invalid duration"}, OneLine: true},
		{Name: "missing config file", Args: []string{"-config", cfg("nonexistent.yaml"), "-check-config"}, Code: 1, Stderr: []string{"nonexistent.yaml"}, OneLine: true},
		{Name: "no -config", Args: nil, Code: 2, Stderr: []string{"-config"}},
		{Name: "-check-config without -config", Args: []string{"-check-config"}, Code: 2, Stderr: []string{"-config"}},
		{Name: "stray argument", Args: []string{"-config", cfg("valid.yaml"), "extra"}, Code: 2, Stderr: []string{"-config"}},
		{Name: "unknown flag", Args: []string{"-confg", cfg("valid.yaml")}, Code: 2},
	}
	bin.RunCases(t, tests, clientSecret, key[:16])
}

// TestStartsWithoutAuthorizationServer starts the agent while its issuer
// does not answer: it serves, /healthz is 200 and /readyz 503, until the
// Authorization Server comes up, which the agent notices by itself. Then a
// bad SIGHUP is refused, and SIGTERM stops it with status 0.
func TestStartsWithoutAuthorizationServer(t *testing.T) {
	asAddr := bintest.FreeTCPAddr(t) // nothing listens there yet
	key := newKey()
	p := launch(t, agentConfig{Listen: bintest.FreeTCPAddr(t), MetricsListen: bintest.FreeTCPAddr(t), Issuer: "http://" + asAddr, Key: key})

	p.Eventually(t, 15*time.Second, "/healthz to answer 200", func() bool {
		code, _, err := p.ops("/healthz")
		return err == nil && code == http.StatusOK
	})
	code, body, err := p.ops("/readyz")
	if err != nil || code != http.StatusServiceUnavailable || body != `{"status":"not ready"}` {
		t.Fatalf("/readyz without an Authorization Server: %d %q, %v; want 503 {\"status\":\"not ready\"}", code, body, err)
	}
	if _, metrics, err := p.ops("/metrics"); err != nil || !strings.Contains(metrics, "oauth_agent_ready 0\n") {
		t.Errorf("/metrics lacks oauth_agent_ready 0 (%v):\n%s", err, metrics)
	}
	// The agent's own listener serves already: any HTTP answer will do.
	if code, _, err := p.get("http://" + p.cfg.Listen + "/oauth-agent/claims"); err != nil || code < 200 {
		t.Errorf("GET on the agent listener before discovery: %d, %v; want an HTTP answer", code, err)
	}

	// The Authorization Server comes up on the issuer's address.
	ln, err := net.Listen("tcp", asAddr)
	if err != nil {
		t.Fatalf("the issuer's address was taken meanwhile: %v", err)
	}
	serveDiscovery(t, ln)
	p.waitReady(t, 40*time.Second, "/readyz", " once the Authorization Server is up")

	// A bad configuration file is refused; the agent stays ready.
	bintest.WriteFile(t, p.configPath, p.cfg.yaml()+"no_such_setting: true\n")
	p.Signal(t, syscall.SIGHUP)
	p.Eventually(t, 10*time.Second, `"configuration reload refused" on stderr`, func() bool {
		return strings.Contains(p.Stderr(), "configuration reload refused")
	})
	if !strings.Contains(p.Stderr(), "no_such_setting") {
		t.Errorf("the refusal does not name the bad setting:\n%s", p.Stderr())
	}
	if code, _, err := p.ops("/readyz"); err != nil || code != http.StatusOK {
		t.Errorf("/readyz after a refused reload: %d, %v; want 200", code, err)
	}
	if _, metrics, err := p.ops("/metrics"); err != nil || !strings.Contains(metrics, "oauth_agent_config_reloads_total{result=\"error\"} 1\n") {
		t.Errorf("/metrics lacks the failed reload (%v):\n%s", err, metrics)
	}

	p.Stop(t, 15*time.Second)
	bintest.WantRefused(t, p.cfg.Listen)
	if out := p.Stderr(); strings.Contains(out, clientSecret) || strings.Contains(out, key) {
		t.Errorf("stderr holds the client secret or a key:\n%s", out)
	}
}

// TestShutdownDelay: with timeouts.shutdown_delay, SIGTERM turns /readyz to
// 503 at once while the listener keeps serving (a login starts, answered
// with Connection: close); the process exits 0 once the delay and the
// drain are over, not before the delay.
func TestShutdownDelay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveDiscovery(t, ln)
	p := launch(t, agentConfig{Listen: bintest.FreeTCPAddr(t), MetricsListen: bintest.FreeTCPAddr(t), Issuer: "http://" + ln.Addr().String(),
		Key: newKey(), Timeouts: "{read: 30s, as: 2s, shutdown: 10s, shutdown_delay: 1s}"})
	p.waitReady(t, 15*time.Second, "/readyz", "")
	loginStart := func() (int, bool, error) {
		req, err := http.NewRequest(http.MethodPost, "http://"+p.cfg.Listen+"/oauth-agent/login/start", nil)
		if err != nil {
			return 0, false, err
		}
		req.Header.Set("Origin", trustedOrigin)
		resp, err := p.client.Do(req)
		if err != nil {
			return 0, false, err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Close, err
	}
	if code, closing, err := loginStart(); err != nil || code != 200 || closing {
		t.Fatalf("login/start before SIGTERM: %d, Connection: close %v, %v; want 200, false", code, closing, err)
	}

	sent := time.Now()
	p.Signal(t, syscall.SIGTERM)
	p.Eventually(t, 5*time.Second, "/readyz to answer 503 after SIGTERM", func() bool {
		code, _, _ := p.ops("/readyz")
		return code == http.StatusServiceUnavailable
	})
	if code, closing, err := loginStart(); err != nil || code != 200 || !closing {
		t.Errorf("login/start %v after SIGTERM, within the 1s delay: %d, Connection: close %v, %v; want 200, true", time.Since(sent), code, closing, err)
	}
	if code := p.WaitExit(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
	if took := time.Since(sent); took < time.Second {
		t.Errorf("exited %v after SIGTERM, before the 1s delay was over", took)
	}
}
