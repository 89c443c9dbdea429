package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// refreshed is what one refresh-token grant returned.
type refreshed struct {
	access, refresh, id string
}

// refresher makes refreshes single-flight per refresh token within this
// process, and keeps each result for refresh.grace_period (SPEC §5): tabs
// that send the same refresh token at once, or replay it just after it was
// rotated, all get the same new tokens instead of invalid_grant (which a
// rotating AS answers to the replay, and may answer by revoking the whole
// session).
//
// Entries are keyed by SHA-256 of the refresh token, so the map holds no
// refresh token; it holds the results for the grace period. At most
// maxEntries results are kept; beyond that, new results are not cached.
type refresher struct {
	a       *Agent
	mu      sync.Mutex
	entries map[[32]byte]*flight
}

// flight is one refresh: in progress until done is closed.
type flight struct {
	done    chan struct{}
	res     refreshed
	err     error
	expires time.Time // end of the grace period, once done
}

const maxEntries = 100_000

func newRefresher(a *Agent) *refresher {
	return &refresher{a: a, entries: map[[32]byte]*flight{}}
}

// do refreshes rt, joining a refresh of the same token in progress or
// reusing one finished within the grace period.
func (r *refresher) do(ctx context.Context, st *state, p *provider, rt string) (refreshed, error) {
	key := sha256.Sum256([]byte(rt))
	now := r.a.now()
	r.mu.Lock()
	f := r.entries[key]
	if f != nil {
		select {
		case <-f.done:
			if now.After(f.expires) {
				delete(r.entries, key)
				f = nil
			}
		default:
		}
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
	f = &flight{done: make(chan struct{})}
	r.entries[key] = f
	r.mu.Unlock()

	// The grant runs on its own context: a caller that gives up must not
	// cancel the refresh the others wait for.
	c, cancel := context.WithTimeout(oauth2Context(context.Background(), st), st.cfg.Timeouts.AS)
	f.res, f.err = r.grant(c, st, p, rt)
	cancel()

	r.mu.Lock()
	f.expires = r.a.now().Add(st.cfg.Refresh.GracePeriod)
	if f.err != nil || st.cfg.Refresh.GracePeriod == 0 || len(r.entries) > maxEntries {
		delete(r.entries, key) // failures and overflow are not replayed
	}
	close(f.done)
	r.mu.Unlock()
	return f.res, f.err
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
		if err := r.a.verifyIDToken(ctx, st, p, id, ""); err != nil {
			r.a.metrics.refreshes("invalid_id_token").Inc()
			return refreshed{}, errASUnavailable.with(err, "The Authorization Server returned an invalid ID token")
		}
		res.id = id
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
			select {
			case <-f.done:
				if now.After(f.expires) {
					delete(r.entries, k)
				}
			default:
			}
		}
		r.mu.Unlock()
	}
}
