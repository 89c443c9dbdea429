package main

// Black-box tests: they build the real oauth-proxy binary once and drive it
// over real loopback sockets and Unix sockets, with real signals, as an
// operator and a browser would.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/metricstest"
	"github.com/tokenhandler/tokenhandler/session"
)

const (
	trustedOrigin = "http://www.example.localhost:3000"
	unauthorized  = `{"code":"unauthorized","message":"Access denied due to missing or invalid credentials"}`
)

// bin is the oauth-proxy binary, built with the race detector when the
// tests run with it, so that a data race inside the proxy (a SIGHUP under
// load, say) fails the tests too. TH_ENCRYPTION_KEYS would clash with the
// keys the configurations give.
var bin = &bintest.Binary{Name: "oauth-proxy", Unset: []string{"TH_ENCRYPTION_KEYS"}}

func TestMain(m *testing.M) { os.Exit(bin.Main(m)) }

// ---- keys and cookies ----

// testKey is a generated key and its hex form.
type testKey struct {
	hex   string
	ring  *crypto.Keyring
	codec *session.Codec // seals v2 cookies, the agent's default
}

func newTestKey(t *testing.T) testKey {
	t.Helper()
	k := crypto.GenerateKey()
	h := string(k.AppendHex(nil))
	ring, err := crypto.ParseKeyring(h)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := session.NewCodec(ring, crypto.FormatV2)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{hex: h, ring: ring, codec: codec}
}

// liveSession returns the envelope of a session that started a minute ago
// and whose cookies stay valid for an hour.
func liveSession() session.Envelope {
	now := time.Now()
	return session.Envelope{ID: session.NewID(), Started: now.Add(-time.Minute).Unix(), Expires: now.Add(time.Hour).Unix()}
}

// cookie returns the access-token cookie of a new session sealed with k, as
// the agent writes it.
func (k testKey) cookie(t *testing.T, token string) string {
	t.Helper()
	env := liveSession()
	return "example-at=" + k.seal(t, session.AccessToken, &env, token)
}

// seal returns value sealed with k in format v2 for purpose p and session
// env.
func (k testKey) seal(t *testing.T, p session.Purpose, env *session.Envelope, value string) string {
	t.Helper()
	v, err := k.codec.Seal(nil, p, 0, env, []byte(value))
	if err != nil {
		t.Fatal(err)
	}
	return string(v)
}

// ---- the test upstream ----

// seen is what the upstream received, echoed back as the JSON body so that
// every response tells what its own request looked like upstream.
type seen struct {
	Path          string `json:"path"`
	Authorization string `json:"authorization"`
	Cookie        string `json:"cookie"`
}

type upstream struct {
	*httptest.Server
	arrived     chan struct{} // one value per request to /api/slow
	release     chan struct{} // closed by releaseAll to let /api/slow answer
	releaseOnce sync.Once
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{arrived: make(chan struct{}, 64), release: make(chan struct{})}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/slow" {
			u.arrived <- struct{}{}
			select {
			case <-u.release:
			case <-time.After(10 * time.Second): // bounds a failing test
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen{Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), Cookie: r.Header.Get("Cookie")})
	}))
	t.Cleanup(u.Close)
	t.Cleanup(u.releaseAll) // runs first: Close waits for held requests
	return u
}

// releaseAll lets every held /api/slow request answer.
func (u *upstream) releaseAll() { u.releaseOnce.Do(func() { close(u.release) }) }

// ---- configuration ----

type proxyConfig struct {
	Listen        string // "" picks a free loopback port
	MetricsListen string // "" picks a free loopback port; "-" leaves the setting out
	Keys          []string
	Upstream      string
	Timeouts      string // the timeouts section; "" is {read: 30s, upstream: 15s, shutdown: 10s}
	Workers       int    // 0 leaves the setting out
	Extra         string // appended to the file, as written
}

func (c proxyConfig) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\n", c.Listen)
	if c.MetricsListen != "-" {
		fmt.Fprintf(&b, "metrics_listen: %q\n", c.MetricsListen)
	}
	quoted := make([]string, len(c.Keys))
	for i, k := range c.Keys {
		quoted[i] = fmt.Sprintf("%q", k)
	}
	fmt.Fprintf(&b, "encryption_keys: [%s]\n", strings.Join(quoted, ", "))
	fmt.Fprintf(&b, "trusted_web_origins: [%q]\n", trustedOrigin)
	fmt.Fprintf(&b, "routes:\n  - {path_prefix: /api/, upstream: %q}\n", c.Upstream)
	timeouts := c.Timeouts
	if timeouts == "" {
		timeouts = "{read: 30s, upstream: 15s, shutdown: 10s}"
	}
	fmt.Fprintf(&b, "timeouts: %s\n", timeouts)
	b.WriteString("log: {level: info, format: json}\n")
	if c.Workers > 0 {
		fmt.Fprintf(&b, "workers: %d\n", c.Workers)
	}
	b.WriteString(c.Extra)
	return b.String()
}

// ---- running the binary ----

// proxyProc is one running oauth-proxy process.
type proxyProc struct {
	*bintest.Process
	cfg        proxyConfig
	configPath string

	base    string       // URL of the listen address
	client  *http.Client // talks to the listen address (TCP or Unix)
	metrics *http.Client
}

// startProxy writes cfg to a file, starts oauth-proxy with it and waits until
// /readyz on the metrics listener answers 200. Free ports are picked for
// empty addresses; a start that loses a port to another process is retried.
func startProxy(t *testing.T, cfg proxyConfig) *proxyProc {
	t.Helper()
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		c := cfg
		picked := false
		if c.Listen == "" {
			c.Listen, picked = bintest.FreeTCPAddr(t), true
		}
		if c.MetricsListen == "" {
			c.MetricsListen, picked = bintest.FreeTCPAddr(t), true
		}
		p := launch(t, c, filepath.Join(dir, "oauth-proxy.yaml"))
		err := p.waitReady(15 * time.Second)
		if err == nil {
			return p
		}
		if picked && attempt < 3 && strings.Contains(p.Stderr(), "address already in use") {
			continue
		}
		t.Fatalf("oauth-proxy did not become ready: %v; stderr:\n%s", err, p.Stderr())
	}
}

// launch starts the binary with cfg written at path; the process is killed,
// by its PID, when the test ends.
func launch(t *testing.T, cfg proxyConfig, path string) *proxyProc {
	t.Helper()
	bintest.WriteFile(t, path, cfg.yaml())
	p := &proxyProc{cfg: cfg, configPath: path}
	p.Process = bin.Start(t, "-config", path)

	tr := &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}
	if sock, ok := strings.CutPrefix(cfg.Listen, "unix:"); ok {
		p.base = "http://oauth-proxy"
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
	} else {
		p.base = "http://" + cfg.Listen
	}
	p.client = &http.Client{Transport: tr, Timeout: 15 * time.Second}
	mtr := &http.Transport{DisableCompression: true}
	p.metrics = &http.Client{Transport: mtr, Timeout: 2 * time.Second}

	t.Cleanup(func() {
		tr.CloseIdleConnections()
		mtr.CloseIdleConnections()
	})
	return p
}

func (p *proxyProc) waitReady(timeout time.Duration) error {
	err := bintest.Poll(context.Background(), timeout, 10*time.Millisecond, "no 200 from /readyz", func() bool {
		code, _, err := p.ops("/readyz")
		return p.Exited() || err == nil && code == http.StatusOK
	})
	if p.Exited() {
		return fmt.Errorf("exited with status %d", p.ExitCode())
	}
	return err
}

// ops sends GET path to the metrics listener.
func (p *proxyProc) ops(path string) (int, string, error) {
	return bintest.Get(p.metrics, "http://"+p.cfg.MetricsListen+path)
}

func (p *proxyProc) metricsText(t *testing.T) string {
	t.Helper()
	code, body, err := p.ops("/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v", code, err)
	}
	return body
}

// response is one answer from the proxy.
type response struct {
	status int
	header http.Header
	body   string
	seen   seen // decoded body when the upstream answered
	close  bool // the answer said Connection: close
}

// do sends method path through the proxy with the given headers.
func (p *proxyProc) do(method, path string, header map[string]string) (response, error) {
	req, err := http.NewRequest(method, p.base+path, nil)
	if err != nil {
		return response{}, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: string(body), close: resp.Close}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &r.seen); err != nil {
			return r, fmt.Errorf("upstream body %q: %v", body, err)
		}
	}
	return r, nil
}

// apiCall is a browser's API call with the access-token cookie.
func (p *proxyProc) apiCall(path, cookie string) (response, error) {
	return p.do(http.MethodGet, path, map[string]string{"Origin": trustedOrigin, "Cookie": cookie})
}

// ---- tests ----

func TestCommandLine(t *testing.T) {
	key := newTestKey(t)
	valid := proxyConfig{Listen: "127.0.0.1:8081", MetricsListen: "127.0.0.1:9101", Keys: []string{key.hex}, Upstream: "http://127.0.0.1:9000"}.yaml()
	shortKey := key.hex[:62] // real hex material that must never be echoed
	configs := map[string]string{
		"valid.yaml":        valid,
		"bad-duration.yaml": strings.Replace(valid, "read: 30s", "read: soon", 1),
		"unknown-key.yaml":  valid + "colour: blue\n",
		"short-key.yaml":    strings.Replace(valid, key.hex, shortKey, 1),
		"bad-listen.yaml":   strings.Replace(valid, `listen: "127.0.0.1:8081"`, `listen: "localhost"`, 1),
	}
	cfg := bintest.WriteFiles(t, configs)

	tests := []bintest.Case{
		{Name: "version", Args: []string{"-version"}, Code: 0, Stdout: "oauth-proxy "},
		{Name: "check the example config", Args: []string{"-config", "../../deploy/oauth-proxy.example.yaml", "-check-config"}, Code: 0, Stdout: "configuration OK (keys: 1, routes: 1, cookie format: v2, auth endpoint: off)"},
		{Name: "check a generated config", Args: []string{"-config", cfg("valid.yaml"), "-check-config"}, Code: 0, Stdout: "configuration OK"},
		{Name: "bad duration", Args: []string{"-config", cfg("bad-duration.yaml"), "-check-config"}, Code: 1, Stderr: []string{"timeouts.read"}, OneLine: true},
		{Name: "unknown key", Args: []string{"-config", cfg("unknown-key.yaml"), "-check-config"}, Code: 1, Stderr: []string{"colour"}, OneLine: true},
		{Name: "short key", Args: []string{"-config", cfg("short-key.yaml"), "-check-config"}, Code: 1, Stderr: []string{"encryption_keys"}, OneLine: true},
		{Name: "bad listen", Args: []string{"-config", cfg("bad-listen.yaml"), "-check-config"}, Code: 1, Stderr: []string{"listen"}, OneLine: true},
		{Name: "bad config without -check-config", Args: []string{"-config", cfg("bad-duration.yaml")}, Code: 1, Stderr: []string{"timeouts.read"}, OneLine: true},
		{Name: "missing config file", Args: []string{"-config", cfg("nonexistent.yaml"), "-check-config"}, Code: 1, Stderr: []string{"nonexistent.yaml"}, OneLine: true},
		{Name: "no -config", Args: nil, Code: 2, Stderr: []string{"-config"}},
		{Name: "-check-config without -config", Args: []string{"-check-config"}, Code: 2, Stderr: []string{"-config"}},
		{Name: "unknown flag", Args: []string{"-confg", cfg("valid.yaml")}, Code: 2},
	}
	bin.RunCases(t, tests, shortKey)
}

func TestForwardsWithBearerToken(t *testing.T) {
	key, otherKey := newTestKey(t), newTestKey(t)
	up := newUpstream(t)
	p := startProxy(t, proxyConfig{Keys: []string{key.hex}, Upstream: up.URL})

	const token = "access-token.1234_~+/="
	cookie := key.cookie(t, token)
	// A victim's refresh token, sealed with the same key in the same
	// session, and a session older than session.max_lifetime (12h).
	victim := liveSession()
	refresh := key.seal(t, session.RefreshToken, &victim, "refresh-token.secret")
	old := liveSession()
	old.Started = time.Now().Add(-13 * time.Hour).Unix()
	legacy, _ := key.ring.Seal(nil, []byte(token), crypto.FormatV1)
	tests := []struct {
		name       string
		header     map[string]string
		wantStatus int
		wantAuth   string // Authorization the upstream saw
		wantCookie string // Cookie the upstream saw
		wantACAO   string // Access-Control-Allow-Origin
	}{
		{
			name:       "trusted origin and cookie",
			header:     map[string]string{"Origin": trustedOrigin, "Cookie": cookie},
			wantStatus: 200, wantAuth: "Bearer " + token, wantACAO: trustedOrigin,
		},
		{
			name:       "other cookies stay, token-handler cookies go",
			header:     map[string]string{"Origin": trustedOrigin, "Cookie": "theme=dark; " + cookie + "; example-csrf=x"},
			wantStatus: 200, wantAuth: "Bearer " + token, wantCookie: "theme=dark", wantACAO: trustedOrigin,
		},
		{
			name:       "browser Authorization is replaced",
			header:     map[string]string{"Origin": trustedOrigin, "Cookie": cookie, "Authorization": "Bearer forged"},
			wantStatus: 200, wantAuth: "Bearer " + token, wantACAO: trustedOrigin,
		},
		{
			name:       "no Origin",
			header:     map[string]string{"Cookie": cookie},
			wantStatus: 401,
		},
		{
			name:       "untrusted Origin",
			header:     map[string]string{"Origin": "http://evil.localhost:3000", "Cookie": cookie},
			wantStatus: 401,
		},
		{
			name:       "no cookie",
			header:     map[string]string{"Origin": trustedOrigin},
			wantStatus: 401, wantACAO: trustedOrigin,
		},
		{
			name:       "cookie sealed with another key",
			header:     map[string]string{"Origin": trustedOrigin, "Cookie": otherKey.cookie(t, token)},
			wantStatus: 401, wantACAO: trustedOrigin,
		},
		{
			name:       "a refresh-token cookie in the access-token slot",
			header:     map[string]string{"Origin": trustedOrigin, "Cookie": "example-at=" + refresh},
			wantStatus: 401, wantACAO: trustedOrigin,
		},
		{
			name:       "the access-token cookie twice",
			header:     map[string]string{"Origin": trustedOrigin, "Cookie": otherKey.cookie(t, "attacker") + "; " + cookie},
			wantStatus: 401, wantACAO: trustedOrigin,
		},
		{
			name:       "a session older than session.max_lifetime",
			header:     map[string]string{"Origin": trustedOrigin, "Cookie": "example-at=" + key.seal(t, session.AccessToken, &old, token)},
			wantStatus: 401, wantACAO: trustedOrigin,
		},
		{
			name:       "a v1 cookie, with cookie.format v2 by default",
			header:     map[string]string{"Origin": trustedOrigin, "Cookie": "example-at=" + string(legacy)},
			wantStatus: 401, wantACAO: trustedOrigin,
		},
	}
	counts := map[int]int{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := p.do(http.MethodGet, "/api/x", tt.header)
			if err != nil {
				t.Fatal(err)
			}
			counts[r.status]++
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %q", r.status, tt.wantStatus, r.body)
			}
			if got := r.header.Get("Access-Control-Allow-Origin"); got != tt.wantACAO {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tt.wantACAO)
			}
			if tt.wantStatus != 200 {
				if r.body != unauthorized {
					t.Errorf("body %q, want %q", r.body, unauthorized)
				}
				return
			}
			if r.seen.Path != "/api/x" {
				t.Errorf("upstream saw path %q, want /api/x", r.seen.Path)
			}
			if r.seen.Authorization != tt.wantAuth {
				t.Errorf("upstream saw Authorization %q, want %q", r.seen.Authorization, tt.wantAuth)
			}
			if r.seen.Cookie != tt.wantCookie {
				t.Errorf("upstream saw Cookie %q, want %q", r.seen.Cookie, tt.wantCookie)
			}
		})
	}

	text := p.metricsText(t)
	for status, n := range counts {
		want := fmt.Sprintf("oauth_proxy_requests_total{route=\"/api/\",status=\"%d\"} %d\n", status, n)
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, text)
		}
	}
	for _, reason := range []string{"access_token_cookie_invalid", "cookie_ambiguous", "session_expired"} {
		if v, ok := metricstest.Sample(text, fmt.Sprintf("oauth_proxy_denied_total{reason=%q}", reason)); !ok || v == "0" {
			t.Errorf("/metrics: oauth_proxy_denied_total{reason=%q} is %q, want a count", reason, v)
		}
	}
	if code, _, err := p.ops("/healthz"); err != nil || code != 200 {
		t.Errorf("GET /healthz: %d, %v", code, err)
	}
	// Beside routes the auth endpoint is off: its path is an ordinary one,
	// and no answer carries the token.
	r, err := p.do(http.MethodGet, "/_oauth-proxy/auth", map[string]string{"Origin": trustedOrigin, "Cookie": cookie})
	if err != nil || r.status != 404 || r.header.Get("Authorization") != "" {
		t.Errorf("GET /_oauth-proxy/auth beside routes: %d, Authorization %q, %v; want 404 and none", r.status, r.header.Get("Authorization"), err)
	}
	if out := p.Stderr(); strings.Contains(out, key.hex) || strings.Contains(out, token) || strings.Contains(out, "refresh-token.secret") {
		t.Errorf("stderr holds a key or a token:\n%s", out)
	}
}

func TestReloadOnSIGHUP(t *testing.T) {
	oldKey, newKey := newTestKey(t), newTestKey(t)
	up := newUpstream(t)
	p := startProxy(t, proxyConfig{Keys: []string{oldKey.hex}, Upstream: up.URL})
	oldCookie, newCookie := oldKey.cookie(t, "old-token"), newKey.cookie(t, "new-token")

	if r, err := p.apiCall("/api/x", newCookie); err != nil || r.status != 401 {
		t.Fatalf("before the reload, a cookie sealed with the new key: %d, %v; want 401", r.status, err)
	}

	const workers, perWorker = 4, 300
	var (
		done, failed atomic.Int64
		reloaded     atomic.Bool
		firstErr     atomic.Value
		halfway      = make(chan struct{})
		halfOnce     sync.Once
		wg           sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			// At least perWorker requests each; more (up to a cap) while the
			// reload has not been seen, so the load spans it.
			for i := 0; i < perWorker || (!reloaded.Load() && i < 20*perWorker); i++ {
				r, err := p.apiCall("/api/x", oldCookie)
				if err == nil && (r.status != 200 || r.seen.Authorization != "Bearer old-token") {
					err = fmt.Errorf("status %d, upstream saw %q, body %q", r.status, r.seen.Authorization, r.body)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				if done.Add(1) >= workers*perWorker/4 {
					halfOnce.Do(func() { close(halfway) })
				}
			}
		})
	}
	select {
	case <-halfway:
	case <-time.After(20 * time.Second):
		t.Fatal("the workers did not get a quarter of the way within 20s")
	}
	rotated := p.cfg
	rotated.Keys = []string{newKey.hex, oldKey.hex}
	bintest.WriteFile(t, p.configPath, rotated.yaml())
	doneAtSignal := done.Load()
	p.Signal(t, syscall.SIGHUP)
	p.Eventually(t, 10*time.Second, "a cookie sealed with the new key to be accepted", func() bool {
		r, err := p.apiCall("/api/x", newCookie)
		return err == nil && r.status == 200 && r.seen.Authorization == "Bearer new-token"
	})
	reloaded.Store(true)
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		t.Fatal("the workers did not finish within 30s")
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed across the reload; first: %v", n, done.Load(), firstErr.Load())
	}
	if total := done.Load(); total < workers*perWorker || doneAtSignal >= total {
		t.Fatalf("%d requests, SIGHUP after %d: the load did not span the reload", total, doneAtSignal)
	}
	t.Logf("%d requests, SIGHUP sent after %d, all 200", done.Load(), doneAtSignal)

	// A bad file is refused and the running configuration (both keys) stays.
	bintest.WriteFile(t, p.configPath, rotated.yaml()+"no_such_setting: true\n")
	p.Signal(t, syscall.SIGHUP)
	p.Eventually(t, 10*time.Second, `"configuration reload refused" on stderr`, func() bool {
		return strings.Contains(p.Stderr(), "configuration reload refused")
	})
	if p.Exited() {
		t.Fatalf("oauth-proxy exited (status %d) after a bad reload", p.ExitCode())
	}
	for _, c := range []struct{ cookie, auth string }{{newCookie, "Bearer new-token"}, {oldCookie, "Bearer old-token"}} {
		r, err := p.apiCall("/api/x", c.cookie)
		if err != nil || r.status != 200 || r.seen.Authorization != c.auth {
			t.Errorf("after the refused reload: status %d, upstream saw %q, err %v; want 200 and %q", r.status, r.seen.Authorization, err, c.auth)
		}
	}
	if !strings.Contains(p.Stderr(), "no_such_setting") {
		t.Errorf("the refusal does not name the bad setting:\n%s", p.Stderr())
	}
	metrics := p.metricsText(t)
	for _, want := range []string{
		"oauth_proxy_config_reloads_total{result=\"error\"} 1\n",
		"oauth_proxy_config_reloads_total{result=\"ok\"} 1\n",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
	if out := p.Stderr(); strings.Contains(out, oldKey.hex) || strings.Contains(out, newKey.hex) {
		t.Errorf("stderr holds key material")
	}
}

func TestDrainOnSIGTERM(t *testing.T) {
	key := newTestKey(t)
	up := newUpstream(t)
	p := startProxy(t, proxyConfig{Keys: []string{key.hex}, Upstream: up.URL})
	cookie := key.cookie(t, "slow-token")

	const n = 5
	type outcome struct {
		r   response
		err error
	}
	results := make(chan outcome, n)
	for range n {
		go func() {
			r, err := p.apiCall("/api/slow", cookie)
			results <- outcome{r, err}
		}()
	}
	timeout := time.After(10 * time.Second)
	for i := range n {
		select {
		case <-up.arrived:
		case <-timeout:
			t.Fatalf("only %d of %d requests reached the upstream within 10s", i, n)
		}
	}

	// All n requests are now held by the upstream, so they are in flight
	// for as long as the test wants.
	p.Signal(t, syscall.SIGTERM)
	p.Eventually(t, 5*time.Second, "/readyz to answer 503 while draining", func() bool {
		code, _, _ := p.ops("/readyz")
		return code == http.StatusServiceUnavailable
	})
	p.Eventually(t, 5*time.Second, "the listener to refuse new connections while draining", func() bool {
		c, err := net.DialTimeout("tcp", p.cfg.Listen, time.Second)
		if err == nil {
			c.Close()
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	if p.Exited() {
		t.Fatalf("oauth-proxy exited (status %d) with %d requests in flight", p.ExitCode(), n)
	}
	up.releaseAll()

	for range n {
		select {
		case o := <-results:
			if o.err != nil {
				t.Errorf("request in flight at SIGTERM: %v", o.err)
			} else if o.r.status != 200 || o.r.seen.Authorization != "Bearer slow-token" {
				t.Errorf("request in flight at SIGTERM: status %d, upstream saw %q; body %q", o.r.status, o.r.seen.Authorization, o.r.body)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("requests in flight at SIGTERM got no answer within 10s")
		}
	}
	if code := p.WaitExit(t, 5*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
	bintest.WantRefused(t, p.cfg.Listen)
}

// TestShutdownDelay: with timeouts.shutdown_delay, SIGTERM turns /readyz to
// 503 at once while the listener keeps serving, each answer with
// Connection: close (so that NGINX stops reusing the connection instead of
// racing the drain); the process exits 0 once the delay and the drain are
// over, not before the delay.
func TestShutdownDelay(t *testing.T) {
	key := newTestKey(t)
	up := newUpstream(t)
	p := startProxy(t, proxyConfig{Keys: []string{key.hex}, Upstream: up.URL, Timeouts: "{read: 30s, upstream: 15s, shutdown: 10s, shutdown_delay: 1s}"})
	cookie := key.cookie(t, "token-abc")
	if r, err := p.apiCall("/api/things", cookie); err != nil || r.status != 200 || r.close {
		t.Fatalf("before SIGTERM: %+v, %v; want 200 without Connection: close", r, err)
	}

	sent := time.Now()
	p.Signal(t, syscall.SIGTERM)
	p.Eventually(t, 5*time.Second, "/readyz to answer 503 after SIGTERM", func() bool {
		code, _, _ := p.ops("/readyz")
		return code == http.StatusServiceUnavailable
	})
	r, err := p.apiCall("/api/things", cookie)
	if during := time.Since(sent); err != nil || r.status != 200 || r.seen.Authorization != "Bearer token-abc" {
		t.Errorf("a request %v after SIGTERM, within the 1s delay: %+v, %v; want 200 forwarded", during, r, err)
	} else if !r.close {
		t.Errorf("the answer during the delay lacks Connection: close: %v", r.header)
	}
	if code := p.WaitExit(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
	if took := time.Since(sent); took < time.Second {
		t.Errorf("exited %v after SIGTERM, before the 1s delay was over", took)
	}
	if !strings.Contains(p.Stderr(), `"delay":1000`) {
		t.Errorf("the draining line does not give the delay:\n%s", p.Stderr())
	}
}

func TestUnixSocket(t *testing.T) {
	key := newTestKey(t)
	up := newUpstream(t)
	cookie := key.cookie(t, "unix-token")

	tests := []struct {
		name string
		// setup prepares the socket path; it returns a check run after the
		// binary has refused to start.
		setup     func(t *testing.T, sock string) func(t *testing.T)
		wantStart bool
		wantErr   []string // in stderr when the start is refused
	}{
		{
			name:      "no file yet",
			setup:     func(*testing.T, string) func(*testing.T) { return nil },
			wantStart: true,
		},
		{
			name: "stale socket is removed",
			setup: func(t *testing.T, sock string) func(*testing.T) {
				bintest.StaleSocket(t, sock)
				return nil
			},
			wantStart: true,
		},
		{
			name: "regular file",
			setup: func(t *testing.T, sock string) func(*testing.T) {
				bintest.WriteFile(t, sock, "not a socket")
				return func(t *testing.T) {
					if b, err := os.ReadFile(sock); err != nil || string(b) != "not a socket" {
						t.Errorf("the regular file was changed: %q, %v", b, err)
					}
				}
			},
			wantErr: []string{"listen", "not a socket"},
		},
		{
			name: "socket in use",
			setup: func(t *testing.T, sock string) func(*testing.T) {
				ln, err := net.Listen("unix", sock)
				if err != nil {
					t.Fatal(err)
				}
				bintest.Accept(t, ln, func(c net.Conn) { c.Close() })
				return func(t *testing.T) {
					c, err := net.Dial("unix", sock)
					if err != nil {
						t.Errorf("the running listener's socket was taken away: %v", err)
						return
					}
					c.Close()
				}
			},
			wantErr: []string{"listen", "in use"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(bintest.SocketDir(t), "proxy.sock")
			check := tt.setup(t, sock)
			cfg := proxyConfig{Listen: "unix:" + sock, Keys: []string{key.hex}, Upstream: up.URL}

			if !tt.wantStart {
				cfg.MetricsListen = "-"
				path := filepath.Join(t.TempDir(), "oauth-proxy.yaml")
				bintest.WriteFile(t, path, cfg.yaml())
				r := bin.Run(t, "-config", path)
				if r.Code != 1 {
					t.Fatalf("exit status %d, want 1; stderr %q", r.Code, r.Stderr)
				}
				for _, s := range append(tt.wantErr, sock) {
					if !strings.Contains(r.Stderr, s) {
						t.Errorf("stderr %q, want it to contain %q", r.Stderr, s)
					}
				}
				if check != nil {
					check(t)
				}
				return
			}

			p := startProxy(t, cfg)
			bintest.WantSocket(t, sock, 0o660)
			r, err := p.apiCall("/api/over-unix", cookie)
			if err != nil {
				t.Fatal(err)
			}
			if r.status != 200 || r.seen.Authorization != "Bearer unix-token" || r.seen.Path != "/api/over-unix" {
				t.Fatalf("status %d, upstream saw %+v; body %q", r.status, r.seen, r.body)
			}
			if got := r.header.Get("Access-Control-Allow-Origin"); got != trustedOrigin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, trustedOrigin)
			}

			p.Stop(t, 5*time.Second)
			if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("socket left behind after a clean stop: %v", err)
			}
		})
	}
}

// ---- the worker set (workers: 2): a supervisor and two worker processes,
// over TCP with SO_REUSEPORT and over one Unix socket each ----

// freshCall makes an API call on a new connection to addr (host:port or
// unix:/path), so that each call may reach another worker.
func freshCall(t *testing.T, addr, cookie string) (response, error) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	base := "http://" + addr
	if sock, ok := strings.CutPrefix(addr, "unix:"); ok {
		base = "http://oauth-proxy"
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
	}
	p := &proxyProc{base: base, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	return p.apiCall("/api/w", cookie)
}

// perWorker returns the value of series (its labels after the worker's,
// as `oauth_proxy_config_reloads_total{result="ok"}`) for workers 0 and 1
// on the set's page.
func perWorker(page, series string) [2]float64 {
	var v [2]float64
	for i := range v {
		name, labels, _ := strings.Cut(series, "{")
		if labels != "" {
			labels = "," + labels
		} else {
			labels = "}"
		}
		v[i], _ = metricstest.Value(page, fmt.Sprintf("%s{worker=\"%d\"%s", name, i, labels))
	}
	return v
}

// wantOnePage fails t unless page declares each family once and labels
// every sample of the workers' own series with a worker.
func wantOnePage(t *testing.T, page string) {
	t.Helper()
	seen := map[string]bool{}
	for line := range strings.Lines(page) {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			if seen[f[2]] {
				t.Errorf("family %s declared twice:\n%s", f[2], page)
			}
			seen[f[2]] = true
		} else if strings.HasPrefix(line, "oauth_proxy_") && !strings.HasPrefix(line, "oauth_proxy_worker_restarts_total") && !strings.Contains(line, `{worker="`) {
			t.Errorf("a worker's sample without its worker label: %q", line)
		}
	}
}

// workerPIDs returns the PIDs of the workers started, by index, from the
// supervisor's log (the latest start of each).
func workerPIDs(t *testing.T, p *proxyProc) map[string]int {
	t.Helper()
	pids := map[string]int{}
	for _, l := range bintest.LogLines(t, p.Stderr(), "worker started") {
		pids[l["worker"].(string)] = int(l["pid"].(float64))
	}
	return pids
}

func TestWorkersTCP(t *testing.T) {
	oldKey, newKey := newTestKey(t), newTestKey(t)
	up := newUpstream(t)
	p := startProxy(t, proxyConfig{Keys: []string{oldKey.hex}, Upstream: up.URL, Workers: 2,
		Timeouts: "{read: 30s, upstream: 15s, shutdown: 10s, shutdown_delay: 500ms}"})
	oldCookie, newCookie := oldKey.cookie(t, "old-token"), newKey.cookie(t, "new-token")

	// Both workers get connections: the kernel spreads them over the port.
	p.Eventually(t, 20*time.Second, "requests counted by both workers", func() bool {
		if r, err := freshCall(t, p.cfg.Listen, oldCookie); err != nil || r.status != 200 || r.seen.Authorization != "Bearer old-token" {
			t.Fatalf("a call through the worker set: %+v, %v", r, err)
		}
		n := perWorker(p.metricsText(t), `oauth_proxy_requests_total{route="/api/",status="200"}`)
		return n[0] > 0 && n[1] > 0
	})
	page := p.metricsText(t)
	wantOnePage(t, page)
	metricstest.WantDocumented(t, p.cfg.MetricsListen, "../../docs", "oauth_proxy_")
	if v, ok := metricstest.Value(page, "oauth_proxy_worker_restarts_total"); !ok || v != 0 {
		t.Errorf("oauth_proxy_worker_restarts_total %v (%v), want 0", v, ok)
	}

	// SIGHUP with a new key: checked by the supervisor, applied by each worker.
	rotated := p.cfg
	rotated.Keys = []string{newKey.hex, oldKey.hex}
	bintest.WriteFile(t, p.configPath, rotated.yaml())
	p.Signal(t, syscall.SIGHUP)
	p.Eventually(t, 10*time.Second, "both workers to reload", func() bool {
		n := perWorker(p.metricsText(t), `oauth_proxy_config_reloads_total{result="ok"}`)
		return n[0] == 1 && n[1] == 1
	})
	for range 20 {
		if r, err := freshCall(t, p.cfg.Listen, newCookie); err != nil || r.status != 200 || r.seen.Authorization != "Bearer new-token" {
			t.Fatalf("after the reload, a cookie sealed with the new key: %+v, %v", r, err)
		}
	}

	// A bad file: refused by the supervisor, and no worker sees it.
	bintest.WriteFile(t, p.configPath, rotated.yaml()+"no_such_setting: true\n")
	p.Signal(t, syscall.SIGHUP)
	p.Eventually(t, 10*time.Second, `"configuration reload refused" on stderr`, func() bool {
		return strings.Contains(p.Stderr(), "configuration reload refused")
	})
	if n := perWorker(p.metricsText(t), `oauth_proxy_config_reloads_total{result="error"}`); n != [2]float64{} {
		t.Errorf("failed reloads in the workers %v: the bad file reached them", n)
	}
	for range 10 {
		if r, err := freshCall(t, p.cfg.Listen, oldCookie); err != nil || r.status != 200 {
			t.Fatalf("after the refused reload: %+v, %v", r, err)
		}
	}

	// kill -9 of a worker: logged, restarted, counted; the set keeps serving.
	pids := workerPIDs(t, p)
	if len(pids) != 2 {
		t.Fatalf("worker PIDs %v from the log", pids)
	}
	if err := syscall.Kill(pids["1"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Connections waiting in the killed worker's accept queue are reset
	// (the kernel's doing); once it is gone, the others take them all.
	p.Eventually(t, 5*time.Second, "the exit logged", func() bool {
		return len(bintest.LogLines(t, p.Stderr(), "worker exited; restarting")) > 0
	})
	for range 10 {
		if r, err := freshCall(t, p.cfg.Listen, oldCookie); err != nil || r.status != 200 {
			t.Fatalf("with worker 1 killed: %+v, %v", r, err)
		}
	}
	p.Eventually(t, 10*time.Second, "worker 1 restarted and the set ready", func() bool {
		code, _, _ := p.ops("/readyz")
		v, _ := metricstest.Value(p.metricsText(t), "oauth_proxy_worker_restarts_total")
		return code == 200 && v == 1 && workerPIDs(t, p)["1"] != pids["1"]
	})
	if n := perWorker(p.metricsText(t), `oauth_proxy_config_reloads_total{result="ok"}`); n[0] != 1 {
		t.Errorf("worker 0 counts %v good reloads, want 1: the refused file was forwarded", n[0])
	}
	exited := bintest.LogLines(t, p.Stderr(), "worker exited; restarting")
	if len(exited) != 1 || exited[0]["worker"] != "1" || exited[0]["pid"] != float64(pids["1"]) || exited[0]["status"] != "signal: killed" {
		t.Errorf("the exit logged: %v", exited)
	}

	// SIGTERM: /readyz 503 during the workers' shutdown_delay, every worker stops, exit 0.
	p.Signal(t, syscall.SIGTERM)
	p.Eventually(t, 5*time.Second, "/readyz 503 while draining", func() bool {
		code, _, _ := p.ops("/readyz")
		return code == http.StatusServiceUnavailable
	})
	if code := p.WaitExit(t, 15*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
	if n := len(bintest.LogLines(t, p.Stderr(), "worker stopped")); n != 2 {
		t.Errorf("%d workers logged their stop, want 2", n)
	}
	for _, pid := range workerPIDs(t, p) {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("worker %d still runs after the supervisor exited: %v", pid, err)
		}
	}
	bintest.WantRefused(t, p.cfg.Listen)
	if out := p.Stderr(); strings.Contains(out, oldKey.hex) || strings.Contains(out, newKey.hex) {
		t.Errorf("stderr holds key material")
	}
}

func TestWorkersUnix(t *testing.T) {
	key := newTestKey(t)
	up := newUpstream(t)
	sock := filepath.Join(bintest.SocketDir(t), "proxy.sock")
	p := startProxy(t, proxyConfig{Listen: "unix:" + sock, Keys: []string{key.hex}, Upstream: up.URL, Workers: 2})
	cookie := key.cookie(t, "unix-token")

	for i := range 2 {
		s := fmt.Sprintf("%s.%d", sock, i)
		bintest.WantSocket(t, s, 0o660)
		for range 3 {
			if r, err := freshCall(t, "unix:"+s, cookie); err != nil || r.status != 200 || r.seen.Authorization != "Bearer unix-token" {
				t.Fatalf("through %s: %+v, %v", s, r, err)
			}
		}
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists: each worker has its own socket: %v", sock, err)
	}
	page := p.metricsText(t)
	wantOnePage(t, page)
	if n := perWorker(page, `oauth_proxy_requests_total{route="/api/",status="200"}`); n != [2]float64{3, 3} {
		t.Errorf("requests per worker %v, want 3 each", n)
	}
	private := bintest.LogLines(t, p.Stderr(), "oauth-proxy serving")
	if len(private) != 2 || private[0]["worker"] == private[1]["worker"] {
		t.Fatalf("%d workers logged serving (%v), want 2, each with its index", len(private), private)
	}
	opsDir := filepath.Dir(strings.TrimPrefix(private[0]["metrics_listen"].(string), "unix:"))
	if fi, err := os.Stat(opsDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the workers' metrics directory %s: %v, %v; want mode 0700", opsDir, fi.Mode(), err)
	}

	p.Stop(t, 15*time.Second)
	for _, path := range []string{sock + ".0", sock + ".1", opsDir} {
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind after a clean stop: %v", path, err)
		}
	}
}

// TestWorkersCannotStart: a TCP port another process holds stops the set
// before any worker starts (the supervisor's probe: SO_REUSEPORT would
// otherwise let a second set share the first's traffic), and a worker
// that cannot open its listener stops the set; the supervisor exits 1 in
// both cases, as a single process does.
func TestWorkersCannotStart(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	for _, c := range []struct{ name, listen, want string }{
		{"port held", held.Addr().String(), "cannot start: listen"},
		{"no socket directory", "unix:" + filepath.Join(t.TempDir(), "missing", "proxy.sock"), "worker could not start"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "oauth-proxy.yaml")
			bintest.WriteFile(t, path, proxyConfig{Listen: c.listen, MetricsListen: "-", Keys: []string{newTestKey(t).hex}, Upstream: "http://127.0.0.1:9", Workers: 2}.yaml())
			r := bin.Run(t, "-config", path)
			if r.Code != 1 || !strings.Contains(r.Stderr, c.want) {
				t.Fatalf("exit status %d, want 1 with %q; stderr:\n%s", r.Code, c.want, r.Stderr)
			}
		})
	}
}

// gone reports whether process pid has exited (a zombie nobody reaps
// counts: a container's init may not reap).
func gone(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, after, _ := strings.Cut(string(stat), ") ")
	return strings.HasPrefix(after, "Z")
}

// TestWorkersSupervisorKilled: the checked configuration, key included,
// never lies on disk, so a kill -9 of the supervisor (the OOM killer, say)
// leaves none behind; its workers drain (Pdeathsig) and exit, removing
// their sockets.
func TestWorkersSupervisorKilled(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "800MiB")
	key := newTestKey(t)
	p := startProxy(t, proxyConfig{Keys: []string{key.hex}, Upstream: newUpstream(t).URL, Workers: 2})
	serving := bintest.LogLines(t, p.Stderr(), "oauth-proxy serving")
	if len(serving) != 2 {
		t.Fatalf("%d workers logged serving, want 2", len(serving))
	}
	dir := filepath.Dir(strings.TrimPrefix(serving[0]["metrics_listen"].(string), "unix:"))
	t.Cleanup(func() { os.RemoveAll(dir) })
	onDisk := func() []string {
		var found []string
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if data, _ := os.ReadFile(path); err == nil && !d.IsDir() && (!strings.HasSuffix(path, ".sock") || strings.Contains(string(data), key.hex)) {
				found = append(found, path)
			}
			return nil
		})
		return found
	}
	if found := onDisk(); len(found) > 0 {
		t.Errorf("the workers' directory holds %v, want sockets only", found)
	}
	pids := workerPIDs(t, p)
	// The supervisor keeps 1/8 of GOMEMLIMIT, the two workers share the rest.
	if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pids["1"])); err != nil || !strings.Contains(string(env), "\x00GOMEMLIMIT=367001600\x00") {
		t.Errorf("worker 1's environment lacks GOMEMLIMIT=367001600 (7/16 of 800 MiB): %v", err)
	}
	p.Signal(t, syscall.SIGKILL)
	p.WaitExit(t, 5*time.Second)
	bintest.Eventually(t, 5*time.Second, "the workers to exit after the supervisor's kill", func() bool {
		return gone(pids["0"]) && gone(pids["1"])
	})
	if found := onDisk(); len(found) > 0 {
		t.Errorf("the supervisor's kill left %v", found)
	}
	for i := range 2 {
		if _, err := os.Lstat(filepath.Join(dir, fmt.Sprint(i)+".sock")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("worker %d's metrics socket left: %v", i, err)
		}
	}
}

// TestWorkersStrayEnv: the workers' variables in an operator's environment
// do not make a worker: without a supervisor's pipe the proxy refuses to
// start, and -check-config says why.
func TestWorkersStrayEnv(t *testing.T) {
	t.Setenv("TH_PROXY_WORKER", "1")
	t.Setenv("TH_PROXY_WORKER_LISTEN", "127.0.0.1:1")
	t.Setenv("TH_PROXY_WORKER_METRICS", "unix:/tmp/stray.sock")
	for _, c := range []struct {
		name    string
		workers int
		want    string
	}{
		{"workers 1", 1, "oauth-proxy: TH_PROXY_WORKER is set but file descriptor 4 is not a supervisor's pipe"},
		{"workers 2", 2, "oauth-proxy: TH_PROXY_WORKER is set but file descriptor 4 is not a supervisor's pipe"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "oauth-proxy.yaml")
			bintest.WriteFile(t, path, proxyConfig{Listen: "127.0.0.1:8081", MetricsListen: "-", Keys: []string{newTestKey(t).hex}, Upstream: "http://127.0.0.1:9", Workers: c.workers}.yaml())
			for _, args := range [][]string{{"-config", path, "-check-config"}, {"-config", path}} {
				if r := bin.Run(t, args...); r.Code != 1 || !strings.Contains(r.Stderr, c.want) {
					t.Errorf("%v: exit status %d, want 1 with %q; stderr:\n%s", args, r.Code, c.want, r.Stderr)
				}
			}
		})
	}
}

// TestWorkersSignalWhileStarting: signals that arrive while a worker
// restarts, before its signal handlers are installed, neither kill it
// (SIGHUP, the default action) nor are lost (SIGTERM): the set stops with
// status 0.
func TestWorkersSignalWhileStarting(t *testing.T) {
	p := startProxy(t, proxyConfig{Keys: []string{newTestKey(t).hex}, Upstream: newUpstream(t).URL, Workers: 2})
	if err := syscall.Kill(workerPIDs(t, p)["1"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// A good reload after another while worker 1 restarts; SIGTERM as soon
	// as its new start is logged.
	// Every millisecond, not Eventually's ten: the race is the point.
	if err := bintest.Poll(t.Context(), 5*time.Second, time.Millisecond, "worker 1 to restart", func() bool {
		if strings.Count(p.Stderr(), `"worker started"`) >= 3 {
			return true
		}
		p.Signal(t, syscall.SIGHUP)
		return false
	}); err != nil {
		t.Fatalf("%v; stderr:\n%s", err, p.Stderr())
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.WaitExit(t, 10*time.Second); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	for _, l := range bintest.LogLines(t, p.Stderr(), "worker exited; restarting") {
		if l["status"] != "signal: killed" {
			t.Errorf("a worker died of a forwarded signal: %v", l)
		}
	}
	if n := len(bintest.LogLines(t, p.Stderr(), "worker stopped")); n != 2 {
		t.Errorf("%d workers logged their stop, want 2; stderr:\n%s", n, p.Stderr())
	}
}

// TestWorkersReloadThenStop: a worker that finishes a reload after the
// SIGTERM was forwarded gets no second one, which would cut its
// shutdown_delay short. Worker 0 is stopped (SIGSTOP) while both signals
// reach it, so that it takes them in that order once continued.
func TestWorkersReloadThenStop(t *testing.T) {
	p := startProxy(t, proxyConfig{Keys: []string{newTestKey(t).hex}, Upstream: newUpstream(t).URL, Workers: 2,
		Timeouts: "{read: 30s, upstream: 15s, shutdown: 10s, shutdown_delay: 1s}"})
	pid := workerPIDs(t, p)["0"]
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	p.Signal(t, syscall.SIGHUP)
	p.Signal(t, syscall.SIGTERM)
	start := time.Now()
	p.Eventually(t, 5*time.Second, "SIGTERM forwarded", func() bool { return strings.Contains(p.Stderr(), "draining: SIGTERM forwarded") })
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if code := p.WaitExit(t, 10*time.Second); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("stopped %v after SIGTERM, before shutdown_delay 1s", d)
	}
}

// TestWorkersStuck: a worker that does not stop within shutdown_delay +
// shutdown + 5 s of SIGTERM, from the last file checked, is killed, its
// socket removed, and the supervisor exits 1.
func TestWorkersStuck(t *testing.T) {
	sock := filepath.Join(bintest.SocketDir(t), "proxy.sock")
	p := startProxy(t, proxyConfig{Listen: "unix:" + sock, Keys: []string{newTestKey(t).hex}, Upstream: newUpstream(t).URL, Workers: 2,
		Timeouts: "{read: 30s, upstream: 15s, shutdown: 100ms}"})
	longer := p.cfg
	longer.Timeouts = "{read: 30s, upstream: 15s, shutdown: 100ms, shutdown_delay: 1s}"
	bintest.WriteFile(t, p.configPath, longer.yaml())
	p.Signal(t, syscall.SIGHUP)
	p.Eventually(t, 5*time.Second, "both workers to reload", func() bool {
		return perWorker(p.metricsText(t), `oauth_proxy_config_reloads_total{result="ok"}`) == [2]float64{1, 1}
	})
	if err := syscall.Kill(workerPIDs(t, p)["0"], syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.Signal(t, syscall.SIGTERM)
	if code := p.WaitExit(t, 10*time.Second); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if d := time.Since(start); d < 6*time.Second {
		t.Errorf("the stuck worker killed after %v, want 6.1 s", d)
	}
	if len(bintest.LogLines(t, p.Stderr(), "workers still running after the shutdown timeout: killed")) != 1 {
		t.Errorf("the kill not logged; stderr:\n%s", p.Stderr())
	}
	if _, err := os.Lstat(sock + ".0"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the killed worker's socket left: %v", err)
	}
}

// TestWorkersEditedToOne: a set whose file is edited to workers: 1, with a
// new key in the same edit, then SIGHUP. The supervisor checks the file and
// passes it on (workers waits for a restart); the workers must take the new
// key rather than refuse their own text, and a worker that crashes after
// the edit must come back.
func TestWorkersEditedToOne(t *testing.T) {
	oldKey, newKey := newTestKey(t), newTestKey(t)
	p := startProxy(t, proxyConfig{Keys: []string{oldKey.hex}, Upstream: newUpstream(t).URL, Workers: 2})
	next := p.cfg
	next.Workers, next.Keys = 1, []string{newKey.hex, oldKey.hex}
	bintest.WriteFile(t, p.configPath, next.yaml())
	p.Signal(t, syscall.SIGHUP)
	p.Eventually(t, 10*time.Second, "both workers reloaded", func() bool {
		return perWorker(p.metricsText(t), `oauth_proxy_config_reloads_total{result="ok"}`) == [2]float64{1, 1}
	})
	if n := perWorker(p.metricsText(t), `oauth_proxy_config_reloads_total{result="error"}`); n != [2]float64{} {
		t.Errorf("reload errors per worker %v, want none", n)
	}
	if err := syscall.Kill(workerPIDs(t, p)["1"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.Eventually(t, 10*time.Second, "worker 1 restarted and the set ready", func() bool {
		code, _, err := p.ops("/readyz")
		return err == nil && code == 200 && strings.Count(p.Stderr(), `"worker started"`) == 3
	})
	if n := len(bintest.LogLines(t, p.Stderr(), "worker exited; restarting")); n != 1 {
		t.Errorf("%d unexpected exits, want the one kill; stderr:\n%s", n, p.Stderr())
	}
}

// TestWorkersOwnDescriptors: each worker holds its own memfd on ConfigFD
// and its pipe on ReadyFD and no other descriptor of its supervisor's (a
// memfd without MFD_CLOEXEC would reach the next worker), and no file in
// $TMPDIR holds the key (the text goes through memfds, not temporary files).
func TestWorkersOwnDescriptors(t *testing.T) {
	key := newTestKey(t)
	before := tmpFilesWith(t, key.hex)
	p := startProxy(t, proxyConfig{Keys: []string{key.hex}, Upstream: newUpstream(t).URL, Workers: 2})
	for i, pid := range workerPIDs(t, p) {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			target, _ := os.Readlink(filepath.Join(dir, e.Name()))
			if strings.HasPrefix(target, "/memfd:") != (e.Name() == "3") || (e.Name() == "4" && !strings.HasPrefix(target, "pipe:")) {
				t.Errorf("worker %s fd %s -> %s: want its memfd on 3 only, its pipe on 4", i, e.Name(), target)
			}
		}
	}
	if after := tmpFilesWith(t, key.hex); after > before {
		t.Errorf("%d new files in %s hold the key", after-before, os.TempDir())
	}
}

// tmpFilesWith counts the regular files directly in $TMPDIR that contain s.
func tmpFilesWith(t *testing.T, s string) int {
	t.Helper()
	ents, err := os.ReadDir(os.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if data, err := os.ReadFile(filepath.Join(os.TempDir(), e.Name())); e.Type().IsRegular() && err == nil && strings.Contains(string(data), s) {
			n++
		}
	}
	return n
}

// TestWorkersIgnoreSIGHUP: a SIGHUP sent to every process of the set at
// once (systemctl kill -s HUP, pkill -HUP) reaches the supervisor's check
// alone: a worker acting on it as well would report a load its supervisor
// did not ask for, and be handed the next text while still reading one (a
// torn read: "the file is empty", a YAML error, or a text cut between two
// settings that parses).
func TestWorkersIgnoreSIGHUP(t *testing.T) {
	a, b := newTestKey(t), newTestKey(t)
	p := startProxy(t, proxyConfig{Keys: []string{a.hex}, Upstream: newUpstream(t).URL, Workers: 2})
	other := p.cfg
	other.Keys = []string{b.hex, a.hex}
	texts := []string{p.cfg.yaml(), other.yaml()}
	pids := workerPIDs(t, p)
	// Each text replaces the file whole (a rename), as an operator's tools
	// do: written in place, the supervisor's reload could read it
	// truncated, refuse it, and so miss the last text when that reload
	// took the last SIGHUP too.
	write := func(text string) {
		bintest.WriteFile(t, p.configPath+".new", text)
		if err := os.Rename(p.configPath+".new", p.configPath); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 400 {
		write(texts[i%2])
		p.Signal(t, syscall.SIGHUP)
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGHUP)
		}
	}
	write(texts[1])
	p.Signal(t, syscall.SIGHUP)
	cookie := b.cookie(t, "new-token")
	p.Eventually(t, 10*time.Second, "both workers on the last text (10 new connections in a row)", func() bool {
		for range 10 {
			if r, err := freshCall(t, p.cfg.Listen, cookie); err != nil || r.status != 200 {
				return false
			}
		}
		return true
	})
	if !strings.Contains(p.Stderr(), "SIGHUP ignored") {
		t.Errorf("no worker logged a SIGHUP it ignored; stderr:\n%s", p.Stderr())
	}
	// Every text is whole: neither the supervisor nor a worker (which must
	// take the supervisor's text, never read a torn one) refuses any.
	for _, msg := range []string{
		"configuration reload refused; the running configuration stays, nothing forwarded to the workers",
		"configuration reload refused; the running configuration stays",
	} {
		for _, l := range bintest.LogLines(t, p.Stderr(), msg) {
			t.Errorf("refused a text (worker %v; nil: the supervisor): %v", l["worker"], l["error"])
		}
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Errorf("worker %d gone after the SIGHUPs: %v", pid, err)
		}
	}
}

// TestWorkersApps: the supervisor of a set whose file has apps answers
// /readyz as a single process does: each application listed, and
// /readyz?app=NAME for one (404 for a name the file does not have).
func TestWorkersApps(t *testing.T) {
	up := newUpstream(t)
	app := func(name string) string {
		return fmt.Sprintf("  - {name: %s, hosts: [%s.example.localhost], trusted_web_origins: [\"http://%s.example.localhost:3000\"], cookie: {prefix: %s}, encryption_keys: [%q]}\n",
			name, name, name, name, newTestKey(t).hex)
	}
	p := startProxy(t, proxyConfig{Upstream: up.URL, Workers: 2, Extra: "apps:\n" + app("shop") + app("admin")})
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + p.cfg.MetricsListen + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for path, want := range map[string]string{
		"/readyz":            `200 {"status":"ready","apps":{"admin":"ready","shop":"ready"}}`,
		"/readyz?app=admin":  `200 {"app":"admin","status":"ready"}`,
		"/readyz?app=nosuch": `404 {"status":"unknown application"}`,
	} {
		code, body := get(path)
		if got := fmt.Sprintf("%d %s", code, body); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
}
