package proxy

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/internal/daemon"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/revocation"
	"github.com/tokenhandler/tokenhandler/revocation/embedded"
	"github.com/tokenhandler/tokenhandler/revocation/redis"
)

// revocations keeps a proxy's revocation.Set current (issue #13): one
// follower in the background for the proxy's lifetime, replaced only when a
// reload changes where it follows from (the feed, or the Redis settings),
// so that a SIGHUP neither drops the set nor reconnects. It is safe for
// concurrent use.
type revocations struct {
	set *revocation.Set // consulted on every request; never nil

	mu     sync.Mutex
	source revocationSource // what the running follower follows; zero: none
	store  revocation.Store
	cancel context.CancelFunc
	done   chan struct{}
}

// revocationSource is where a follower follows from; comparable, so that
// a reload can tell whether it changed.
type revocationSource struct {
	store string // settings.StoreEmbedded or settings.StoreRedis; "" follows nothing
	feed  string
	redis settings.RedisSettings
}

// revocationPruneEvery is how often the proxy forgets expired entries,
// whichever store it follows; tests shorten it before starting a proxy.
var revocationPruneEvery = time.Minute

const (
	mRevocationStale   = "oauth_proxy_revocation_stale_seconds"
	mRevocationEntries = "oauth_proxy_revocation_entries"
)

func newRevocations(reg *metrics.Set, now func() time.Time) *revocations {
	r := &revocations{set: revocation.NewSet()}
	// Seconds since the list was last known current (its store answered);
	// requests get 503 above revocation.fail_closed_after.
	daemon.Gauge(reg, mRevocationStale, func() float64 {
		if !r.following() {
			return 0
		}
		return r.set.Stale(now()).Seconds()
	})
	// Sessions on the list (back-channel logouts not yet expired).
	daemon.Gauge(reg, mRevocationEntries, func() float64 {
		return float64(r.set.Len())
	})
	return r
}

func (r *revocations) following() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.source.store != ""
}

// apply makes the follower follow what cfg names, keeping the running one
// when that has not changed; maxLifetime is the longest
// session.max_lifetime of the applications (0: the default), which the
// follower's store gets either way. On error nothing changes.
func (r *revocations) apply(cfg settings.RevocationSettings, maxLifetime time.Duration, log zerolog.Logger) error {
	var src revocationSource
	switch {
	case cfg.Store == settings.StoreEmbedded && cfg.Feed != "":
		src = revocationSource{store: settings.StoreEmbedded, feed: cfg.Feed}
	case cfg.Store == settings.StoreRedis:
		src = revocationSource{store: settings.StoreRedis, redis: cfg.Redis}
	}
	lifetime := time.Duration(settings.MaxLifetimeSeconds(maxLifetime)) * time.Second
	r.mu.Lock()
	defer r.mu.Unlock()
	if src == r.source && r.done != nil {
		// The running follower stays; its lifetime follows the new
		// configuration (a Redis follower caps entries with it, and loads
		// the list again when it grew).
		if s, ok := r.store.(revocation.MaxLifetimeSetter); ok {
			if err := s.SetMaxLifetime(lifetime); err != nil {
				return fmt.Errorf("proxy: session.max_lifetime: %w", err)
			}
		}
		return nil
	}
	var store revocation.Store
	switch src.store {
	case settings.StoreEmbedded:
		f := embedded.NewFollower(src.feed)
		f.Log = log
		store = f
	case settings.StoreRedis:
		s, err := redis.New(src.redis, lifetime)
		if err != nil {
			return fmt.Errorf("proxy: revocation.redis: %w", err)
		}
		s.Log = log // skipped malformed entries, the entry cap
		store = s
	}
	r.stopLocked()
	if store != nil {
		log.Info().Str("store", src.store).Str("feed", src.feed).Str("redis", src.redis.Address).Msg("following the revocation list")
	}
	// What the old source revoked is no longer this proxy's list: the new
	// follower loads its own (a new follower always starts with a reset).
	r.set.Reset(nil, 0)
	r.source = src
	r.done = make(chan struct{})
	if store == nil {
		close(r.done)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.store, r.cancel = store, cancel
	go func(done chan struct{}, every time.Duration) {
		defer close(done)
		var wg sync.WaitGroup
		// The wall clock, not the proxy's: entries expire in real time,
		// and tests replace the proxy's clock while it serves.
		wg.Go(func() { r.set.PruneEvery(ctx, every, time.Now) })
		store.Follow(ctx, r.set)
		wg.Wait()
	}(r.done, revocationPruneEvery)
	return nil
}

// stopLocked stops the running follower and waits for it; r.mu is held.
func (r *revocations) stopLocked() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.store.Close()
	}
	r.store, r.cancel, r.done = nil, nil, nil
	r.source = revocationSource{}
}

// close stops the follower.
func (r *revocations) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
}

// warnNotFollowing warns, when cfg asks for no revocation.store off but
// the proxy follows nothing (no revocation.feed), that sessions ended at
// the Provider keep working here. The Server says it at start and after a
// reload that stopped the following.
func warnNotFollowing(cfg settings.RevocationSettings, log zerolog.Logger) {
	if cfg.Store == settings.StoreEmbedded && cfg.Feed == "" || cfg.Store == "" {
		log.Warn().Msg("revocation.feed is not set: this proxy does not learn of back-channel logouts, and a session ended at the identity provider keeps working here until its cookies expire")
	}
}

// failClosed reports whether a request at Unix time now must get 503:
// fail_closed_after is set and the list is staler than it.
func (r *revocations) failClosed(st *state, now int64) bool {
	return st.failClosedAfter > 0 && r.set.Stale(time.Unix(now, 0)) > st.failClosedAfter
}
