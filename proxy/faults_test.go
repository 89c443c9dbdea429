package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// leakOptions ignore fasthttp's own long-lived goroutines: the Date header
// clock and the TCP dialer's DNS cache cleaner run once per process and never
// stop, and a stopped server's worker-pool cleaner notices the stop only
// after its sleep of up to 10 s (fasthttp workerpool.go).
var leakOptions = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
}

// checkNoLeaks fails t if goroutines other than those running when ignore
// was taken are still there after a few seconds (servers wind down
// asynchronously: idle pools, closing connections).
func checkNoLeaks(t *testing.T, ignore goleak.Option, more ...goleak.Option) {
	t.Helper()
	client.CloseIdleConnections()
	opts := append(append([]goleak.Option{ignore}, leakOptions...), more...)
	var err error
	if !bintest.Within(5*time.Second, func() bool { err = goleak.Find(opts...); return err == nil }) {
		t.Error(err)
	}
}

// faultyAPI is an upstream on loopback that misbehaves on purpose: it reads
// each request's header and then does what fault says with the connection.
type faultyAPI struct {
	ln       net.Listener
	requests atomic.Int32 // request headers read
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
}

func newFaultyAPI(t *testing.T, fault func(c net.Conn)) *faultyAPI {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &faultyAPI{ln: ln, conns: map[net.Conn]bool{}}
	a.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.mu.Lock()
			a.conns[c] = true
			a.mu.Unlock()
			a.wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				a.requests.Add(1)
				fault(c)
			})
		}
	})
	t.Cleanup(a.close)
	return a
}

// close stops the API and ends every connection it still holds.
func (a *faultyAPI) close() {
	a.ln.Close()
	a.mu.Lock()
	for c := range a.conns {
		c.Close()
	}
	a.mu.Unlock()
	a.wg.Wait()
}

// TestUpstreamFaultInjection: every way an API can fail gives the status and
// JSON of docs/proxy.md, the proxy stays usable, and once the proxy and the
// API are shut down no goroutine of theirs is left.
func TestUpstreamFaultInjection(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	const unavailable = `{"code":"upstream_unavailable","message":"The API could not be reached"}`
	const timeout = `{"code":"upstream_timeout","message":"The API did not answer in time"}`
	hang := func(c net.Conn) { io.Copy(io.Discard, c) } // until the proxy gives up
	tests := []struct {
		name   string
		fault  func(c net.Conn) // nil: nothing listens
		status int
		body   string
		tries  int32 // how often one request may reach the API
	}{
		// fasthttp tries an idempotent request up to 5 times while no
		// answer comes at all, as on a pooled connection the API closed.
		{"refuses", nil, 502, unavailable, 0},
		{"resets", func(c net.Conn) { c.(*net.TCPConn).SetLinger(0) }, 502, unavailable, 5},
		{"closes without an answer", func(c net.Conn) {}, 502, unavailable, 5},
		{"answers garbage", func(c net.Conn) { io.WriteString(c, "SMTP ready\r\n\r\n") }, 502, unavailable, 1},
		{"hangs before answering", hang, 504, timeout, 1},
		{"hangs inside the header", func(c net.Conn) { io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Partial: "); hang(c) }, 504, timeout, 1},
		{"answers a header larger than the read buffer", func(c net.Conn) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nX-Big: %s\r\nContent-Length: 2\r\n\r\nok", strings.Repeat("b", 64<<10))
		}, 502, unavailable, 1},
		{"answers many header lines over the read buffer", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\n"+strings.Repeat("X-Line: "+strings.Repeat("l", 60)+"\r\n", 400)+"Content-Length: 2\r\n\r\nok")
		}, 502, unavailable, 1},
		{"answers an invalid Content-Length", func(c net.Conn) { io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nok") }, 502, unavailable, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var addr string
			var api *faultyAPI
			if tc.fault == nil {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr = ln.Addr().String()
				ln.Close()
			} else {
				api = newFaultyAPI(t, tc.fault)
				addr = api.ln.Addr().String()
			}
			h := startProxyTo(t, nil, addr, "timeouts: {upstream: 300ms, idle: 1s}")
			for range 3 {
				start := time.Now()
				resp := h.do(request{method: "GET", path: "/api/x", headers: [][2]string{trusted(), cookie(at(h))}})
				if resp.status != tc.status || resp.body != tc.body || resp.header.Get("Access-Control-Allow-Origin") != trustedOrigin {
					t.Fatalf("status %d body %q, want %d %q with CORS headers", resp.status, resp.body, tc.status, tc.body)
				}
				if d := time.Since(start); d > 3*time.Second {
					t.Errorf("the answer took %v", d)
				}
			}
			// A failing API is not hammered: no retry where one cannot
			// help.
			if api != nil {
				if n := api.requests.Load(); n > 3*tc.tries {
					t.Errorf("3 requests reached the API %d times, want at most %d", n, 3*tc.tries)
				}
			}
		})
	}
	checkNoLeaks(t, ignore)
}

// TestFailuresKeepMemoryFlat: 20,000 failing requests (401, 404, 431, and
// 502 from an API that refuses) leave the heap and the goroutine count
// where they were.
func TestFailuresKeepMemoryFlat(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	h := startProxyTo(t, nil, down, "timeouts: {upstream: 300ms}\nlog: {level: error}")
	valid := at(h)
	big := strings.Repeat("x", 17<<10)
	reqs := []request{
		{method: "GET", path: "/api/x", headers: [][2]string{trusted()}},
		{method: "GET", path: "/api/x", headers: [][2]string{trusted(), cookie("example-at=" + valid[20:])}},
		{method: "POST", path: "/api/x", headers: [][2]string{trusted(), cookie(valid)}},
		{method: "GET", path: "/nowhere", headers: [][2]string{trusted(), cookie(valid)}},
		{method: "GET", path: "/api/x", headers: [][2]string{trusted(), cookie(valid)}},
		{method: "GET", path: "/api/x", headers: [][2]string{trusted(), header("X-Big", big)}},
	}
	run := func(n int) {
		for i := range n {
			r := reqs[i%len(reqs)]
			if resp := h.do(r); resp.status < 400 {
				t.Fatalf("%s %s: %d", r.method, r.path, resp.status)
			}
		}
	}
	run(2000) // warm the pools up
	goroutines := runtime.NumGoroutine()
	// At most 32 bytes per request (640 KiB over the run), six times the
	// ±5 bytes runs measure: a request that leaves a map entry or a small
	// struct behind (48 bytes and more with what holds it) fails it.
	bintest.HeapPerRequest(t, 20_000, 32, run)
	client.CloseIdleConnections()
	if !bintest.Within(5*time.Second, func() bool { return runtime.NumGoroutine() <= goroutines+5 }) {
		t.Errorf("%d goroutines, %d before", runtime.NumGoroutine(), goroutines)
	}
}

// TestShutdownReleasesUpstreamConnections: a proxy that has shut down keeps
// no connection to its API open, even while the API runs on.
func TestShutdownReleasesUpstreamConnections(t *testing.T) {
	up := newUpstream(t)
	ignore := goleak.IgnoreCurrent() // the API's own
	h := startProxyTo(t, up, up.addr, "")
	for range 5 {
		if resp := h.do(request{method: "GET", path: "/api/x", headers: [][2]string{trusted(), cookie(at(h))}}); resp.status != 200 {
			t.Fatalf("status %d", resp.status)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// fasthttp's pool cleaner sleeps for timeouts.idle before it notices
	// that its pool is empty; it holds no connection.
	checkNoLeaks(t, ignore, goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"))
}

// TestStaleConnectionRetried: an idempotent request whose pooled
// connection the API has closed in the meantime is sent again on a new one,
// so the browser never sees that race.
func TestStaleConnectionRetried(t *testing.T) {
	// The API closes every connection after one answer without saying so.
	up := newRawUpstream(t, func(method, path string) (string, bool) {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true
	})
	h := startProxyTo(t, nil, up.ln.Addr().String(), "")
	for i := range 5 {
		if resp := h.do(request{method: "GET", path: "/api/x", headers: [][2]string{trusted(), cookie(at(h))}}); resp.status != 200 || resp.body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.status, resp.body)
		}
	}
}
