package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/internal/bintest"

	"github.com/VictoriaMetrics/metrics"
)

// TestServer serves a handler on a Unix socket and the operations endpoints
// on TCP, then drains: /readyz and the gauge follow both the service's
// readiness and the drain; after BeginShutdown the handler still answers,
// with Connection: close; the socket goes with Shutdown.
func TestServer(t *testing.T) {
	sock := filepath.Join(bintest.SocketDir(t), "s.sock")
	var ready atomic.Bool
	h := HTTP{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") }, Read: time.Second, Write: time.Second, Idle: time.Second}
	s, err := NewServer(ServerConfig{
		Listen:        "unix:" + sock,
		MetricsListen: "127.0.0.1:0",
		HTTP:          h,
		Registry:      metrics.NewSet(),
		ReadyGauge:    "test_ready",
		Ready:         ready.Load,
		Log:           zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()

	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	defer tr.CloseIdleConnections()
	app := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	ops := &http.Client{Timeout: 5 * time.Second}
	get := func(c *http.Client, url string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		resp, body := bintest.Do(t, c, req)
		return resp.StatusCode, string(body)
	}
	opsURL := "http://" + s.MetricsAddr().String()

	if code, body := get(app, "http://daemon/"); code != 200 || body != "hello" {
		t.Errorf("handler: %d %q, want 200 hello", code, body)
	}
	if s.Addr().String() != sock {
		t.Errorf("Addr %q, want %q", s.Addr(), sock)
	}
	for _, tt := range []struct {
		ready     bool
		wantCode  int
		wantGauge string
	}{
		{false, 503, "test_ready 0\n"},
		{true, 200, "test_ready 1\n"},
	} {
		ready.Store(tt.ready)
		if code, _ := get(ops, opsURL+"/readyz"); code != tt.wantCode {
			t.Errorf("service ready %v: /readyz %d, want %d", tt.ready, code, tt.wantCode)
		}
		if _, m := get(ops, opsURL+"/metrics"); !strings.Contains(m, tt.wantGauge) {
			t.Errorf("service ready %v: /metrics lacks %q:\n%s", tt.ready, tt.wantGauge, m)
		}
	}

	if code, body := get(app, "http://daemon/"); code != 200 || body != "hello" {
		t.Errorf("handler before BeginShutdown: %d %q, want 200 hello", code, body)
	}
	s.BeginShutdown()
	if code, _ := get(ops, opsURL+"/readyz"); code != 503 {
		t.Errorf("after BeginShutdown: /readyz %d, want 503", code)
	}
	if _, m := get(ops, opsURL+"/metrics"); !strings.Contains(m, "test_ready 0\n") {
		t.Errorf("after BeginShutdown: /metrics lacks test_ready 0:\n%s", m)
	}
	// The keep-alive connection of the request above is reused: the
	// listener still serves it, and the answer asks the client to close it.
	resp, err := app.Get("http://daemon/")
	if err != nil {
		t.Fatalf("handler after BeginShutdown: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello" || !resp.Close {
		t.Errorf("handler after BeginShutdown: %d %q, Connection: close %v; want 200 hello, true", resp.StatusCode, body, resp.Close)
	}

	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve returned %v after Shutdown, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of Shutdown")
	}
	if s.Ready() {
		t.Error("Ready after Shutdown")
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left behind after Shutdown: %v", err)
	}
}

// TestNewServerMetricsListenFails: an error names the setting, and the
// listener already open is closed and its socket removed.
func TestNewServerMetricsListenFails(t *testing.T) {
	dir := bintest.SocketDir(t)
	sock, notSock := filepath.Join(dir, "s.sock"), filepath.Join(dir, "file")
	if err := os.WriteFile(notSock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewServer(ServerConfig{
		Listen:        "unix:" + sock,
		MetricsListen: "unix:" + notSock,
		HTTP:          HTTP{Read: time.Second, Write: time.Second, Idle: time.Second},
		Registry:      metrics.NewSet(),
		ReadyGauge:    "test_ready",
		Log:           zerolog.Nop(),
	})
	if err == nil || !strings.HasPrefix(err.Error(), "metrics_listen: ") || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("error %v, want metrics_listen: ... not a socket", err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the listener's socket was left behind: %v", err)
	}
}

// TestOpsRoutes: an extra route is served on the metrics listener, by exact
// path, beside /metrics, /healthz and /readyz, which it cannot replace.
func TestOpsRoutes(t *testing.T) {
	cfg := ServerConfig{
		Listen:        "127.0.0.1:0",
		MetricsListen: "127.0.0.1:0",
		HTTP:          HTTP{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("app") }, Read: time.Second, Write: time.Second, Idle: time.Second},
		Registry:      metrics.NewSet(),
		ReadyGauge:    "test_ready",
		OpsRoutes: map[string]fasthttp.RequestHandler{
			"/feed": func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("feed " + string(ctx.QueryArgs().Peek("after"))) },
		},
		Log: zerolog.Nop(),
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Shutdown(context.Background())
	ops := "http://" + s.MetricsAddr().String()
	for _, tc := range []struct {
		url      string
		wantCode int
		wantBody string
	}{
		{ops + "/feed?after=3", 200, "feed 3"},
		{ops + "/metrics", 200, "test_ready 1"},
		{ops + "/healthz", 200, `{"status":"ok"}`},
		{ops + "/readyz", 200, `{"status":"ready"}`},
		{ops + "/feed/more", 404, ""},
		{ops + "/nothing", 404, ""},
		{"http://" + s.Addr().String() + "/feed", 200, "app"}, // not on the main listener
	} {
		resp, err := http.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.wantCode || !strings.Contains(string(body), tc.wantBody) {
			t.Errorf("GET %s: %d %q, want %d with %q", tc.url, resp.StatusCode, body, tc.wantCode, tc.wantBody)
		}
	}

	for _, path := range []string{"/metrics", "/readyz", "/healthz", "feed"} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "daemon: internal error") {
					t.Errorf("OpsRoutes %q: recovered %v, want a panic", path, r)
				}
			}()
			bad := cfg
			bad.OpsRoutes = map[string]fasthttp.RequestHandler{path: func(*fasthttp.RequestCtx) {}}
			NewServer(bad)
		}()
	}
}

// TestServerApps: with applications, /readyz is 200 while one is ready and
// lists each, /readyz?app=NAME answers for one (404 for a name it does not
// know), each has its gauge besides the process's, AppsChanged follows
// applications added and removed, and a drain makes every one not ready.
func TestServerApps(t *testing.T) {
	var mu sync.Mutex
	apps := []AppStatus{{"admin", false}, {"shop", true}}
	list := func() []AppStatus {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(apps)
	}
	anyReady := func() bool { return slices.ContainsFunc(list(), func(a AppStatus) bool { return a.Ready }) }
	s, err := NewServer(ServerConfig{
		Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0",
		HTTP:     HTTP{Handler: func(ctx *fasthttp.RequestCtx) {}, Read: time.Second, Write: time.Second, Idle: time.Second},
		Registry: metrics.NewSet(), ReadyGauge: "test_ready", Ready: anyReady, Apps: list, Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	bintest.Serve(t, s.Serve, s.Shutdown)
	ops := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.MetricsAddr().String()+path, nil)
		resp, body := bintest.Do(t, ops, req)
		return resp.StatusCode, string(body)
	}
	want := func(path string, code int, body string) {
		t.Helper()
		if c, b := get(path); c != code || b != body {
			t.Errorf("%s: %d %s, want %d %s", path, c, b, code, body)
		}
	}
	wantGauges := func(gauges ...string) {
		t.Helper()
		_, m := get("/metrics")
		for _, g := range gauges {
			if !strings.Contains(m, "\n"+g+"\n") {
				t.Errorf("/metrics lacks %q", g)
			}
		}
	}
	want("/readyz", 200, `{"status":"ready","apps":{"admin":"not_ready","shop":"ready"}}`)
	want("/readyz?app=shop", 200, `{"app":"shop","status":"ready"}`)
	want("/readyz?app=admin", 503, `{"app":"admin","status":"not ready"}`)
	want("/readyz?app=nope", 404, `{"status":"unknown application"}`)
	want("/readyz?app=", 404, `{"status":"unknown application"}`)
	wantGauges("test_ready 1", `test_ready{app="admin"} 0`, `test_ready{app="shop"} 1`)

	mu.Lock()
	apps = []AppStatus{{"admin", false}, {"blog", false}}
	mu.Unlock()
	s.AppsChanged()
	want("/readyz", 503, `{"status":"not ready","apps":{"admin":"not_ready","blog":"not_ready"}}`)
	wantGauges("test_ready 0", `test_ready{app="admin"} 0`, `test_ready{app="blog"} 0`)
	if _, m := get("/metrics"); strings.Contains(m, `app="shop"`) {
		t.Error("the gauge of a removed application is still there")
	}

	mu.Lock()
	apps = []AppStatus{{"admin", true}, {"blog", false}}
	mu.Unlock()
	s.BeginShutdown()
	want("/readyz", 503, `{"status":"not ready","apps":{"admin":"not_ready","blog":"not_ready"}}`)
	want("/readyz?app=admin", 503, `{"app":"admin","status":"not ready"}`)
	wantGauges("test_ready 0", `test_ready{app="admin"} 0`)
}

// TestOpsHandlerWithoutApps: an empty list of applications is a file
// without apps: /readyz as before, the query ignored.
func TestOpsHandlerWithoutApps(t *testing.T) {
	h := OpsHandler(metrics.NewSet(), func() bool { return true }, func() []AppStatus { return nil })
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/readyz?app=shop")
	h(&ctx)
	if ctx.Response.StatusCode() != 200 || string(ctx.Response.Body()) != `{"status":"ready"}` {
		t.Errorf("/readyz?app=shop without apps: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
}
