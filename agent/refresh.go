package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"sync"
	"time"

	"golang.org/x/oauth2"
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
// session key (userSession.key: the v2 session ID) and the refresh token,
// so a result is only ever handed to a request whose P-auth and P-csrf
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

// do refreshes rt for the session sess, joining a refresh of the same
// session and token in progress or reusing one finished within the grace
// period.
func (r *refresher) do(ctx context.Context, st *state, p *provider, sess [32]byte, rt string) (refreshed, error) {
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
		r.a.metrics.singleFlightWaits.Inc()
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
	f.res, f.err = r.grant(c, st, p, rt)
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

// drop forgets every finished result of the session (logout).
func (r *refresher) drop(sess [32]byte) {
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

// grant runs the refresh_token grant (RFC 6749 §6) and validates a returned
// ID token (OpenID Connect Core 1.0 §12.2).
func (r *refresher) grant(ctx context.Context, st *state, p *provider, rt string) (refreshed, error) {
	start := r.a.now()
	tok, err := p.oauth2.TokenSource(ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Unix(1, 0)}).Token()
	r.a.metrics.asCall("token", start, r.a.now(), retrieveStatus(err), transportError(err))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			r.a.metrics.refreshes("session_expired").Inc()
			return refreshed{}, errSessionExpired.with(safeError(err), "")
		}
		r.a.metrics.refreshes("error").Inc()
		return refreshed{}, tokenError(err)
	}
	res := refreshed{access: tok.AccessToken, refresh: tok.RefreshToken}
	if id, _ := tok.Extra("id_token").(string); id != "" {
		t, err := r.a.verifyIDToken(ctx, st, p, id, "")
		if err != nil {
			r.a.metrics.refreshes("invalid_id_token").Inc()
			return refreshed{}, errASUnavailable.with(err, "The Authorization Server returned an invalid ID token")
		}
		res.id, res.idToken = id, t
	}
	r.a.metrics.refreshes("ok").Inc()
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
