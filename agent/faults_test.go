package agent

import (
	"fmt"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"

	"github.com/tokenhandler/tokenhandler/agent/astest"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/spatest"
)

// leakOptions ignore fasthttp's own long-lived goroutines: the Date header
// clock runs once per process and never stops, and a stopped server's
// worker-pool cleaner notices the stop only after its sleep of up to 10 s
// (fasthttp workerpool.go).
var leakOptions = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
}

// checkNoLeaks fails t if goroutines other than those running when ignore
// was taken are still there after a few seconds (servers wind down
// asynchronously).
func checkNoLeaks(t *testing.T, ignore goleak.Option) {
	t.Helper()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections() // the test browsers'
	opts := append([]goleak.Option{ignore}, leakOptions...)
	var err error
	if !bintest.Within(5*time.Second, func() bool { err = goleak.Find(opts...); return err == nil }) {
		t.Error(err)
	}
}

// TestASFaults: whatever the Authorization Server does wrong, each endpoint
// that calls it answers with the status and code of contract §5, keeps the
// session where it should, and leaves no goroutine behind once the agent and
// the AS have stopped.
func TestASFaults(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	type step struct {
		endpoint string // "login", "refresh" or "userInfo"
		status   int
		code     string
	}
	tests := []struct {
		name  string
		fault func(a *testAgent)
		steps []step
	}{
		{"token endpoint 503", func(a *testAgent) { a.as.Set(func(f *astest.Faults) { f.TokenStatus = 503 }) },
			[]step{{"login", 502, "authorization_server_error"}, {"refresh", 502, "authorization_server_error"}}},
		{"token endpoint 500", func(a *testAgent) { a.as.Set(func(f *astest.Faults) { f.TokenStatus = 500 }) },
			[]step{{"login", 502, "authorization_server_error"}, {"refresh", 502, "authorization_server_error"}}},
		{"token endpoint answers garbage", func(a *testAgent) { a.as.Set(func(f *astest.Faults) { f.TokenGarbage = true }) },
			[]step{{"login", 502, "authorization_server_error"}, {"refresh", 502, "authorization_server_error"}}},
		{"token endpoint slower than timeouts.as", func(a *testAgent) { a.as.Set(func(f *astest.Faults) { f.TokenDelay = 5 * time.Second }) },
			[]step{{"login", 502, "authorization_server_error"}, {"refresh", 502, "authorization_server_error"}}},
		{"token endpoint refuses the grant", func(a *testAgent) { a.as.Set(func(f *astest.Faults) { f.TokenError = "invalid_grant" }) },
			[]step{{"login", 400, "authorization_error"}, {"refresh", 401, "session_expired"}}},
		{"userinfo 500", func(a *testAgent) { a.as.Set(func(f *astest.Faults) { f.UserinfoStatus = 500 }) },
			[]step{{"userInfo", 502, "authorization_server_error"}}},
		{"userinfo 401", func(a *testAgent) { a.as.Set(func(f *astest.Faults) { f.UserinfoStatus = 401 }) },
			[]step{{"userInfo", 401, "token_expired"}}},
		{"AS down", func(a *testAgent) { a.as.Close() },
			[]step{{"login", 502, "authorization_server_error"}, {"refresh", 502, "authorization_server_error"}, {"userInfo", 502, "authorization_server_error"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := startAgent(t, func(c *Config) { c.Timeouts.AS = time.Second })
			b := a.spa()
			a.login(b) // a session to refresh and read user info with
			// A login begun before the fault, to be finished during it.
			pending := a.spa()
			start := a.call(pending, "POST", "/oauth-agent/login/start", nil)
			redirect, err := a.as.Authorize(start.JSON()["authorizationRequestUrl"].(string))
			if err != nil {
				t.Fatal(err)
			}
			tc.fault(a)
			for _, s := range tc.steps {
				var r spatest.Answer
				switch s.endpoint {
				case "login":
					r = a.call(pending, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()})
				case "refresh":
					r = a.call(b.Clone(), "POST", "/oauth-agent/refresh", nil)
				case "userInfo":
					r = a.call(b, "GET", "/oauth-agent/userInfo", nil)
				}
				if r.Status != s.status || r.Code() != s.code {
					t.Errorf("%s: %d %s, want %d %s", s.endpoint, r.Status, r.Body, s.status, s.code)
				}
				// Only session_expired ends the session.
				if cleared := len(r.SetCookies) > 0; cleared != (s.code == "session_expired") {
					t.Errorf("%s: %d cookies set or cleared", s.endpoint, len(r.SetCookies))
				}
				checkNoStore(t, r)
			}
		})
	}
	checkNoLeaks(t, ignore)
}

// TestGarbageDiscovery: an AS whose discovery document is not JSON leaves
// the agent not ready, answering 502, retrying; no goroutine stays after it
// has stopped.
func TestGarbageDiscovery(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		calls := make(chan struct{}, 100)
		garbage := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls <- struct{}{}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"issuer": "http://`+ln.Addr().String()+`", "authorization_endpoint": [`)
		})}
		go garbage.Serve(ln)
		defer garbage.Close()
		as := astest.New(t, astest.Options{}) // for the client's settings only
		as.Close()
		cfg := testConfig(as)
		cfg.Issuer = "http://" + ln.Addr().String()
		ta := startUnready(t, cfg)
		defer ta.close()
		for range 2 { // the first attempt and a retry
			select {
			case <-calls:
			case <-time.After(5 * time.Second):
				t.Fatal("no discovery attempt")
			}
		}
		if ta.agent.Ready() {
			t.Fatal("ready with a garbage discovery document")
		}
		b := ta.spa()
		if r := ta.call(b, "POST", "/oauth-agent/login/start", nil); r.Status != 502 || r.Code() != "authorization_server_error" {
			t.Fatalf("login/start: %d %s", r.Status, r.Body)
		}
	}()
	checkNoLeaks(t, ignore)
}

// TestSigningKeyRotation: when the AS rotates its signing key, the agent
// fetches the JWKS again and accepts ID tokens with the new kid, at login
// and on refresh. A flood of ID tokens with kids in no JWKS makes it fetch
// at most once per jwksRefetchInterval.
func TestSigningKeyRotation(t *testing.T) {
	a := startAgent(t, nil)
	b := a.spa()
	a.login(b)
	if n := a.as.Count("jwks"); n != 1 {
		t.Fatalf("%d JWKS fetches after the first login, want 1", n)
	}
	if _, err := a.as.RotateKey(); err != nil {
		t.Fatal(err)
	}
	if r := a.call(b, "POST", "/oauth-agent/refresh", nil); r.Status != 204 {
		t.Fatalf("refresh with an ID token under the new key: %d %s", r.Status, r.Body)
	}
	a.login(a.spa())
	if n := a.as.Count("jwks"); n != 2 {
		t.Fatalf("%d JWKS fetches after the rotation, want 2", n)
	}

	a.as.Set(func(f *astest.Faults) { f.IDTokenUnknownKid = true })
	for range 20 {
		b := a.spa()
		start := a.call(b, "POST", "/oauth-agent/login/start", nil)
		redirect, err := a.as.Authorize(start.JSON()["authorizationRequestUrl"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if r := a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()}); r.Status != 400 || r.Code() != "invalid_request" {
			t.Fatalf("login/end with an unknown kid: %d %s", r.Status, r.Body)
		}
	}
	// One fetch was allowed: a token had verified since the last.
	if n := a.as.Count("jwks"); n != 3 {
		t.Fatalf("%d JWKS fetches after 20 unknown kids, want 3", n)
	}
	a.clock.advance(jwksRefetchInterval)
	b = a.spa()
	start := a.call(b, "POST", "/oauth-agent/login/start", nil)
	redirect, _ := a.as.Authorize(start.JSON()["authorizationRequestUrl"].(string))
	a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()})
	if n := a.as.Count("jwks"); n != 4 {
		t.Fatalf("%d JWKS fetches once the interval had passed, want 4", n)
	}

	// The keys in hand still serve: no fetch for a known kid.
	a.as.Set(func(f *astest.Faults) { f.IDTokenUnknownKid = false })
	a.login(a.spa())
	if n := a.as.Count("jwks"); n != 4 {
		t.Fatalf("%d JWKS fetches, want still 4", n)
	}
}

// TestFailuresKeepMemoryFlat: 20,000 failing requests (401s, 404s, and 502s
// from an AS that is down) leave the heap and the goroutine count where they
// were.
func TestFailuresKeepMemoryFlat(t *testing.T) {
	// Error level: warnings for 20,000 502s would fill the log buffer.
	a := startAgent(t, func(c *Config) { c.Timeouts.AS = time.Second; c.Log.Level = zerolog.ErrorLevel })
	b := a.spa()
	a.login(b)
	a.as.Close()
	noOrigin := spatest.New(t, "")
	stranger := a.spa()
	calls := []func() spatest.Answer{
		func() spatest.Answer { return a.call(b, "GET", "/oauth-agent/userInfo", nil) },         // 502
		func() spatest.Answer { return a.call(b.Clone(), "POST", "/oauth-agent/refresh", nil) }, // 502
		func() spatest.Answer { return a.call(stranger, "POST", "/oauth-agent/logout", nil) },   // 401
		func() spatest.Answer { return a.call(noOrigin, "POST", "/oauth-agent/login/start", nil) },
		func() spatest.Answer { return a.call(stranger, "GET", "/oauth-agent/nowhere", nil) },
		func() spatest.Answer { return a.call(stranger, "POST", "/oauth-agent/login/end", "{not json") },
	}
	run := func(n int) {
		for i := range n {
			if r := calls[i%len(calls)](); r.Status < 400 {
				t.Fatalf("call %d: %d %s", i%len(calls), r.Status, r.Body)
			}
		}
	}
	run(2000)
	goroutines := runtime.NumGoroutine()
	// At most 32 bytes per request (640 KiB over the run), six times the
	// ±5 bytes runs measure: a request that leaves a map entry or a small
	// struct behind (48 bytes and more with what holds it) fails it.
	bintest.HeapPerRequest(t, 20_000, 32, run)
	if !bintest.Within(5*time.Second, func() bool { return runtime.NumGoroutine() <= goroutines+5 }) {
		t.Errorf("%d goroutines, %d before", runtime.NumGoroutine(), goroutines)
	}
}

// unreadyAgent is an agent serving on loopback that may not have its AS
// metadata; close stops it.
type unreadyAgent struct {
	*testAgent
	close func()
}

// startUnready starts an agent without waiting for it to become ready.
func startUnready(t *testing.T, cfg *Config) *unreadyAgent {
	t.Helper()
	a, err := New(cfg, metrics.NewSet(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: a.Handler}
	go srv.Serve(ln)
	return &unreadyAgent{
		testAgent: &testAgent{t: t, agent: a, cfg: cfg, url: "http://" + ln.Addr().String()},
		close:     func() { srv.Shutdown(); a.Close() },
	}
}

// TestCloseReleasesConnections: an agent that has stopped leaves no
// goroutine and no connection behind, even while its AS runs on.
func TestCloseReleasesConnections(t *testing.T) {
	as := astest.New(t, astest.Options{})
	ignore := goleak.IgnoreCurrent() // the AS's own
	ta := startUnready(t, testConfig(as))
	bintest.Eventually(t, 5*time.Second, "the agent to become ready", ta.agent.Ready)
	ta.as = as
	b := ta.spa()
	ta.login(b)
	if r := ta.call(b, "GET", "/oauth-agent/userInfo", nil); r.Status != 200 {
		t.Fatalf("userInfo: %d %s", r.Status, r.Body)
	}
	ta.close()
	checkNoLeaks(t, ignore)
}
