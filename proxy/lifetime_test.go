package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/redistest"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/proxy/proxytest"
	"github.com/tokenhandler/tokenhandler/revocation"
	"github.com/tokenhandler/tokenhandler/revocation/redis"
	"github.com/tokenhandler/tokenhandler/session"
)

// TestRevocationFollowsRaisedLifetime: a proxy on Redis started with
// session.max_lifetime 1 h and reloaded with 24 h (issue #15's step of
// adding an application with a longer one) keeps its follower, and a
// back-channel logout an agent records for 24 h still refuses the session
// two hours later, past the old lifetime. Without the reload reaching the
// follower (an attacker's review, finding 2), it capped the entry at
// At + 1 h and the session passed again.
func TestRevocationFollowsRaisedLifetime(t *testing.T) {
	srv := redistest.Start(t)
	rs := settings.RedisSettings{Address: srv.Addr, KeyPrefix: "proxytest:"}
	h := startProxy(t, "\nrevocation: {store: redis, redis: {address: '"+srv.Addr+"', key_prefix: 'proxytest:'}}\nsession: {max_lifetime: 1h}")
	agent, err := redis.New(rs, 24*time.Hour) // an agent that reloaded already
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	rev := h.srv.Proxy.rev
	rev.mu.Lock()
	before := rev.store
	rev.mu.Unlock()

	cfg := *h.cfg
	cfg.MaxLifetime = 24 * time.Hour
	if err := h.srv.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	rev.mu.Lock()
	kept := rev.store == before
	rev.mu.Unlock()
	if !kept {
		t.Error("a reload that changed only session.max_lifetime replaced the follower")
	}

	now := time.Now()
	env := proxytest.NewSession(now)
	env.Expires = now.Add(24 * time.Hour).Unix() // started under 24 h
	env.SID = session.HashSID("https://login.example", "op-session-24h")
	if _, err := agent.Revoke(context.Background(), revocation.Entry{Kind: revocation.BySID, Digest: env.SID, At: now.Unix(), Expires: now.Add(24 * time.Hour).Unix()}); err != nil {
		t.Fatal(err)
	}
	if !bintest.Within(time.Second, func() bool { return h.apiCall(&env).status == 401 }) {
		t.Fatal("the revocation did not arrive within 1s")
	}
	for _, later := range []time.Duration{2 * time.Hour, 23 * time.Hour} {
		h.srv.Proxy.now = func() time.Time { return now.Add(later) }
		if r := h.apiCall(&env); r.status != 401 {
			t.Errorf("%v after the logout, past the old lifetime: %d, want 401", later, r.status)
		}
	}
	// The session itself is live then: another one, not revoked, passes.
	other := env
	other.SID = session.HashSID("https://login.example", "not-revoked")
	if r := h.apiCall(&other); r.status != 200 {
		t.Errorf("a session that was not revoked, 23 h on: %d, want 200", r.status)
	}

	// A lifetime a store refuses fails the reload and changes nothing.
	bad := cfg
	bad.MaxLifetime = 500 * time.Millisecond
	if err := h.srv.Reload(&bad); err == nil {
		t.Error("a reload with max_lifetime 500ms was accepted")
	}
	if r := h.apiCall(&env); r.status != 401 {
		t.Errorf("after the refused reload: %d, want 401", r.status)
	}
}
