package nginx

// The test harness: real NGINX processes on loopback ports, with the real
// oauth-proxy in-process and a test API behind them.

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/proxy"
)

const (
	trustedOrigin = "http://www.example.localhost:3000"
	apiHost       = "api.example.localhost"
)

// nginxBinary returns the NGINX executable. Without one the test is skipped
// locally and fails in CI (the environment variable CI is set), so CI cannot
// pass without running NGINX. $NGINX names a binary explicitly.
func nginxBinary(t *testing.T) string {
	t.Helper()
	candidates := []string{"nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"}
	if env := os.Getenv("NGINX"); env != "" {
		candidates = []string{env}
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nginx not found (apt-get install -y nginx, or set NGINX); CI must run these tests")
	}
	t.Skip("nginx not found: apt-get install -y nginx (CI fails instead of skipping)")
	return ""
}

// runParams fills in what every test configuration needs: a run directory,
// one worker (round robin is then strict), and as root a user the workers
// can write the run directory with.
func runParams(t *testing.T, p Params) Params {
	t.Helper()
	p.RunDir = t.TempDir()
	p.WorkerProcesses = 1
	if os.Geteuid() == 0 {
		p.User = "root"
	}
	return p
}

// instance is one running NGINX.
type instance struct {
	url  string // http(s)://127.0.0.1:port
	dir  string
	conf []byte
}

// startNGINX renders mode with p on a free loopback port and runs NGINX on
// it until the test ends. A port taken between choosing and binding it is
// retried on another.
func startNGINX(t *testing.T, mode string, p Params) *instance {
	t.Helper()
	bin := nginxBinary(t)
	p = runParams(t, p)
	scheme := "http"
	if p.TLSCertificate != "" {
		scheme = "https"
	}
	for attempt := 0; ; attempt++ {
		p.Listen = freeAddr(t)
		conf, err := Render(mode, p)
		if err != nil {
			t.Fatal(err)
		}
		in := &instance{url: scheme + "://" + p.Listen, dir: p.RunDir, conf: conf}
		err = in.start(t, bin, p.Listen)
		if err == nil {
			return in
		}
		if attempt < 3 && strings.Contains(err.Error(), "Address already in use") {
			continue
		}
		t.Fatal(err)
	}
}

func (in *instance) start(t *testing.T, bin, addr string) error {
	t.Helper()
	confPath := filepath.Join(in.dir, "nginx.conf")
	if err := os.WriteFile(confPath, in.conf, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd := exec.Command(bin, "-p", in.dir, "-c", confPath, "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	// Its own process group: the cleanup can then reach the workers too,
	// and only them, should the master not stop by itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// Ready when the master has written its pid file, which it does after
	// binding the listen socket, and the socket accepts: a port some other
	// process took meanwhile cannot pass for ours.
	pidFile := filepath.Join(in.dir, "nginx.pid")
	wantPid := strconv.Itoa(cmd.Process.Pid)
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if pid, _ := os.ReadFile(pidFile); strings.TrimSpace(string(pid)) == wantPid {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				break
			}
		}
		select {
		case err := <-exited:
			logs, _ := os.ReadFile(filepath.Join(in.dir, "error.log"))
			return fmt.Errorf("nginx exited at start (%v):\n%s%s", err, stderr.String(), logs)
		case <-deadline.C:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			return fmt.Errorf("nginx did not serve %s within 10s:\n%s", addr, stderr.String())
		case <-tick.C:
		}
	}

	t.Cleanup(func() {
		// SIGTERM: fast shutdown of the master and its workers.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("nginx (pid %d) did not stop within 10s of SIGTERM; killing its process group", cmd.Process.Pid)
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			logs, _ := os.ReadFile(filepath.Join(in.dir, "error.log"))
			t.Logf("nginx stderr:\n%s\nerror.log:\n%s", stderr.String(), logs)
		}
	})
	return nil
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// api is the protected API: it records the last request and answers with
// its path as JSON.
type api struct {
	*httptest.Server
	mu   sync.Mutex
	last *http.Request
	body []byte
}

func newAPI(t *testing.T) *api {
	t.Helper()
	a := &api{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "websocket" {
			a.echo(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.last, a.body = r, body
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	}))
	t.Cleanup(a.Close)
	return a
}

// echo switches to the WebSocket-like protocol "echo a line" and records the
// request. It stands for a WebSocket API: NGINX only has to carry the
// upgrade.
func (a *api) echo(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.last, a.body = r, nil
	a.mu.Unlock()
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	rw.Flush()
	if line, err := rw.ReadString('\n'); err == nil {
		rw.WriteString(line)
		rw.Flush()
	}
}

// received returns the last request the API saw, and forgets it.
func (a *api) received() (*http.Request, []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, b := a.last, a.body
	a.last, a.body = nil, nil
	return r, b
}

// addr is the API's host:port.
func (a *api) addr() string { return strings.TrimPrefix(a.URL, "http://") }

// startProxy runs an oauth-proxy in upstream mode, routing /api/ to api,
// with the configuration extra appended. It returns the proxy's address and
// its key ring (the sealing key first) and the older key alone.
func startProxy(t *testing.T, apiAddr, extra string) (addr string, keys, old *crypto.Keyring) {
	t.Helper()
	newKey, oldKey := crypto.GenerateKey(), crypto.GenerateKey()
	yaml := fmt.Sprintf(`
listen: 127.0.0.1:0
encryption_keys: [%q, %q]
trusted_web_origins: [%q]
routes:
  - {path_prefix: /api/, upstream: "http://%s"}
timeouts: {upstream: 5s}
log: {level: warn}
%s`, newKey.AppendHex(nil), oldKey.AppendHex(nil), trustedOrigin, apiAddr, extra)
	cfg, err := proxy.ParseConfig([]byte(yaml), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	srv, err := proxy.NewServer(cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	old, _ = crypto.NewKeyring(oldKey)
	return srv.Addr().String(), cfg.Keys, old
}

// request is one call.
type request struct {
	method  string
	path    string
	headers [][2]string // in order; names may repeat
	body    io.Reader
	length  int64 // with body: Content-Length, -1 for chunked
}

// response is what came back.
type response struct {
	status int
	header http.Header
	body   string
	tls    *tls.ConnectionState
}

func newClient(roots *tls.Config) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConnsPerHost:   16,
			DisableCompression:    true,
			TLSClientConfig:       roots,
			ExpectContinueTimeout: 5 * time.Second,
		},
		Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

var client = newClient(nil)

func do(t *testing.T, c *http.Client, base string, r request) response {
	t.Helper()
	req, err := http.NewRequest(r.method, base+r.path, r.body)
	if err != nil {
		t.Fatal(err)
	}
	if r.body != nil {
		req.ContentLength = r.length
	}
	for _, kv := range r.headers {
		if strings.EqualFold(kv[0], "Host") {
			req.Host = kv[1]
			continue
		}
		k := http.CanonicalHeaderKey(kv[0])
		req.Header[k] = append(req.Header[k], kv[1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", r.method, base, r.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s%s: reading the body: %v", r.method, base, r.path, err)
	}
	return response{resp.StatusCode, resp.Header, string(body), resp.TLS}
}
