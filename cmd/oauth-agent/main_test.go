package main

// Black-box tests: they build the real oauth-agent binary once and drive it
// over real loopback sockets, with real signals, as an operator would.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/crypto"
)

const trustedOrigin = "http://www.example.localhost:3000"

// clientSecret is the client secret of the generated configurations; it
// must never appear on stderr.
const clientSecret = "s3cret-agent-client-Passw0rd"

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// agentBinary builds the oauth-agent binary on first use, with the race
// detector when the tests run with it.
func agentBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go") // go test puts GOROOT/bin first in PATH
		if err != nil {
			buildErr = err
			return
		}
		if buildDir, err = os.MkdirTemp("", "oauth-agent-test-"); err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(buildDir, "oauth-agent")
		args := []string{"build", "-o", binPath}
		if raceEnabled() {
			args = append(args, "-race")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, goTool, append(args, ".")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building oauth-agent: %v", buildErr)
	}
	return binPath
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// environ is the test's environment without the secrets' variables, which
// would clash with the configurations' own. A race-enabled binary would
// sleep 1 s before every exit with status 0; GORACE turns that off.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TH_ENCRYPTION_KEYS=") && !strings.HasPrefix(kv, "TH_CLIENT_SECRET=") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	gorace := "atexit_sleep_ms=0"
	if prior := os.Getenv("GORACE"); prior != "" {
		gorace = prior + " " + gorace
	}
	return append(env, "GORACE="+gorace)
}

// ---- configuration ----

type agentConfig struct {
	Listen        string
	MetricsListen string
	Issuer        string
	Key           string // hex
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
	b.WriteString("timeouts: {read: 30s, as: 2s, shutdown: 10s}\n")
	b.WriteString("log: {level: info, format: json}\n")
	return b.String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// freeTCPAddr returns a loopback address nothing listens on right now.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func newKey() string { return string(crypto.GenerateKey().AppendHex(nil)) }

// ---- running the binary ----

type result struct {
	code           int
	stdout, stderr string
}

// runBinary runs oauth-agent to completion, for at most 10 s.
func runBinary(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agentBinary(t), args...)
	cmd.Env = environ()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("oauth-agent %v did not exit within 10s; stderr:\n%s", args, stderr.String())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("oauth-agent %v: %v", args, err)
	}
	return result{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// agentProc is one running oauth-agent process.
type agentProc struct {
	cmd        *exec.Cmd
	cfg        agentConfig
	configPath string
	stderr     syncBuffer
	done       chan struct{} // closed once the process has exited
	exitCode   int           // valid after done
	client     *http.Client
}

// launch writes cfg to a file in a fresh directory and starts the binary
// with it; the process is killed, by its PID, when the test ends.
func launch(t *testing.T, cfg agentConfig) *agentProc {
	t.Helper()
	p := &agentProc{cfg: cfg, configPath: filepath.Join(t.TempDir(), "oauth-agent.yaml"), done: make(chan struct{})}
	writeFile(t, p.configPath, cfg.yaml())
	p.cmd = exec.Command(agentBinary(t), "-config", p.configPath)
	p.cmd.Env = environ()
	p.cmd.Stdout = io.Discard
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		p.exitCode = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	tr := &http.Transport{DisableCompression: true}
	p.client = &http.Client{Transport: tr, Timeout: 5 * time.Second}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Errorf("oauth-agent (pid %d) did not die after SIGKILL", p.cmd.Process.Pid)
			}
		}
		if out := p.stderr.String(); strings.Contains(out, "DATA RACE") {
			t.Errorf("oauth-agent reported a data race:\n%s", out)
		} else if t.Failed() {
			t.Logf("oauth-agent stderr:\n%s", out)
		}
	})
	return p
}

func (p *agentProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// get sends GET url and returns the status and body.
func (p *agentProc) get(url string) (int, string, error) {
	resp, err := p.client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// ops sends GET path to the metrics listener.
func (p *agentProc) ops(path string) (int, string, error) {
	return p.get("http://" + p.cfg.MetricsListen + path)
}

func (p *agentProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	// os.Process.Signal targets this process's PID and refuses once it has
	// been waited for, so a reused PID is never hit.
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("sending %v to pid %d: %v", sig, p.cmd.Process.Pid, err)
	}
}

// eventually polls cond every 10 ms until it holds or timeout passes, and
// fails at once when the process exits meanwhile.
func (p *agentProc) eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if p.exited() {
			t.Fatalf("oauth-agent exited (status %d) while the test waited for %s", p.exitCode, what)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitExit waits for the process to exit and returns its status.
func (p *agentProc) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.exitCode
	case <-time.After(timeout):
		t.Fatalf("oauth-agent did not exit within %v", timeout)
		return 0
	}
}

// ---- a minimal Authorization Server ----

// serveDiscovery serves an OpenID Connect discovery document for the issuer
// http://<ln address> on ln, until the test ends.
func serveDiscovery(t *testing.T, ln net.Listener) {
	t.Helper()
	issuer := "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                issuer,
			"authorization_endpoint":                issuer + "/authorize",
			"token_endpoint":                        issuer + "/token",
			"jwks_uri":                              issuer + "/jwks",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"keys":[]}`)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// ---- tests ----

func TestCommandLine(t *testing.T) {
	key := newKey()
	dir := t.TempDir()
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
	for name, content := range configs {
		writeFile(t, filepath.Join(dir, name), content)
	}
	cfg := func(name string) string { return filepath.Join(dir, name) }

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string   // substring
		wantStderr []string // substrings
		oneLine    bool     // stderr must be exactly one line
	}{
		{name: "version", args: []string{"-version"}, wantCode: 0, wantStdout: "oauth-agent "},
		{name: "check the example config", args: []string{"-config", "../../deploy/oauth-agent.example.yaml", "-check-config"}, wantCode: 0, wantStdout: "configuration OK"},
		{name: "check a generated config", args: []string{"-config", cfg("valid.yaml"), "-check-config"}, wantCode: 0, wantStdout: "configuration OK"},
		{name: "unknown setting", args: []string{"-config", cfg("unknown-key.yaml"), "-check-config"}, wantCode: 1, wantStderr: []string{"agent: config: ", `unknown setting "colour"`}, oneLine: true},
		{name: "http issuer", args: []string{"-config", cfg("http-issuer.yaml"), "-check-config"}, wantCode: 1, wantStderr: []string{"agent: config: issuer: ", "https"}, oneLine: true},
		{name: "alg none", args: []string{"-config", cfg("alg-none.yaml"), "-check-config"}, wantCode: 1, wantStderr: []string{"agent: config: id_token.allowed_algs[0]: "}, oneLine: true},
		{name: "no client_id", args: []string{"-config", cfg("no-client-id.yaml"), "-check-config"}, wantCode: 1, wantStderr: []string{"agent: config: client_id: is required"}, oneLine: true},
		{name: "short key", args: []string{"-config", cfg("short-key.yaml"), "-check-config"}, wantCode: 1, wantStderr: []string{"agent: config: encryption_keys: "}, oneLine: true},
		{name: "two client secrets", args: []string{"-config", cfg("two-secrets.yaml"), "-check-config"}, wantCode: 1, wantStderr: []string{"agent: config: client_secret: "}, oneLine: true},
		{name: "bad config without -check-config", args: []string{"-config", cfg("bad-duration.yaml")}, wantCode: 1, wantStderr: []string{"agent: config: timeouts.as: "}, oneLine: true},
		{name: "missing config file", args: []string{"-config", cfg("nonexistent.yaml"), "-check-config"}, wantCode: 1, wantStderr: []string{"nonexistent.yaml"}, oneLine: true},
		{name: "no -config", args: nil, wantCode: 2, wantStderr: []string{"-config"}},
		{name: "-check-config without -config", args: []string{"-check-config"}, wantCode: 2, wantStderr: []string{"-config"}},
		{name: "stray argument", args: []string{"-config", cfg("valid.yaml"), "extra"}, wantCode: 2, wantStderr: []string{"-config"}},
		{name: "unknown flag", args: []string{"-confg", cfg("valid.yaml")}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runBinary(t, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit status %d, want %d; stdout %q; stderr %q", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.wantStdout) {
				t.Errorf("stdout %q, want it to contain %q", r.stdout, tt.wantStdout)
			}
			for _, s := range tt.wantStderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr %q, want it to contain %q", r.stderr, s)
				}
			}
			if tt.oneLine && strings.Count(strings.TrimSuffix(r.stderr, "\n"), "\n") != 0 {
				t.Errorf("stderr is not one line: %q", r.stderr)
			}
			for _, secret := range []string{clientSecret, key[:16]} {
				if strings.Contains(r.stdout+r.stderr, secret) {
					t.Errorf("the output quotes secret material: stdout %q, stderr %q", r.stdout, r.stderr)
				}
			}
		})
	}
}

// TestStartsWithoutAuthorizationServer starts the agent while its issuer
// does not answer: it serves, /healthz is 200 and /readyz 503, until the
// Authorization Server comes up, which the agent notices by itself. Then a
// bad SIGHUP is refused, and SIGTERM stops it with status 0.
func TestStartsWithoutAuthorizationServer(t *testing.T) {
	asAddr := freeTCPAddr(t) // nothing listens there yet
	key := newKey()
	p := launch(t, agentConfig{Listen: freeTCPAddr(t), MetricsListen: freeTCPAddr(t), Issuer: "http://" + asAddr, Key: key})

	p.eventually(t, 15*time.Second, "/healthz to answer 200", func() bool {
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
	p.eventually(t, 40*time.Second, "/readyz to answer 200 once the Authorization Server is up", func() bool {
		code, _, err := p.ops("/readyz")
		return err == nil && code == http.StatusOK
	})

	// A bad configuration file is refused; the agent stays ready.
	writeFile(t, p.configPath, p.cfg.yaml()+"no_such_setting: true\n")
	p.signal(t, syscall.SIGHUP)
	p.eventually(t, 10*time.Second, `"configuration reload refused" on stderr`, func() bool {
		return strings.Contains(p.stderr.String(), "configuration reload refused")
	})
	if !strings.Contains(p.stderr.String(), "no_such_setting") {
		t.Errorf("the refusal does not name the bad setting:\n%s", p.stderr.String())
	}
	if code, _, err := p.ops("/readyz"); err != nil || code != http.StatusOK {
		t.Errorf("/readyz after a refused reload: %d, %v; want 200", code, err)
	}
	if _, metrics, err := p.ops("/metrics"); err != nil || !strings.Contains(metrics, "oauth_agent_config_reloads_total{result=\"error\"} 1\n") {
		t.Errorf("/metrics lacks the failed reload (%v):\n%s", err, metrics)
	}

	p.signal(t, syscall.SIGTERM)
	if code := p.waitExit(t, 15*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
	if c, err := net.DialTimeout("tcp", p.cfg.Listen, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Errorf("dial %s after exit: %v, want connection refused", p.cfg.Listen, err)
	}
	if out := p.stderr.String(); strings.Contains(out, clientSecret) || strings.Contains(out, key) {
		t.Errorf("stderr holds the client secret or a key:\n%s", out)
	}
}
