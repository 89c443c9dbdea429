package proxy

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/metricstest"
	"github.com/tokenhandler/tokenhandler/internal/redistest"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/proxy/proxytest"
	"github.com/tokenhandler/tokenhandler/revocation"
	"github.com/tokenhandler/tokenhandler/revocation/embedded"
	"github.com/tokenhandler/tokenhandler/revocation/redis"
	"github.com/tokenhandler/tokenhandler/session"
)

// feed is an agent's revocation feed: an embedded.Log served over a real
// socket.
type feed struct {
	log  *embedded.Log
	addr string
	srv  *fasthttp.Server
	done chan struct{}
}

// startFeed serves log on addr (127.0.0.1:0 for a new port).
func startFeed(t *testing.T, log *embedded.Log, addr string) *feed {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	f := &feed{log: log, addr: ln.Addr().String(), done: make(chan struct{})}
	f.srv = &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == embedded.Path {
			log.Handler()(ctx)
			return
		}
		ctx.SetStatusCode(404)
	}}
	go func() { f.srv.Serve(ln); close(f.done) }()
	t.Cleanup(f.stop)
	return f
}

func (f *feed) stop() {
	f.srv.Shutdown()
	<-f.done
}

func newLog(t *testing.T) *embedded.Log {
	t.Helper()
	l, err := embedded.Open("", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// apiCall is a GET through the proxy with the access-token cookie of env.
func (h *harness) apiCall(env *session.Envelope) response {
	h.t.Helper()
	return h.do(request{method: "GET", path: "/api/things", headers: [][2]string{
		{"Origin", trustedOrigin},
		{"Cookie", "example-at=" + h.sealIn(env, session.AccessToken, 0, "token-abc")},
	}})
}

func (h *harness) gauge(name string) float64 {
	h.t.Helper()
	var b strings.Builder
	h.srv.Proxy.metrics.set.WritePrometheus(&b)
	f, ok := metricstest.Value(b.String(), name)
	if !ok {
		h.t.Fatalf("no %s in the metrics, or not a number", name)
	}
	return f
}

// TestRevokedSession: a session the agent revokes gets 401
// (session_revoked) within 1 s at a proxy that follows the agent's feed;
// other sessions, of the same user included, keep working. With the feed
// down the proxy keeps serving with the list it has (fail open) and the
// stale gauge rises.
func TestRevokedSession(t *testing.T) {
	log := newLog(t)
	f := startFeed(t, log, "127.0.0.1:0")
	h := startProxy(t, "\nrevocation: {feed: 'http://"+f.addr+"'}\nlog: {level: info}")
	sameUser := proxytest.NewSession(time.Now())
	sameUser.SID = session.HashSID("https://login.example", "another-op-session")
	other := proxytest.NewSession(time.Now())
	other.SID, other.Sub = session.HashSID("https://login.example", "bob-session"), session.HashSub("https://login.example", "bob")
	for _, env := range []*session.Envelope{&h.Env, &sameUser, &other} {
		if r := h.apiCall(env); r.status != 200 {
			t.Fatalf("before any revocation: %d %s", r.status, r.body)
		}
	}

	revoked := time.Now()
	if _, err := log.Revoke(context.Background(), revocation.Entry{Kind: revocation.BySID, Digest: h.Env.SID}); err != nil {
		t.Fatal(err)
	}
	if !bintest.Within(time.Second, func() bool { return h.apiCall(&h.Env).status == 401 }) {
		t.Fatalf("the revoked session still passes %v after the Revoke", time.Since(revoked))
	}
	t.Logf("refused %v after the Revoke", time.Since(revoked))
	if r := h.apiCall(&h.Env); r.status != 401 || r.body != string(browser.AnswerUnauthorized.Body) {
		t.Errorf("revoked: %d %s, want the 401 body", r.status, r.body)
	}
	if n := h.denials(denySessionRevoked); n == 0 {
		t.Error("oauth_proxy_denied_total{reason=session_revoked} did not count")
	}
	if !strings.Contains(h.logs.String(), `"reason":"session_revoked"`) {
		t.Errorf("no denial logged with reason session_revoked:\n%s", h.logs)
	}
	for name, env := range map[string]*session.Envelope{"another session of the same user": &sameUser, "another user": &other} {
		if r := h.apiCall(env); r.status != 200 {
			t.Errorf("%s: %d %s, want 200", name, r.status, r.body)
		}
	}
	if g := h.gauge("oauth_proxy_revocation_entries"); g != 1 {
		t.Errorf("oauth_proxy_revocation_entries %v, want 1", g)
	}
	if g := h.gauge("oauth_proxy_revocation_stale_seconds"); g > 6 {
		t.Errorf("oauth_proxy_revocation_stale_seconds %v with the feed up", g)
	}

	// "log this user out everywhere": every session of the subject that
	// started by then.
	if _, err := log.Revoke(context.Background(), revocation.Entry{Kind: revocation.BySub, Digest: sameUser.Sub}); err != nil {
		t.Fatal(err)
	}
	if !bintest.Within(time.Second, func() bool { return h.apiCall(&sameUser).status == 401 }) {
		t.Error("a session of a subject revoked everywhere still passes after 1s")
	}

	// Fail open: the feed goes away, the proxy keeps its list and serves.
	f.stop()
	h.srv.Proxy.now = func() time.Time { return time.Now().Add(time.Minute) }
	if r := h.apiCall(&other); r.status != 200 {
		t.Errorf("feed down, fail open: %d %s, want 200", r.status, r.body)
	}
	if r := h.apiCall(&h.Env); r.status != 401 {
		t.Errorf("feed down: the revoked session got %d, want 401", r.status)
	}
	if g := h.gauge("oauth_proxy_revocation_stale_seconds"); g < 50 {
		t.Errorf("oauth_proxy_revocation_stale_seconds %v a minute after the feed went down", g)
	}
}

// TestFailClosed: with revocation.fail_closed_after, a proxy whose list is
// staler than that answers 503 revocation_unavailable, and serves again
// once its feed answers.
func TestFailClosed(t *testing.T) {
	log := newLog(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the feed is not up yet
	h := startProxy(t, "\nrevocation: {feed: 'http://"+addr+"', fail_closed_after: 10s}")
	r := h.apiCall(&h.Env)
	if r.status != 503 || r.body != string(browser.AnswerRevocationUnavailable.Body) {
		t.Errorf("never synced: %d %s, want 503 revocation_unavailable", r.status, r.body)
	}
	if r.header.Get("Access-Control-Allow-Origin") != trustedOrigin {
		t.Error("the 503 lacks the CORS headers: the SPA could not read it")
	}
	startFeed(t, log, addr)
	if !bintest.Within(3*time.Second, func() bool { return h.apiCall(&h.Env).status == 200 }) {
		t.Fatal("still refused 3s after the feed came up")
	}
	h.srv.Proxy.now = func() time.Time { return time.Now().Add(11 * time.Second) }
	if r := h.apiCall(&h.Env); r.status != 503 {
		t.Errorf("11s stale with fail_closed_after 10s: %d, want 503", r.status)
	}
}

// TestRevocationReload: a reload with the same feed keeps the follower and
// its list; another feed replaces both; no feed follows nothing.
func TestRevocationReload(t *testing.T) {
	log := newLog(t)
	f := startFeed(t, log, "127.0.0.1:0")
	h := startProxy(t, "\nrevocation: {feed: 'http://"+f.addr+"'}")
	log.Revoke(context.Background(), revocation.Entry{Kind: revocation.BySID, Digest: h.Env.SID})
	rev := h.srv.Proxy.rev
	if !bintest.Within(time.Second, func() bool { return rev.set.Len() == 1 }) {
		t.Fatal("the list did not load")
	}
	rev.mu.Lock()
	store := rev.store
	rev.mu.Unlock()
	reload := func(feed string) {
		t.Helper()
		cfg := *h.cfg
		cfg.Revocation = settings.RevocationSettings{Store: settings.StoreEmbedded, Feed: feed}
		if err := h.srv.Reload(&cfg); err != nil {
			t.Fatal(err)
		}
	}
	reload("http://" + f.addr)
	rev.mu.Lock()
	same := rev.store == store
	rev.mu.Unlock()
	if !same || rev.set.Len() != 1 {
		t.Errorf("a reload with the same feed: follower kept %v, Len %d; want true, 1", same, rev.set.Len())
	}

	other := newLog(t)
	f2 := startFeed(t, other, "127.0.0.1:0")
	reload("http://" + f2.addr)
	if rev.set.Len() != 0 || h.apiCall(&h.Env).status != 200 {
		t.Errorf("another feed: Len %d; want 0 and the session served", rev.set.Len())
	}
	other.Revoke(context.Background(), revocation.Entry{Kind: revocation.BySID, Digest: h.Env.SID})
	if !bintest.Within(time.Second, func() bool { return h.apiCall(&h.Env).status == 401 }) {
		t.Error("the new feed's revocation did not arrive within 1s")
	}

	reload("")
	if rev.following() || rev.set.Len() != 0 {
		t.Errorf("no feed: following %v, Len %d", rev.following(), rev.set.Len())
	}
	if g := h.gauge("oauth_proxy_revocation_stale_seconds"); g != 0 {
		t.Errorf("stale gauge %v when following nothing, want 0", g)
	}
	if !strings.Contains(h.logs.String(), "revocation.feed is not set") {
		t.Error("no warning that the proxy follows nothing")
	}
}

// TestRevokedSessionRedis: with revocation.store redis the proxy follows a
// real redis-server: an entry an agent records there refuses the session
// within 1 s; Redis killed, the proxy keeps serving (fail open).
// startRedisProxy starts a Redis server, a proxy following it, and the
// store an agent would revoke into.
func startRedisProxy(t *testing.T) (*redistest.Server, *harness, *redis.Store) {
	t.Helper()
	srv := redistest.Start(t)
	h := startProxy(t, "\nrevocation: {store: redis, redis: {address: '"+srv.Addr+"', key_prefix: 'proxytest:'}}")
	agent, err := redis.New(settings.RedisSettings{Address: srv.Addr, KeyPrefix: "proxytest:"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Close() })
	return srv, h, agent
}

func TestRevokedSessionRedis(t *testing.T) {
	srv, h, agent := startRedisProxy(t)
	other := proxytest.NewSession(time.Now())
	other.SID = session.HashSID("https://login.example", "other-op-session")
	if r := h.apiCall(&h.Env); r.status != 200 {
		t.Fatalf("before any revocation: %d %s", r.status, r.body)
	}
	revoked := time.Now()
	if _, err := agent.Revoke(context.Background(), revocation.Entry{Kind: revocation.BySID, Digest: h.Env.SID, At: time.Now().Unix()}); err != nil {
		t.Fatal(err)
	}
	if !bintest.Within(time.Second, func() bool { return h.apiCall(&h.Env).status == 401 }) {
		t.Fatalf("the revoked session still passes %v after the Revoke", time.Since(revoked))
	}
	t.Logf("refused %v after the Revoke", time.Since(revoked))
	if r := h.apiCall(&other); r.status != 200 {
		t.Errorf("another session: %d, want 200", r.status)
	}
	srv.Kill()
	if r := h.apiCall(&other); r.status != 200 {
		t.Errorf("Redis down, fail open: %d, want 200", r.status)
	}
	if r := h.apiCall(&h.Env); r.status != 401 {
		t.Errorf("Redis down: the revoked session got %d, want 401", r.status)
	}
}

// TestRevocationsPruned: the proxy forgets entries that expired, whichever
// store it follows. A follower only adds: before the proxy pruned, a
// proxy following Redis kept every revocation it ever saw until Redis was
// reconnected, and at revocation/redis.MaxEntries it refused new ones.
func TestRevocationsPruned(t *testing.T) {
	every := revocationPruneEvery
	revocationPruneEvery = 50 * time.Millisecond
	t.Cleanup(func() { revocationPruneEvery = every })
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			var h *harness
			var revoke func(revocation.Entry) error
			if store == "redis" {
				_, rh, agent := startRedisProxy(t)
				h = rh
				revoke = func(e revocation.Entry) error { _, err := agent.Revoke(context.Background(), e); return err }
			} else {
				log := newLog(t)
				f := startFeed(t, log, "127.0.0.1:0")
				h = startProxy(t, "\nrevocation: {feed: 'http://"+f.addr+"'}")
				revoke = func(e revocation.Entry) error { _, err := log.Revoke(context.Background(), e); return err }
			}
			now := time.Now().Unix()
			for i, expires := range []int64{now + 2, now + 3600} {
				e := revocation.Entry{Kind: revocation.BySID, At: now, Expires: expires}
				e.Digest[0] = byte(i + 1)
				if err := revoke(e); err != nil {
					t.Fatal(err)
				}
			}
			set := h.srv.Proxy.rev.set
			if !bintest.Within(2*time.Second, func() bool { return set.Len() == 2 }) {
				t.Fatalf("%d entries followed, want 2", set.Len())
			}
			if !bintest.Within(5*time.Second, func() bool { return set.Len() == 1 }) {
				t.Fatalf("%d entries 5 s after one of two expired, want 1", set.Len())
			}
		})
	}
}
