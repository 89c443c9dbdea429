package redis

import (
	"context"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/redistest"
	"github.com/tokenhandler/tokenhandler/revocation"
	"github.com/tokenhandler/tokenhandler/session"
)

// TestSetMaxLifetimeRevoke: a store opened with 1 h (the applications at
// start) and raised to 24 h by a reload (an application added with 24 h,
// issue #15) records and hands back an entry the agent asks 24 h for, and
// gives 24 h to one without an Expires. Without SetMaxLifetime (an
// attacker's review) Revoke capped it at At + 1 h: the revoked session
// worked again after an hour.
func TestSetMaxLifetimeRevoke(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.Addr) // 1 h
	if err := s.SetMaxLifetime(24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	e := sidEntry("asked")
	e.Expires = e.At + 24*3600
	got, err := s.Revoke(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	if got.Expires != e.At+24*3600 {
		t.Errorf("asked Expires At+24h, got At+%ds", got.Expires-got.At)
	}
	if got, err = s.Revoke(context.Background(), sidEntry("default")); err != nil || got.Expires != got.At+24*3600 {
		t.Errorf("an entry without Expires: %+v, %v; want At + 24h", got, err)
	}
	for _, d := range []time.Duration{0, 500 * time.Millisecond, -time.Hour} {
		if err := s.SetMaxLifetime(d); err == nil {
			t.Errorf("SetMaxLifetime(%v) accepted", d)
		}
	}
	if got, err = s.Revoke(context.Background(), sidEntry("kept")); err != nil || got.Expires != got.At+24*3600 {
		t.Errorf("after refused SetMaxLifetimes: %+v, %v; want At + 24h", got, err)
	}
}

// TestRaisedLifetimeReloadsFollower: a follower started with 1 h caps an
// entry another agent recorded for 24 h (that agent reloaded first) at
// At + 1 h, and drops one recorded two hours ago as expired. Raised to
// 24 h, it loads the list again: both are back with the expiry they were
// recorded with, and what it held alone stays. Without the load, the
// first stays capped and the second lost until the follower reconnects.
func TestRaisedLifetimeReloadsFollower(t *testing.T) {
	srv := redistest.Start(t)
	w, f := newStore(t, srv.Addr), newStore(t, srv.Addr)
	if err := w.SetMaxLifetime(24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	recent := sidEntry("recent")
	recent.Expires = recent.At + 24*3600
	earlier := sidEntry("earlier")
	earlier.At, earlier.Expires = now-2*3600, now+22*3600
	for _, e := range []revocation.Entry{recent, earlier} {
		if _, err := w.Revoke(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	set := follow(t, f)
	bintest.Eventually(t, 2*time.Second, "the load", func() bool { return set.Seq() == 2 })
	expiresOf := func(e revocation.Entry) int64 {
		for _, got := range set.Entries() {
			if got.Digest == e.Digest {
				return got.Expires
			}
		}
		return 0
	}
	if got := expiresOf(recent); got != recent.At+3600 {
		t.Fatalf("with 1 h the follower holds Expires At+%ds, want At+1h", got-recent.At)
	}
	if got := expiresOf(earlier); got != 0 {
		t.Fatalf("with 1 h the follower holds the entry of two hours ago (Expires %d)", got)
	}
	// One the follower holds and the server does not (it kept it when
	// the server lost its data) stays through the load.
	kept := sidEntry("kept")
	kept.Expires = kept.At + 600
	set.Add(kept)
	if err := f.SetMaxLifetime(24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	bintest.Eventually(t, 2*time.Second, "the entries' recorded expiries after the raise", func() bool {
		return expiresOf(recent) == recent.Expires && expiresOf(earlier) == earlier.Expires
	})
	if got := expiresOf(kept); got != kept.Expires {
		t.Errorf("an entry the follower held alone: Expires %d after the load, want %d", got, kept.Expires)
	}
	env := session.Envelope{SID: earlier.Digest, Started: now - 3*3600}
	if !set.Revoked(&env, now+20*3600) {
		t.Error("a session of the entry recorded two hours ago is not revoked 20 h later")
	}
	// Still following: an entry recorded after the load arrives.
	if _, err := w.Revoke(context.Background(), sidEntry("later")); err != nil {
		t.Fatal(err)
	}
	bintest.Eventually(t, time.Second, "an entry after the reload", func() bool { return revokedSID(set, "later") })
}
