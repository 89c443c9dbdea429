//go:build linux

package park

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

const testPark = 100 * time.Millisecond

// server is a fasthttp server set up as internal/daemon sets up the
// proxy's, serving a parking Listener.
type server struct {
	srv    *fasthttp.Server
	pl     *Listener
	served chan error
	once   sync.Once
}

// serverConfig is what startServer needs.
type serverConfig struct {
	listen     string // "127.0.0.1:0" or "unix:/path"
	after      time.Duration
	idle       time.Duration // fasthttp's keep-alive idle timeout
	stream     bool          // StreamRequestBody, as the proxy sets it
	handler    fasthttp.RequestHandler
	parseError func(*fasthttp.RequestCtx, error)
	logger     fasthttp.Logger // nil: none
}

// startServer serves c's handler with parking after c.after until
// Shutdown, which runs at cleanup if the test did not call it.
func startServer(tb testing.TB, c serverConfig) *server {
	tb.Helper()
	network, addr := "tcp", c.listen
	if path, ok := strings.CutPrefix(c.listen, "unix:"); ok {
		network, addr = "unix", path
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		tb.Fatal(err)
	}
	if c.logger == nil {
		c.logger = log.New(io.Discard, "", 0)
	}
	srv := &fasthttp.Server{Handler: c.handler, ErrorHandler: c.parseError, ReadTimeout: 5 * time.Second,
		WriteTimeout: 5 * time.Second, IdleTimeout: c.idle, StreamRequestBody: c.stream, CloseOnShutdown: true, Logger: c.logger}
	pl, err := Wrap(ln, srv, c.after)
	if err != nil {
		ln.Close()
		tb.Fatal(err)
	}
	s := &server{srv: srv, pl: pl, served: make(chan error, 1)}
	go func() { s.served <- srv.Serve(pl) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// Addr returns the listener's address.
func (s *server) Addr() net.Addr { return s.pl.Addr() }

// Shutdown drains the server, closes the Listener (the parked connections
// with it) and returns Serve's error; calls after the first return nil.
func (s *server) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		err = s.srv.ShutdownWithContext(ctx)
		s.pl.Close()
		if serr := <-s.served; err == nil {
			err = serr
		}
	})
	return err
}

// parkServer serves h on listen ("127.0.0.1:0" or "unix:/path") with
// parking after testPark and fasthttp's idle timeout idle, streaming
// request bodies as the proxy does. It is shut down at cleanup.
func parkServer(t *testing.T, listen string, idle time.Duration, h fasthttp.RequestHandler) (*server, *Listener) {
	t.Helper()
	s := startServer(t, serverConfig{listen: listen, after: testPark, idle: idle, stream: true, handler: h})
	return s, s.pl
}

// echo answers "<method> <path> <body>" and counts its calls.
func echo(calls *atomic.Int64) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		calls.Add(1)
		if d, err := time.ParseDuration(string(ctx.QueryArgs().Peek("sleep"))); err == nil {
			time.Sleep(d)
		}
		body := ctx.PostBody()
		if r := ctx.RequestBodyStream(); r != nil {
			var err error
			if body, err = io.ReadAll(r); err != nil {
				ctx.SetStatusCode(500)
				return
			}
		}
		ctx.SetBodyString(fmt.Sprintf("%s %s %s", ctx.Method(), ctx.Path(), body))
	}
}

// client is one keep-alive connection, written and read by hand.
type client struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialClient(t *testing.T, network, addr string) *client {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *client) write(s string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatal(err)
	}
}

// read reads one answer and checks it is 200 with body want.
func (c *client) read(want string) {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatalf("reading the answer (want %q): %v", want, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(body) != want {
		c.t.Fatalf("answer %d %q (%v), want 200 %q", resp.StatusCode, body, err, want)
	}
}

func get(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n" }

// waitParked waits up to 3 s until n connections are parked.
func waitParked(t *testing.T, pl *Listener, n int64) {
	t.Helper()
	if !bintest.Within(3*time.Second, func() bool { return pl.Parked() == n }) {
		t.Fatalf("%d connections parked after 3 s, want %d", pl.Parked(), n)
	}
}

// openParked opens n connections to s, each served one GET, and waits
// until all are parked.
func openParked(t *testing.T, s *server, pl *Listener, n int) []*client {
	t.Helper()
	var cs []*client
	for i := range n {
		c := dialClient(t, "tcp", s.Addr().String())
		c.write(get("/" + strconv.Itoa(i)))
		c.read("GET /" + strconv.Itoa(i) + " ")
		cs = append(cs, c)
	}
	waitParked(t, pl, int64(n))
	return cs
}

// TestParkAndWake: an idle keep-alive connection is parked and its next
// requests are served on the same connection, over TCP and a Unix socket,
// as often as it goes idle; Parked follows.
func TestParkAndWake(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			listen := "127.0.0.1:0"
			if network == "unix" {
				listen = "unix:" + filepath.Join(t.TempDir(), "p.sock") // /tmp/TestParkAndWakeunix…/001: short enough for a socket path
			}
			var calls atomic.Int64
			s, pl := parkServer(t, listen, 10*time.Second, echo(&calls))
			c := dialClient(t, network, s.Addr().String())
			for i := range 3 {
				c.write(get("/r" + strconv.Itoa(i)))
				c.read("GET /r" + strconv.Itoa(i) + " ")
				waitParked(t, pl, 1)
			}
			c.write("POST /last HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
			c.read("POST /last hello")
			if pl.Parked() != 0 {
				t.Errorf("%d parked while its connection is served, want 0", pl.Parked())
			}
			if n := calls.Load(); n != 4 {
				t.Errorf("handler ran %d times, want 4", n)
			}
		})
	}
}

// TestParkNeverMidRequest: a connection that has begun a request is not
// parked, however long the request takes: headers or a body that arrive in
// pieces, a slow handler, pipelined requests.
func TestParkNeverMidRequest(t *testing.T) {
	var calls atomic.Int64
	s, pl := parkServer(t, "127.0.0.1:0", 10*time.Second, echo(&calls))
	pause := 4 * testPark // longer than the most a connection waits before parking

	t.Run("headers in two pieces", func(t *testing.T) {
		c := dialClient(t, "tcp", s.Addr().String())
		c.write(get("/warm"))
		c.read("GET /warm ")
		waitParked(t, pl, 1)
		c.write("GET /split HTTP/1.1\r\nHo")
		time.Sleep(pause)
		c.write("st: t\r\n\r\n")
		c.read("GET /split ")
	})
	waitParked(t, pl, 0)
	t.Run("body in two pieces", func(t *testing.T) {
		c := dialClient(t, "tcp", s.Addr().String())
		c.write("POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello")
		time.Sleep(pause)
		c.write("world")
		c.read("POST /body helloworld")
	})
	t.Run("slow handler", func(t *testing.T) {
		c := dialClient(t, "tcp", s.Addr().String())
		c.write(get("/slow?sleep=" + pause.String()))
		c.read("GET /slow ")
	})
	t.Run("pipelined", func(t *testing.T) {
		c := dialClient(t, "tcp", s.Addr().String())
		c.write(get("/p1?sleep="+pause.String()) + get("/p2") + "GET /p3 HTTP/1.1\r\nHost")
		c.read("GET /p1 ")
		c.read("GET /p2 ")
		time.Sleep(pause)
		c.write(": t\r\n\r\n")
		c.read("GET /p3 ")
	})
}

// TestParkedIdleTimeout: a parked connection is closed once it has been
// idle for the server's idle timeout, not before.
func TestParkedIdleTimeout(t *testing.T) {
	var calls atomic.Int64
	const idle = 800 * time.Millisecond
	s, pl := parkServer(t, "127.0.0.1:0", idle, echo(&calls))
	c := dialClient(t, "tcp", s.Addr().String())
	c.write(get("/"))
	c.read("GET / ")
	start := time.Now()
	waitParked(t, pl, 1)
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("read %q, %v; want EOF from the server's close", n, err)
	}
	// The sweeper closes within a tick (testPark/2) after the deadline;
	// a loaded machine may be late, never early.
	if d := time.Since(start); d < idle-testPark || d > idle+time.Second {
		t.Errorf("closed after %s idle, want about %s", d.Round(time.Millisecond), idle)
	}
	waitParked(t, pl, 0)
}

// TestParkedClientCloses: a parked connection the client closes leaves the
// epoll set, and nothing reaches the handler.
func TestParkedClientCloses(t *testing.T) {
	var calls atomic.Int64
	s, pl := parkServer(t, "127.0.0.1:0", 10*time.Second, echo(&calls))
	cs := openParked(t, s, pl, 5)
	for _, c := range cs {
		c.c.Close()
	}
	waitParked(t, pl, 0)
	if n := calls.Load(); n != 5 {
		t.Errorf("handler ran %d times, want 5", n)
	}
}

// TestParkShutdown: Shutdown closes the parked connections, and nothing of
// the parking listener outlives it.
func TestParkShutdown(t *testing.T) {
	// fasthttp's worker-pool cleaner sleeps out its period after Stop, and
	// its Date refresher, started by the first server of the process (this
	// test's when it runs first), lives as long as the process.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"))
	var calls atomic.Int64
	s := startServer(t, serverConfig{listen: "127.0.0.1:0", after: testPark, idle: 10 * time.Second, handler: echo(&calls)})
	pl := s.pl
	cs := openParked(t, s, pl, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		c.c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.br.ReadByte(); err != io.EOF {
			t.Errorf("connection %d after Shutdown: %v, want EOF", i, err)
		}
		c.c.Close()
	}
}

// TestParkRaces: many connections whose requests come at random moments
// around the parking time, some in pieces, all answered right on their
// own connection. Run with -race it checks the hand-offs between the
// serving goroutines, the sweeper and the poller.
func TestParkRaces(t *testing.T) {
	var calls atomic.Int64
	s, pl := parkServer(t, "127.0.0.1:0", 10*time.Second, echo(&calls))
	pauses := []time.Duration{0, testPark / 2, testPark, 3 * testPark / 2, 2 * testPark}
	const conns, requests = 40, 12
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			c := dialClient(t, "tcp", s.Addr().String())
			for j := range requests {
				path := fmt.Sprintf("/c%d/r%d", i, j)
				req := get(path)
				if rng.IntN(3) == 0 { // in two pieces, around a parking moment
					cut := 1 + rng.IntN(len(req)-1)
					c.write(req[:cut])
					time.Sleep(pauses[rng.IntN(len(pauses))])
					c.write(req[cut:])
				} else {
					c.write(req)
				}
				c.read("GET " + path + " ")
				time.Sleep(pauses[rng.IntN(len(pauses))])
			}
		}()
	}
	wg.Wait()
	if n := calls.Load(); n != conns*requests {
		t.Errorf("handler ran %d times, want %d", n, conns*requests)
	}
	if pl.total.Load() == 0 {
		t.Error("no connection was ever parked: the test did not exercise parking")
	}
}

// BenchmarkWake compares a request on a keep-alive connection that was
// parked (hot: it was not) with one on a connection fasthttp still
// serves: the difference is what waking costs, a goroutine and a request
// context as for a new connection plus two epoll calls.
func BenchmarkWake(b *testing.B) {
	for _, parked := range []bool{false, true} {
		b.Run(map[bool]string{false: "hot", true: "parked"}[parked], func(b *testing.B) {
			var calls atomic.Int64
			// The benchmark parks by hand.
			s := startServer(b, serverConfig{listen: "127.0.0.1:0", after: time.Hour, idle: time.Minute, handler: echo(&calls)})
			pl := s.pl
			nc, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			c := &client{t: b, c: nc, br: bufio.NewReader(nc)}
			req := get("/")
			c.write(req)
			c.read("GET / ")
			// ns/op includes the parking; ns/request is the request alone.
			var took time.Duration
			for b.Loop() {
				if parked {
					for pl.Parked() == 0 {
						pl.mu.Lock()
						for pc := range pl.conns {
							if w := pc.word.Load(); w&stateMask == connIdle {
								pc.requestPark(w)
							}
						}
						pl.mu.Unlock()
						time.Sleep(50 * time.Microsecond)
					}
				}
				start := time.Now()
				c.write(req)
				c.read("GET / ")
				took += time.Since(start)
			}
			b.ReportMetric(float64(took.Nanoseconds())/float64(b.N), "ns/request")
		})
	}
}

// TestParkedClientResets: a client that resets a parked connection (a
// browser killed, say) ends it as quietly as one that closes it: no error
// answer, no log line, as for a keep-alive connection fasthttp still
// serves.
func TestParkedClientResets(t *testing.T) {
	var calls, parseErrors atomic.Int64
	var logs bintest.Buffer
	s := startServer(t, serverConfig{listen: "127.0.0.1:0", after: testPark, idle: 10 * time.Second, handler: echo(&calls),
		parseError: func(*fasthttp.RequestCtx, error) { parseErrors.Add(1) }, logger: log.New(&logs, "", 0)})
	pl := s.pl
	for i := range 3 {
		c := dialClient(t, "tcp", s.Addr().String())
		c.write(get("/"))
		c.read("GET / ")
		waitParked(t, pl, 1)
		c.c.(*net.TCPConn).SetLinger(0) // Close sends RST
		c.c.Close()
		waitParked(t, pl, 0)
		if i == 0 {
			time.Sleep(50 * time.Millisecond) // fasthttp serves the woken connection
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := parseErrors.Load(); n != 0 {
		t.Errorf("the error handler ran %d times for reset parked connections, want 0", n)
	}
	if l := logs.String(); l != "" {
		t.Errorf("logged for reset parked connections:\n%s", l)
	}
}
