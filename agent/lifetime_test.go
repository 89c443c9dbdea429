package agent

import (
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/agent/astest"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/redistest"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/internal/spatest"
)

// revocationStores are the stores the lifetime tests run on: the embedded
// log in memory, and Redis (a real redis-server).
var revocationStores = []struct {
	name  string
	store func(t *testing.T) settings.RevocationSettings
}{
	{"embedded", func(*testing.T) settings.RevocationSettings {
		return settings.RevocationSettings{Store: settings.StoreEmbedded}
	}},
	{"redis", func(t *testing.T) settings.RevocationSettings {
		srv := redistest.Start(t)
		return settings.RevocationSettings{Store: settings.StoreRedis, Redis: settings.RedisSettings{Address: srv.Addr, KeyPrefix: "th-test:"}}
	}},
}

// onEachStore runs test once on each of revocationStores, with an agent
// on its own fake AS whose session.max_lifetime is lifetime.
func onEachStore(t *testing.T, lifetime time.Duration, test func(t *testing.T, a *testAgent, as *astest.Server)) {
	for _, tc := range revocationStores {
		t.Run(tc.name, func(t *testing.T) {
			as := astest.New(t, astest.Options{})
			rs := tc.store(t)
			a := startAgentWith(t, as, func(c *Config) {
				c.Session.MaxLifetime = lifetime
				c.Revocation = rs
			})
			test(t, a, as)
		})
	}
}

// reloadLifetime reloads a's configuration with session.max_lifetime d.
func (a *testAgent) reloadLifetime(d time.Duration) {
	a.t.Helper()
	cfg := *a.cfg
	cfg.Session.MaxLifetime = d
	if err := a.agent.Reload(&cfg, zerolog.Nop()); err != nil {
		a.t.Fatal(err)
	}
	a.cfg = &cfg
}

// revokedWithin waits up to d for b's session to be refused as revoked
// (a Redis follower loads its list again within a second of a raised
// lifetime), then checks every endpoint.
func revokedWithin(t *testing.T, a *testAgent, b *spatest.Browser, d time.Duration) {
	t.Helper()
	bintest.Within(d, func() bool { // polling the agent, not synchronising with it
		r := a.call(b.Clone(), "GET", "/oauth-agent/userInfo", nil)
		return r.Status == 401 && r.Code() == "session_expired"
	})
	wantRevoked(t, a, b)
}

// TestRevocationFollowsRaisedLifetime: session.max_lifetime raised from
// 1 h to 24 h by a reload (issue #15's step of adding an application with
// a longer one), then a back-channel logout: the session is still refused
// two hours later, past the old lifetime. Without the store following the
// reload, Redis capped the entry at At + 1 h and the session worked again
// (an attacker's review, finding 2).
func TestRevocationFollowsRaisedLifetime(t *testing.T) {
	onEachStore(t, time.Hour, func(t *testing.T, a *testAgent, as *astest.Server) {
		a.reloadLifetime(24 * time.Hour)
		b := a.loginIn("sid-1")
		a.logoutAtProvider(as.Subject(), "sid-1")
		wantRevoked(t, a, b)
		a.clock.advance(2 * time.Hour)
		wantRevoked(t, a, b)
		a.clock.advance(21 * time.Hour)
		wantRevoked(t, a, b)
		if got := a.metric(`oauth_agent_denied_total{reason="session_revoked"}`); got != "15" {
			t.Errorf("session_revoked counted %q, want 15: the refusals were for another reason", got)
		}
	})
}

// TestRevocationOutlivesLoweredLifetime: a session started under 24 h, the
// lifetime lowered to 1 h, a back-channel logout, two hours, the lifetime
// raised to 24 h again: the session's cookies are live again (their Expires
// is 24 h from the login) and the logout must still refuse them. Without
// table.sessionsEndBy its entry was recorded for 1 h and had expired.
func TestRevocationOutlivesLoweredLifetime(t *testing.T) {
	onEachStore(t, 24*time.Hour, func(t *testing.T, a *testAgent, as *astest.Server) {
		b := a.loginIn("sid-1")
		other := a.loginIn("sid-2")
		a.reloadLifetime(time.Hour)
		a.logoutAtProvider(as.Subject(), "sid-1")
		a.clock.advance(2 * time.Hour)
		a.reloadLifetime(24 * time.Hour)
		revokedWithin(t, a, b, 3*time.Second)
		if got := a.metric(`oauth_agent_denied_total{reason="session_revoked"}`); got == "" || got == "0" {
			t.Errorf("session_revoked counted %q: the refusals were for another reason", got)
		}
		// The user's other provider session is live again, and served.
		if r := a.call(other.Clone(), "GET", "/oauth-agent/userInfo", nil); r.Status != 200 {
			t.Errorf("another provider session: userInfo %d %s, want 200", r.Status, r.Body)
		}
	})
}
