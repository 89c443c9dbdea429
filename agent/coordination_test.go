package agent

import (
	"context"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/agent/astest"
	"github.com/tokenhandler/tokenhandler/internal/redistest"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/revocation/redis"
)

func redisCoordinator(t *testing.T, addr string) *redis.Store {
	t.Helper()
	s, err := redis.New(settings.RedisSettings{Address: addr, KeyPrefix: "agent-test:"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestRefreshCoordinatedAcrossAgents: two agents behind a round-robin
// balancer share one Redis; 20 tabs of one session refresh at once, half
// through each: one grant reaches the AS, and every tab gets the same new
// tokens.
func TestRefreshCoordinatedAcrossAgents(t *testing.T) {
	srv := redistest.Start(t)
	as := astest.New(t, astest.Options{})
	a := startAgentWith(t, as, func(c *Config) { c.Coordinator = redisCoordinator(t, srv.Addr) })
	b := startAgentWith(t, as, func(c *Config) {
		c.Keys = a.cfg.Keys // one deployment: the same key ring
		c.Coordinator = redisCoordinator(t, srv.Addr)
	})
	browser := a.spa()
	a.login(browser)
	as.Set(func(f *astest.Faults) { f.TokenDelay = 200 * time.Millisecond })
	refreshTabs(t, browser, 20, a, b)
}

// A result in the store that does not open with the agent's keys for this
// key (another deployment's, or a forgery) is not used: the agent grants.
func TestSharedResultMustOpen(t *testing.T) {
	srv := redistest.Start(t)
	co := redisCoordinator(t, srv.Addr)
	a := startAgent(t, func(c *Config) { c.Coordinator = co })
	st := a.agent.table.Load().apps[0]
	p := st.as.provider.Load()
	key := flightKey([32]byte{1}, "rt")
	other := flightKey([32]byte{2}, "rt")
	ctx := context.Background()

	sealed, err := sealRefreshed(st, other, refreshed{access: "at", refresh: "rt2"})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string][]byte{"sealed for another key": sealed, "garbage": []byte("x")} {
		if err := co.SetResult(ctx, key, v, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, ok := a.agent.refresh.sharedResult(ctx, st, p, co, key); ok {
			t.Errorf("%s: used", name)
		}
	}
	if err := co.SetResult(ctx, other, sealed, time.Minute); err != nil {
		t.Fatal(err)
	}
	if res, ok := a.agent.refresh.sharedResult(ctx, st, p, co, other); !ok || res.access != "at" || res.refresh != "rt2" {
		t.Errorf("the result sealed for its key: %v %+v", ok, res)
	}
}
