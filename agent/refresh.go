package agent

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenhandler/tokenhandler/crypto"
)

// refreshed is what one refresh-token grant returned.
type refreshed struct {
	access, refresh, id string
	idToken             *idToken // id verified; nil when the AS returned none
}

// refresher makes refreshes single-flight per session and refresh token
// within this process, and keeps each result for refresh.grace_period: tabs
// of one session that send the same refresh token at once, or replay it
// just after it was rotated, all get the same new tokens instead of
// invalid_grant (which a rotating AS answers to the replay, and may answer
// by revoking the whole session).
//
// The grace is bound to the session. Entries are keyed by SHA-256 of the
// session key (userSession.key: the v2 session ID; with apps bound to the
// application's name, appSession) and the refresh token, so a result is only ever handed to a request whose P-auth and P-csrf
// belong to the session that made it, with a matching CSRF header (the
// caller has checked both). Someone holding a copy of an old P-auth but not
// that session's CSRF pair gets their own grant, which the AS refuses (and
// sees as the reuse it is). A refresh of the session with any other token
// drops the session's finished entries, and so does logout. Failures are
// never kept. The map holds no refresh token; at most maxEntries results
// are kept, beyond that new results are not.
type refresher struct {
	a         *Agent
	mu        sync.Mutex
	entries   map[[32]byte]*flight
	bySession map[[32]byte][][32]byte // session key → keys of its entries
}

// flight is one refresh: in progress until done is closed.
type flight struct {
	done    chan struct{}
	res     refreshed
	err     error
	expires time.Time // end of the grace period, once done
	session [32]byte
}

const maxEntries = 100_000

func newRefresher(a *Agent) *refresher {
	return &refresher{a: a, entries: map[[32]byte]*flight{}, bySession: map[[32]byte][][32]byte{}}
}

func flightKey(session [32]byte, rt string) [32]byte {
	h := sha256.New()
	h.Write(session[:])
	h.Write([]byte(rt))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// appSession is the key of the session sess at the application st: sess
// itself in a file without apps (the keys of before, in a shared
// coordinator too), else SHA-256 of the application's name and sess. A
// refresh at one application never joins or reuses a flight or a grace
// result of another, even for cookies that open at both (v1 or DARE under
// a shared key, which carry no application), and a logout drops its own
// application's results only.
func appSession(st *state, sess [32]byte) [32]byte {
	if st.cfg.Name == "" {
		return sess
	}
	h := sha256.New()
	h.Write([]byte("tokenhandler app session\x00"))
	h.Write([]byte(st.cfg.Name))
	h.Write([]byte{0})
	h.Write(sess[:])
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// do refreshes rt for the session sess of the application st, joining a
// refresh of the same application, session and token in progress or
// reusing one finished within the grace period.
func (r *refresher) do(ctx context.Context, st *state, p *provider, sess [32]byte, rt string) (refreshed, error) {
	sess = appSession(st, sess)
	key := flightKey(sess, rt)
	now := r.a.now()
	r.mu.Lock()
	f := r.entries[key]
	if f != nil && f.finished() && now.After(f.expires) {
		r.deleteLocked(key)
		f = nil
	}
	if f != nil {
		r.mu.Unlock()
		st.metrics.singleFlightWaits.Inc()
		select {
		case <-f.done:
			return f.res, f.err
		case <-ctx.Done():
			return refreshed{}, errASUnavailable.with(ctx.Err(), "")
		}
	}
	// The session refreshes with another token than its kept results
	// were for: it has moved on, and they are not handed out again.
	for _, k := range r.bySession[sess] {
		if e := r.entries[k]; e != nil && e.finished() {
			r.deleteLocked(k)
		}
	}
	f = &flight{done: make(chan struct{}), session: sess}
	r.entries[key] = f
	r.bySession[sess] = append(r.bySession[sess], key)
	r.mu.Unlock()

	// The grant runs on its own context: a caller that gives up must not
	// cancel the refresh the others wait for.
	c, cancel := context.WithTimeout(oauth2Context(context.Background(), st), st.cfg.Timeouts.AS)
	f.res, f.err = r.coordinated(c, st, p, key, rt)
	cancel()

	r.mu.Lock()
	f.expires = r.a.now().Add(st.cfg.Refresh.GracePeriod)
	close(f.done)
	if f.err != nil || st.cfg.Refresh.GracePeriod == 0 || len(r.entries) > maxEntries {
		r.deleteLocked(key) // failures and overflow are not replayed
	}
	r.mu.Unlock()
	return f.res, f.err
}

// drop forgets every finished result of the session sess of the
// application st (logout).
func (r *refresher) drop(st *state, sess [32]byte) {
	sess = appSession(st, sess)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.bySession[sess] {
		if e := r.entries[k]; e != nil && e.finished() {
			r.deleteLocked(k)
		}
	}
}

func (f *flight) finished() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// deleteLocked removes entry key and its place in bySession; r.mu is held.
func (r *refresher) deleteLocked(key [32]byte) {
	f := r.entries[key]
	if f == nil {
		return
	}
	delete(r.entries, key)
	keys := slices.DeleteFunc(r.bySession[f.session], func(k [32]byte) bool { return k == key })
	if len(keys) == 0 {
		delete(r.bySession, f.session)
	} else {
		r.bySession[f.session] = keys
	}
}

// RefreshCoordinator makes refresh-token grants single-flight across the
// agents that share it, as the refresher does within one: two agents behind
// a round-robin balancer never both spend one refresh token. Keys are the
// refresher's, SHA-256 of the session key and the refresh token, never the
// token; results are sealed by the agent (they hold tokens). Package
// revocation/redis implements it (revocation.store: redis).
// Implementations are safe for concurrent use.
type RefreshCoordinator interface {
	// Acquire takes the lock for key unless another agent holds it. When
	// won, the lock is held, and renewed, until release is called; release
	// is never nil. A lock whose holder died expires by itself.
	Acquire(ctx context.Context, key [32]byte) (release func(), won bool, err error)
	// Result returns the sealed result stored for key, if any.
	Result(ctx context.Context, key [32]byte) (sealed []byte, ok bool, err error)
	// SetResult keeps a sealed result for key for ttl.
	SetResult(ctx context.Context, key [32]byte, sealed []byte, ttl time.Duration) error
}

// minHandoff is how long a shared result is kept at least, also with
// refresh.grace_period 0: agents waiting on the lock poll for it every
// 100 ms at most, so they pick it up within this.
const minHandoff = time.Second

// coordinated is grant run once across the agents sharing
// Config.Coordinator: the agent that takes the lock for key grants and
// stores the sealed result for the grace period; the others wait for it and
// use it. Without a coordinator, or when it cannot be reached, the agent
// grants by itself, as a single agent does (docs/operations.md,
// "Revocation backends").
func (r *refresher) coordinated(ctx context.Context, st *state, p *provider, key [32]byte, rt string) (refreshed, error) {
	co := st.cfg.Coordinator
	if co == nil {
		return r.grant(ctx, st, p, rt)
	}
	waited := false
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		if res, ok := r.sharedResult(ctx, st, p, co, key); ok {
			return res, nil
		}
		release, won, err := co.Acquire(ctx, key)
		if err != nil {
			return r.grant(ctx, st, p, rt)
		}
		if won {
			// The holder before us may have stored its result and
			// released between our look and our Acquire.
			if res, ok := r.sharedResult(ctx, st, p, co, key); ok {
				release()
				return res, nil
			}
			res, err := r.grant(ctx, st, p, rt)
			if err == nil {
				// Failures are never shared: a waiter then takes the
				// lock and tries itself. A result that cannot be
				// stored leaves the waiters to do the same.
				if sealed, serr := sealRefreshed(st, key, res); serr == nil {
					co.SetResult(ctx, key, sealed, max(st.cfg.Refresh.GracePeriod, minHandoff))
				}
			}
			release()
			return res, err
		}
		if !waited {
			waited = true
			st.metrics.singleFlightWaits.Inc()
		}
		select {
		case <-ctx.Done():
			return refreshed{}, errASUnavailable.with(ctx.Err(), "")
		case <-time.After(wait):
		}
	}
}

// sharedRefresh is a result as sealed for other agents.
type sharedRefresh struct {
	Access  string `json:"a"`
	Refresh string `json:"r"`
	ID      string `json:"i,omitempty"`
}

// refreshResultAD binds a sealed result to its purpose and to its key: it
// opens as nothing else, and for no other session or refresh token.
func refreshResultAD(key [32]byte) []byte {
	return append([]byte("tokenhandler refresh result\x00"), key[:]...)
}

func sealRefreshed(st *state, key [32]byte, res refreshed) ([]byte, error) {
	b, err := json.Marshal(sharedRefresh{res.access, res.refresh, res.id})
	if err != nil {
		return nil, err
	}
	return st.cfg.Keys.SealAD(nil, b, crypto.FormatV2, refreshResultAD(key))
}

// sharedResult opens the result another agent stored for key. A result
// that does not open (keys rotated, or a forgery in the store) or whose ID
// token does not verify counts as none: it is checked for this purpose,
// not trusted because it opened.
func (r *refresher) sharedResult(ctx context.Context, st *state, p *provider, co RefreshCoordinator, key [32]byte) (refreshed, bool) {
	sealed, ok, err := co.Result(ctx, key)
	if err != nil || !ok {
		return refreshed{}, false
	}
	b, f, err := st.cfg.Keys.OpenAD(nil, sealed, refreshResultAD(key))
	if err != nil || f != crypto.FormatV2 {
		return refreshed{}, false
	}
	var sr sharedRefresh
	if json.Unmarshal(b, &sr) != nil || sr.Access == "" {
		return refreshed{}, false
	}
	res := refreshed{access: sr.Access, refresh: sr.Refresh}
	if sr.ID != "" {
		t, err := r.a.verifyIDToken(ctx, st, p, sr.ID, "")
		if err != nil {
			return refreshed{}, false
		}
		res.id, res.idToken = sr.ID, t
	}
	return res, true
}

// grant runs the refresh_token grant (RFC 6749 §6) and validates a returned
// ID token (OpenID Connect Core 1.0 §12.2).
func (r *refresher) grant(ctx context.Context, st *state, p *provider, rt string) (refreshed, error) {
	tok, err := p.oauth2.TokenSource(asEndpoint(ctx, "token"), &oauth2.Token{RefreshToken: rt, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			st.metrics.refreshes("session_expired").Inc()
			return refreshed{}, errSessionExpired.with(safeError(err), "")
		}
		st.metrics.refreshes("error").Inc()
		return refreshed{}, tokenError(err)
	}
	res := refreshed{access: tok.AccessToken, refresh: tok.RefreshToken}
	if id, _ := tok.Extra("id_token").(string); id != "" {
		t, err := r.a.verifyIDToken(ctx, st, p, id, "")
		if err != nil {
			st.metrics.refreshes("invalid_id_token").Inc()
			return refreshed{}, errASUnavailable.with(err, "The Authorization Server returned an invalid ID token")
		}
		res.id, res.idToken = id, t
	}
	st.metrics.refreshes("ok").Inc()
	return res, nil
}

// sweep drops expired results every few seconds until stop closes.
func (r *refresher) sweep(stop <-chan struct{}) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := r.a.now()
		r.mu.Lock()
		for k, f := range r.entries {
			if f.finished() && now.After(f.expires) {
				r.deleteLocked(k)
			}
		}
		r.mu.Unlock()
	}
}
