package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/harness"
	"github.com/tokenhandler/tokenhandler/proxy"
)

// TestStartProxy: the proxy of a load test starts from proxyConfig's file
// without a deprecation warning (startProxy refuses one) and is ready.
func TestStartProxy(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// A Binary builds the package in the working directory.
	t.Chdir(filepath.Join(wd, "../../cmd/oauth-proxy"))
	bin := &bintest.Binary{Name: "oauth-proxy", Unset: []string{"TH_ENCRYPTION_KEYS"}}
	path := bin.Path(t)
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(path)) })
	t.Chdir(wd)

	s := &stack{Stack: &harness.Stack{Dir: t.TempDir()}, oldKey: string(crypto.GenerateKey().AppendHex(nil))}
	defer s.Stop(io.Discard, false)
	api := bintest.FreeTCPAddr(t)
	p, err := s.startProxy(context.Background(), filepath.Dir(path), "proxy-a", api)
	if err != nil {
		t.Fatal(err)
	}
	if p.addr == "" {
		t.Error("no address")
	}
	// The soak reads the proxy's memory from its own metrics page.
	if r, peak := rss(p), memory(p, "process_resident_memory_peak_bytes"); r <= 0 || peak < r {
		t.Errorf("RSS %d, peak %d bytes: want a positive RSS and a peak no lower", r, peak)
	}
}

// TestProxyConfig: the proxies' configuration is one the proxy accepts,
// with the keys in order (the sealing key first), as the soak's rotation
// rewrites it with [new, old].
func TestProxyConfig(t *testing.T) {
	old, fresh := string(crypto.GenerateKey().AppendHex(nil)), string(crypto.GenerateKey().AppendHex(nil))
	for _, keys := range [][]string{{old}, {fresh, old}} {
		cfg, err := proxy.ParseConfig(proxyConfig("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", keys...), func(string) string { return "" })
		if err != nil {
			t.Fatalf("%d keys: %v", len(keys), err)
		}
		if cfg.Keys.Len() != len(keys) || cfg.Listen != "127.0.0.1:1" || cfg.MetricsListen != "127.0.0.1:2" {
			t.Errorf("%d keys: parsed %d keys, listen %s, metrics %s", len(keys), cfg.Keys.Len(), cfg.Listen, cfg.MetricsListen)
		}
		// What the first key seals, a ring of the first key alone opens.
		first, _ := crypto.ParseKeyring(keys[0])
		sealed, err := cfg.Keys.SealAD(nil, []byte("x"), crypto.FormatV2, []byte("ad"))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := first.OpenAD(nil, sealed, []byte("ad")); err != nil {
			t.Errorf("%d keys: the ring does not seal with the first key", len(keys))
		}
	}
}

// TestUpstream: the API routes /api/idp/ to the API trusting the
// development IdP, anything else to the one trusting the load-test issuer,
// and serves /api/slow/x as /api/x after the pause, counting the slow
// requests in flight and completed per listener.
func TestUpstream(t *testing.T) {
	u := &upstream{
		minted: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("minted " + string(ctx.Path())) },
		idp:    func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("idp " + string(ctx.Path())) },
		slow:   200 * time.Millisecond,
	}
	h := u.handler()
	u.handler() // a second listener's, which counts apart
	serve := func(h fasthttp.RequestHandler, path string) string {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(path)
		h(&ctx)
		return string(ctx.Response.Body())
	}
	for path, want := range map[string]string{"/api/echo": "minted /api/echo", "/api/idp/echo": "idp /api/idp/echo"} {
		if got := serve(h, path); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
	done := make(chan string)
	go func() { done <- serve(h, "/api/slow/echo") }()
	bintest.Eventually(t, 5*time.Second, "a slow request in flight", func() bool { n, _ := u.counts[0].snapshot(); return n == 1 })
	if got := <-done; got != "minted /api/echo" {
		t.Errorf("/api/slow/echo: %q, want the API's /api/echo", got)
	}
	if inFlight, completed := u.counts[0].snapshot(); inFlight != 0 || completed != 1 {
		t.Errorf("after the slow request: %d in flight, %d completed; want 0 and 1", inFlight, completed)
	}
	if inFlight, completed := u.counts[1].snapshot(); inFlight != 0 || completed != 0 {
		t.Errorf("the other listener counted %d in flight, %d completed", inFlight, completed)
	}
}
