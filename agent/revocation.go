package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/internal/daemon"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/revocation"
	"github.com/tokenhandler/tokenhandler/revocation/embedded"
	"github.com/tokenhandler/tokenhandler/revocation/redis"
	"github.com/tokenhandler/tokenhandler/session"
)

// revocations is the agent's revocation list (issue #13): the store it
// records back-channel logouts in, and the Set every endpoint checks a
// session against, kept current by the store's Follow in the background.
// It lives on the Agent, across reloads: revocation.* changes wait for a
// restart, but the store's lifetime follows session.max_lifetime at each
// reload (setMaxLifetime).
type revocations struct {
	store revocation.Store // nil with store: off
	owned bool             // the agent opened store and closes it
	set   *revocation.Set
	// failClosedAfter > 0: sessions that could be revoked are refused
	// with 503 once set is staler than this.
	failClosedAfter time.Duration
	// feed is the embedded store's feed, served on the ops listener at
	// /revocations; nil for other stores.
	feed fasthttp.RequestHandler
	// coordinator is the Redis store, which also makes refresh grants
	// single-flight across the agents that share it (Config.Coordinator);
	// nil for other stores.
	coordinator RefreshCoordinator
}

// revocationPruneEvery is how often the agent forgets expired entries.
const revocationPruneEvery = time.Minute

// openRevocations opens the store cfg names: embedded (the default, also
// for a zero RevocationSettings) under state_dir, or in memory when it is
// ""; redis, shared by every agent and proxy; off has no store and no
// list.
func openRevocations(cfg *Config, now func() time.Time, log zerolog.Logger) (*revocations, error) {
	rs := cfg.Revocation
	r := &revocations{set: revocation.NewSet(), failClosedAfter: rs.FailClosedAfter}
	// Entries live as long as the longest session they could end; Reload
	// sets it again for each configuration.
	var maxLifetime time.Duration
	for _, app := range cfg.Applications() {
		maxLifetime = max(maxLifetime, time.Duration(settings.MaxLifetimeSeconds(app.Session.MaxLifetime))*time.Second)
	}
	switch {
	case cfg.RevocationStore != nil:
		r.store = cfg.RevocationStore
	case rs.Store == settings.StoreOff:
		log.Warn().Msg("revocation.store is off: back-channel logouts are refused (404) and sessions the Provider ended stay valid until they expire")
		return r, nil
	case rs.Store == "" || rs.Store == settings.StoreEmbedded:
		if rs.StateDir == "" {
			log.Warn().Msg("revocation.state_dir is not set: back-channel logouts are kept in memory only and forgotten at restart; set it to persist them")
		}
		l, err := embedded.Open(rs.StateDir, maxLifetime, now)
		if err != nil {
			return nil, fmt.Errorf("agent: revocation: %w", err)
		}
		r.store, r.owned, r.feed = l, true, l.Handler()
	case rs.Store == settings.StoreRedis:
		// New does not connect: a Redis that is down makes logouts answer
		// 503 and Follow retry, and the agent starts all the same.
		st, err := redis.New(rs.Redis, maxLifetime)
		if err != nil {
			return nil, fmt.Errorf("agent: revocation: %w", err)
		}
		st.Log = log // skipped malformed entries, the entry cap
		r.store, r.owned, r.coordinator = st, true, st
	default:
		return nil, fmt.Errorf("agent: config: revocation.store: %q is not a store", rs.Store)
	}
	return r, nil
}

// start follows the store into the set and prunes it, until stop closes.
func (r *revocations) start(a *Agent, log zerolog.Logger) {
	if r.store == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.wg.Go(func() {
		<-a.stop
		cancel()
	})
	a.wg.Go(func() {
		if err := r.store.Follow(ctx, r.set); err != nil && !errors.Is(err, context.Canceled) {
			log.Error().Err(err).Msg("revocation: following the store stopped")
		}
	})
	a.wg.Go(func() { r.set.PruneEvery(ctx, revocationPruneEvery, a.now) })
}

// gauges registers oauth_agent_revocation_stale_seconds (seconds since the
// list was last known current: the store answered) and
// oauth_agent_revocation_entries (revoked sessions not yet expired).
func (r *revocations) gauges(reg *metrics.Set, now func() time.Time) {
	daemon.Gauge(reg, "oauth_agent_revocation_stale_seconds", func() float64 {
		return r.set.Stale(now()).Seconds()
	})
	daemon.Gauge(reg, "oauth_agent_revocation_entries", func() float64 {
		return float64(r.set.Len())
	})
}

// record stores e durably, then adds it to the agent's own set at once: a
// store's Follow may take a moment to bring it back. It is added without
// its Seq, which is where Follow resumes: entries other agents recorded
// before it may not have arrived yet. The endpoint that calls it is routed
// only when there is a store.
func (r *revocations) record(e revocation.Entry) error {
	ctx, cancel := context.WithTimeout(context.Background(), revokeTimeout)
	defer cancel()
	got, err := r.store.Revoke(ctx, e)
	if err != nil {
		return err
	}
	got.Seq = 0
	r.set.Add(got)
	return nil
}

// setMaxLifetime gives the store the longest session.max_lifetime of a
// new configuration, in seconds (revocation.MaxLifetimeSetter): entries it
// caps or defaults follow a reload. Stores without a lifetime (off, or a
// Config.RevocationStore that has none) need nothing.
func (r *revocations) setMaxLifetime(seconds int64) error {
	s, ok := r.store.(revocation.MaxLifetimeSetter)
	if !ok {
		return nil
	}
	if err := s.SetMaxLifetime(time.Duration(seconds) * time.Second); err != nil {
		return fmt.Errorf("agent: revocation: %w", err)
	}
	return nil
}

// close closes the store when the agent opened it.
func (r *revocations) close() error {
	if r.owned && r.store != nil {
		return r.store.Close()
	}
	return nil
}

// Why a session is refused for the revocation list.
var (
	errRevoked = errors.New("the session was ended at the Provider (back-channel logout)")
	// errRevocationStale is 503: the list is staler than
	// revocation.fail_closed_after, so whether a session was ended cannot
	// be told.
	errStaleList       = errors.New("the revocation list is staler than revocation.fail_closed_after")
	errRevocationStale = &apiError{status: 503, code: "server_error", message: "The revocation list is out of date: try again later", cause: errStaleList}
)

// checkRevoked refuses a v2 session the revocation list names: 401
// session_expired, and the cookies cleared. A session that names no one
// (OAuth-only) cannot be revoked and is not refused when the list is stale.
func (a *Agent) checkRevoked(st *state, env *session.Envelope, now time.Time) error {
	r := a.rev
	if r.store == nil || env.SID == (session.Digest{}) && env.Sub == (session.Digest{}) {
		return nil
	}
	if r.failClosedAfter > 0 && r.set.Stale(now) > r.failClosedAfter {
		st.metrics.denied("revocation_stale").Inc()
		return errRevocationStale
	}
	if r.set.Revoked(env, now.Unix()) {
		st.metrics.denied("session_revoked").Inc()
		return errSessionExpired.with(errRevoked, "")
	}
	return nil
}
