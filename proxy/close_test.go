package proxy

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/proxy/proxytest"
)

// TestClose: Close stops what the Proxy owns, the revocation follower and
// the upstream pools, those of routes a reload replaced included (whose
// own close would come only after timeouts.upstream, here a minute), so
// that no goroutine and no connection to an API is left; a second Close
// does nothing.
func TestClose(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	var open atomic.Int64 // the API's open connections
	up := newUpstream(t)  // its handler, served on a listener that counts connections
	api := &http.Server{Handler: up, ReadHeaderTimeout: 5 * time.Second, ConnState: func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { api.Serve(ln); close(served) }()

	f := startFeed(t, newLog(t), "127.0.0.1:0")
	// timeouts.idle 3s: the pools close an idle connection themselves
	// after that, so the check below must see them closed sooner; and
	// fasthttp's pool cleaner sleeps that long before it notices its pool
	// is empty and ends.
	h := startProxyTo(t, up, ln.Addr().String(), "\nrevocation: {feed: 'http://"+f.addr+"'}\ntimeouts: {upstream: 1m, idle: 3s}")
	env := proxytest.NewSession(time.Now())
	if r := h.apiCall(&env); r.status != 200 {
		t.Fatalf("GET through the proxy: %d %s", r.status, r.body)
	}
	cfg := *h.cfg
	// /api/ changed (a route kept as it was keeps its pool), /api/v2/ gone.
	cfg.Routes = []Route{cfg.Routes[0]}
	cfg.Routes[0].StripPrefix = true
	if err := h.srv.Reload(&cfg); err != nil { // retires the first pools for a minute
		t.Fatal(err)
	}
	if r := h.apiCall(&env); r.status != 200 {
		t.Fatalf("GET through the proxy after the reload: %d %s", r.status, r.body)
	}
	if !h.srv.Proxy.rev.following() || open.Load() < 2 {
		t.Fatalf("before Close: following %v, %d connections to the API; want true and 2 (one per pool)", h.srv.Proxy.rev.following(), open.Load())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil { // Proxy.Close
		t.Fatal(err)
	}
	if err := h.srv.Proxy.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	if h.srv.Proxy.rev.following() {
		t.Error("the revocation follower runs after Close")
	}
	if !bintest.Within(time.Second, func() bool { return open.Load() == 0 }) {
		t.Errorf("%d connections to the API open 1s after Close, want 0", open.Load())
	}
	f.stop()
	up.srv.Close()
	api.Close()
	<-served
	checkNoLeaks(t, ignore)
}
