package proxy

import (
	"io"
	"net/http"
	"net/http/httptrace"
	"runtime"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/metricstest"
)

// TestIdleConnectionsParked: the proxy parks a browser's idle keep-alive
// connection after timeouts.park, says so in its metrics, and serves the
// next request on that same connection with the token forwarded.
func TestIdleConnectionsParked(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("parking needs Linux (epoll)")
	}
	h := startProxy(t, "metrics_listen: 127.0.0.1:0\ntimeouts: {upstream: 2s, park: 100ms}")
	parked := func() string {
		resp, err := http.Get("http://" + h.srv.MetricsAddr().String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		v, ok := metricstest.Sample(string(b), "oauth_proxy_parked_connections")
		if !ok {
			t.Fatalf("no oauth_proxy_parked_connections in /metrics:\n%s", b)
		}
		return v
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	get := func() (reused bool) {
		t.Helper()
		req, _ := http.NewRequest("GET", h.url+"/api/orders", nil)
		req.Header.Set("Origin", trustedOrigin)
		req.Header.Set("Cookie", at(h))
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
		}))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got, _ := h.up.Received()
		if resp.StatusCode != 200 || got == nil || got.Header.Get("Authorization") != "Bearer "+token {
			t.Fatalf("GET: %d %q, the API got %v", resp.StatusCode, body, got)
		}
		return reused
	}

	get()
	if !bintest.Within(3*time.Second, func() bool { return parked() == "1" }) {
		t.Fatalf("oauth_proxy_parked_connections %s after 3 s idle, want 1", parked())
	}
	if !get() {
		t.Error("the request after parking went over a new connection, want the parked one")
	}
	if p := parked(); p != "0" {
		t.Errorf("oauth_proxy_parked_connections %s while its connection is served, want 0", p)
	}
}
