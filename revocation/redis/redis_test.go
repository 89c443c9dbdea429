package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/redistest"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/revocation"
	"github.com/tokenhandler/tokenhandler/revocation/revocationtest"
	"github.com/tokenhandler/tokenhandler/session"
)

func newStore(t *testing.T, addr string) *Store {
	t.Helper()
	s, err := New(settings.RedisSettings{Address: addr, KeyPrefix: "test:"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s.pingEvery = 100 * time.Millisecond
	t.Cleanup(func() { s.Close() })
	return s
}

// follow runs s.Follow on a new set until the test ends.
func follow(t *testing.T, s *Store) *revocation.Set {
	t.Helper()
	set := revocation.NewSet()
	revocationtest.Follow(t, s, set, 5*time.Second)
	return set
}

func sidEntry(sid string) revocation.Entry {
	return revocation.Entry{Kind: revocation.BySID, Digest: session.HashSID("https://idp.example", sid), At: time.Now().Unix()}
}

func revokedSID(set *revocation.Set, sid string) bool {
	env := session.Envelope{SID: session.HashSID("https://idp.example", sid), Started: time.Now().Unix() - 10}
	return set.Revoked(&env, time.Now().Unix())
}

func TestRevokeReachesFollower(t *testing.T) {
	srv := redistest.Start(t)
	w, f := newStore(t, srv.Addr), newStore(t, srv.Addr)
	before, err := w.Revoke(context.Background(), sidEntry("before"))
	if err != nil {
		t.Fatal(err)
	}
	if before.Seq != 1 || before.Expires != before.At+3600 {
		t.Fatalf("Revoke returned %+v, want Seq 1 and Expires At+1h", before)
	}
	set := follow(t, f)
	bintest.Eventually(t, 2*time.Second, "the entry recorded before Follow to load", func() bool { return revokedSID(set, "before") })

	for i := range 5 {
		sid := "s" + strconv.Itoa(i)
		start := time.Now()
		if _, err := w.Revoke(context.Background(), sidEntry(sid)); err != nil {
			t.Fatal(err)
		}
		bintest.Eventually(t, time.Second, "a revocation to reach the follower", func() bool { return revokedSID(set, sid) })
		t.Logf("propagation %v", time.Since(start))
	}
	if set.Len() != 6 || set.Seq() != 6 {
		t.Errorf("Len %d, Seq %d; want 6, 6", set.Len(), set.Seq())
	}
	if revokedSID(set, "other") {
		t.Error("a session that was not revoked is")
	}
}

func TestRevokeMerges(t *testing.T) {
	srv := redistest.Start(t)
	w := newStore(t, srv.Addr)
	now := time.Now().Unix()
	e := revocation.Entry{Kind: revocation.BySub, Digest: session.HashSub("https://idp.example", "alice"), At: now, Expires: now + 900}
	if _, err := w.Revoke(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	e.At, e.Expires = now-100, now+500 // older on both counts: the first stays
	got, err := w.Revoke(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	if got.At != now || got.Expires != now+900 || got.Seq != 2 {
		t.Errorf("Revoke returned %+v, want At %d, Expires %d, Seq 2", got, now, now+900)
	}
}

func TestRevokeRefusesInvalid(t *testing.T) {
	w, err := New(settings.RedisSettings{Address: "127.0.0.1:1", KeyPrefix: "x:"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	d := session.HashSID("i", "s")
	for _, tc := range []struct {
		name string
		e    revocation.Entry
	}{
		{"unknown kind", revocation.Entry{Kind: 3, Digest: d, At: 10}},
		{"zero digest", revocation.Entry{Kind: revocation.BySID, At: 10}},
		{"no time", revocation.Entry{Kind: revocation.BySID, Digest: d}},
		{"expires before at", revocation.Entry{Kind: revocation.BySID, Digest: d, At: 10, Expires: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := w.Revoke(context.Background(), tc.e); !errors.Is(err, ErrInvalidEntry) {
				t.Errorf("Revoke: %v, want ErrInvalidEntry", err)
			}
		})
	}
	// A valid entry with the server unreachable fails: the endpoint answers 503.
	if _, err := w.Revoke(context.Background(), revocation.Entry{Kind: revocation.BySID, Digest: d, At: 10}); err == nil {
		t.Error("Revoke succeeded with no server")
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  settings.RedisSettings
		life time.Duration
	}{
		{"no address", settings.RedisSettings{KeyPrefix: "p:"}, time.Hour},
		{"no prefix", settings.RedisSettings{Address: "127.0.0.1:6379"}, time.Hour},
		{"no port", settings.RedisSettings{Address: "127.0.0.1", KeyPrefix: "p:"}, time.Hour},
		{"no lifetime", settings.RedisSettings{Address: "127.0.0.1:6379", KeyPrefix: "p:"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := New(tc.cfg, tc.life); err == nil {
				s.Close()
				t.Error("New accepted it")
			}
		})
	}
}

// Redis killed: the follower keeps its set and Stale grows; Redis back
// (empty: no persistence) → the follower resynchronises, keeps what it
// knew, and gets an entry written after the restart.
func TestOutageKeepsSetThenResyncs(t *testing.T) {
	srv, w, set := followingA(t)
	bintest.Eventually(t, time.Second, "a fresh set", func() bool { return set.Stale(time.Now()) < 300*time.Millisecond })

	srv.Kill()
	bintest.Eventually(t, 5*time.Second, "Stale to grow past 1 s", func() bool { return set.Stale(time.Now()) > time.Second })
	if !revokedSID(set, "a") {
		t.Fatal("the follower dropped its entry during the outage")
	}
	if _, err := w.Revoke(context.Background(), sidEntry("down")); err == nil {
		t.Error("Revoke succeeded with the server down")
	}

	srv.Restart()
	if _, err := w.Revoke(context.Background(), sidEntry("b")); err != nil {
		t.Fatal(err)
	}
	bintest.Eventually(t, 5*time.Second, "the entry written after the restart", func() bool { return revokedSID(set, "b") })
	if !revokedSID(set, "a") {
		t.Error("the entry from before the restart was dropped by the resync")
	}
	bintest.Eventually(t, time.Second, "Stale to fall", func() bool { return set.Stale(time.Now()) < 300*time.Millisecond })
}

// followingA starts Redis, a store writing to it and a set following it,
// revokes session "a" and waits until the set has it.
func followingA(t *testing.T) (*redistest.Server, *Store, *revocation.Set) {
	t.Helper()
	srv := redistest.Start(t)
	w, f := newStore(t, srv.Addr), newStore(t, srv.Addr)
	set := follow(t, f)
	if _, err := w.Revoke(context.Background(), sidEntry("a")); err != nil {
		t.Fatal(err)
	}
	bintest.Eventually(t, time.Second, "the first entry", func() bool { return revokedSID(set, "a") })
	return srv, w, set
}

// A message lost (a gap in the sequence) makes the follower load the whole
// list: an entry only in the hash arrives.
func TestGapResyncs(t *testing.T) {
	_, w, set := followingA(t)

	// Record "hidden" as a lost message would have: in the hash, with seq 2,
	// and publish seq 3 only.
	ctx := context.Background()
	hidden := sidEntry("hidden")
	field := string(appendField(nil, hidden.Kind, hidden.Digest))
	exp := strconv.FormatInt(hidden.At+3600, 10)
	at := strconv.FormatInt(hidden.At, 10)
	if err := w.c.HSet(ctx, w.keys.hash, field, at+" "+exp+" 2").Err(); err != nil {
		t.Fatal(err)
	}
	w.c.Set(ctx, w.keys.seq, 3, 0)
	third := sidEntry("third")
	msg := string(appendField(nil, third.Kind, third.Digest)) + " " + at + " " + exp + " 3"
	if err := w.c.Publish(ctx, w.keys.channel, msg).Err(); err != nil {
		t.Fatal(err)
	}
	bintest.Eventually(t, 2*time.Second, "the entry only in the hash", func() bool { return revokedSID(set, "hidden") })
}

// A malformed message never panics the follower: it starts over.
func TestMalformedMessage(t *testing.T) {
	srv := redistest.Start(t)
	w, f := newStore(t, srv.Addr), newStore(t, srv.Addr)
	set := follow(t, f)
	bintest.Eventually(t, time.Second, "a first sync", func() bool { return set.Stale(time.Now()) < time.Second })
	for _, m := range []string{"", "x", "1:zz 1 2 3", "3:" + string(make([]byte, 32)) + " 1 2 3", "1:00 1 2"} {
		if err := w.c.Publish(context.Background(), w.keys.channel, m).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Revoke(context.Background(), sidEntry("after")); err != nil {
		t.Fatal(err)
	}
	bintest.Eventually(t, 3*time.Second, "an entry after the malformed ones", func() bool { return revokedSID(set, "after") })
	if got := f.malformed.Load(); got != 5 {
		t.Errorf("counted %d malformed messages, want 5", got)
	}
}

func FuzzParseMessage(f *testing.F) {
	e := sidEntry("x")
	f.Add(string(appendField(nil, e.Kind, e.Digest)) + " 1 2 3")
	f.Add("2:" + "00" + " 1 2 3")
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseMessage(s)
		if err == nil && e.Kind != revocation.BySID && e.Kind != revocation.BySub {
			t.Errorf("parsed kind %d", e.Kind)
		}
	})
}

func TestRefreshLock(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newStore(t, srv.Addr), newStore(t, srv.Addr)
	a.lockTTL, b.lockTTL = 300*time.Millisecond, 300*time.Millisecond
	ctx := context.Background()
	key := [32]byte{1, 2, 3}
	release, won, err := a.Acquire(ctx, key)
	if err != nil || !won {
		t.Fatalf("first Acquire: won %v, %v", won, err)
	}
	// Held for three lock lifetimes: renewed, so nobody else gets it.
	deadline := time.Now().Add(900 * time.Millisecond)
	for time.Now().Before(deadline) {
		if r, won, err := b.Acquire(ctx, key); err != nil || won {
			r()
			t.Fatalf("second Acquire while held: won %v, %v", won, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, won, _ := b.Acquire(ctx, [32]byte{9}); !won {
		t.Error("another key's lock was not free")
	}
	release()
	release() // twice is fine
	r, won, err := b.Acquire(ctx, key)
	if err != nil || !won {
		t.Fatalf("Acquire after release: won %v, %v", won, err)
	}
	// a's release after b took the lock must not free b's lock.
	release()
	if _, won, _ := a.Acquire(ctx, key); won {
		t.Error("the lock was taken twice")
	}
	r()
}

func TestRefreshLockExpires(t *testing.T) {
	srv := redistest.Start(t)
	a := newStore(t, srv.Addr)
	a.lockTTL = 200 * time.Millisecond
	ctx := context.Background()
	key := [32]byte{7}
	// A holder that died: the lock set without renewal.
	if err := a.c.SetNX(ctx, a.keys.lock+"0700000000000000000000000000000000000000000000000000000000000000", "dead", a.lockTTL).Err(); err != nil {
		t.Fatal(err)
	}
	if _, won, _ := a.Acquire(ctx, key); won {
		t.Fatal("took a lock held by another")
	}
	bintest.Eventually(t, 2*time.Second, "the dead holder's lock to expire", func() bool {
		r, won, _ := a.Acquire(ctx, key)
		defer r()
		return won
	})
}

func TestRefreshResult(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newStore(t, srv.Addr), newStore(t, srv.Addr)
	ctx := context.Background()
	key := [32]byte{4}
	if _, ok, err := b.Result(ctx, key); ok || err != nil {
		t.Fatalf("Result before SetResult: %v, %v", ok, err)
	}
	if err := a.SetResult(ctx, key, []byte("sealed"), 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	got, ok, err := b.Result(ctx, key)
	if err != nil || !ok || string(got) != "sealed" {
		t.Fatalf("Result: %q, %v, %v", got, ok, err)
	}
	bintest.Eventually(t, 2*time.Second, "the result to expire", func() bool {
		_, ok, _ := b.Result(ctx, key)
		return !ok
	})
}

// TestPoisonedStoreKeepsFollowing: malformed hash fields and junk messages
// (a bad write, another version, someone with write access) are skipped
// and counted, logged once a minute at most; a follower that was running
// and one that loads the poisoned hash both get the next revocation within
// 1 s and stay current. Without skipping, the load fails on the first bad
// field, for good, and the junk message forces such a load.
func TestPoisonedStoreKeepsFollowing(t *testing.T) {
	srv := redistest.Start(t)
	w, running, fresh := newStore(t, srv.Addr), newStore(t, srv.Addr), newStore(t, srv.Addr)
	var logs bintest.Buffer
	fresh.Log = zerolog.New(&logs)
	ctx := context.Background()
	setA := follow(t, running)
	bintest.Eventually(t, time.Second, "a first sync", func() bool { return setA.Stale(time.Now()) < time.Second })
	poison := map[string]string{
		"1:zz":                          "garbage",
		"9:" + strings.Repeat("00", 32): "1 2 3",
		string(appendField(nil, revocation.BySID, session.Digest{7})): "1 2",
		string(appendField(nil, revocation.BySID, session.Digest{8})): "x y z",
	}
	for f, v := range poison {
		if err := w.c.HSet(ctx, w.keys.hash, f, v).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{"junk", "1:zz 1 2 3"} {
		if err := w.c.Publish(ctx, w.keys.channel, m).Err(); err != nil {
			t.Fatal(err)
		}
	}
	setB := follow(t, fresh)
	if _, err := w.Revoke(ctx, sidEntry("after")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	bintest.Eventually(t, time.Second, "the revocation at the running follower", func() bool { return revokedSID(setA, "after") })
	bintest.Eventually(t, time.Second-time.Since(start), "the revocation at the follower that loaded the poisoned hash", func() bool { return revokedSID(setB, "after") })
	t.Logf("both followers refuse the session %v after Revoke", time.Since(start))
	if n := setB.Len(); n != 1 {
		t.Errorf("the fresh follower holds %d entries, want 1 (the malformed ones skipped)", n)
	}
	for _, s := range []*revocation.Set{setA, setB} {
		if st := s.Stale(time.Now()); st > 500*time.Millisecond {
			t.Errorf("stale %v after the poisoning, want under 500 ms (pinged every 100 ms)", st)
		}
	}
	if got := running.malformed.Load(); got != 2 {
		t.Errorf("the running follower counted %d malformed, want 2 (the messages)", got)
	}
	// One more for the fresh follower: counted, not logged again.
	if err := w.c.Publish(ctx, w.keys.channel, "junk").Err(); err != nil {
		t.Fatal(err)
	}
	bintest.Eventually(t, time.Second, "the fresh follower counting the fields and a message",
		func() bool { return fresh.malformed.Load() == uint64(len(poison)+1) })
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Errorf("%d warnings logged, want 1: %q", n, logs.String())
	}
}

// TestForgedExpiryCapped: an entry written into Redis with an Expires far
// in the future, or merged by Revoke with one, lives only maxLifetime
// (1 h here) from its At; one whose At is a day ahead is skipped as
// malformed. Without the cap, the first stays revoked for ten years.
func TestForgedExpiryCapped(t *testing.T) {
	srv := redistest.Start(t)
	w, f := newStore(t, srv.Addr), newStore(t, srv.Addr)
	ctx := context.Background()
	now := time.Now().Unix()
	tenYears := now + 10*365*86400
	forged := sidEntry("forged")
	ahead := sidEntry("ahead")
	for _, kv := range [][2]string{
		{string(appendField(nil, forged.Kind, forged.Digest)), fmt.Sprintf("%d %d 1", now, tenYears)},
		{string(appendField(nil, ahead.Kind, ahead.Digest)), fmt.Sprintf("%d %d 2", now+86400, tenYears)},
	} {
		if err := w.c.HSet(ctx, w.keys.hash, kv[0], kv[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.c.Set(ctx, w.keys.seq, 2, 0).Err(); err != nil {
		t.Fatal(err)
	}
	set := follow(t, f)
	bintest.Eventually(t, time.Second, "the load", func() bool { return revokedSID(set, "forged") })
	if revokedSID(set, "ahead") {
		t.Error("an entry whose At is a day ahead was loaded")
	}
	// Published: a message forged with the next sequence number.
	pub := sidEntry("published")
	msg := fmt.Sprintf("%s %d %d 3", appendField(nil, pub.Kind, pub.Digest), now, tenYears)
	if err := w.c.Publish(ctx, w.keys.channel, msg).Err(); err != nil {
		t.Fatal(err)
	}
	bintest.Eventually(t, time.Second, "the published entry", func() bool { return revokedSID(set, "published") })
	// Revoke merging with the forged entry hands back a capped one.
	got, err := w.Revoke(ctx, forged)
	if err != nil {
		t.Fatal(err)
	}
	if got.Expires > now+3600+5 {
		t.Errorf("Revoke merged with a forged entry returned Expires %d, want at most %d", got.Expires, now+3600+5)
	}
	for _, e := range set.Entries() {
		if e.Expires > e.At+3600+5 {
			t.Errorf("entry %+v lives past At + maxLifetime", e)
		}
	}
	later := now + 3600 + 10
	for _, name := range []string{"forged", "published"} {
		env := session.Envelope{SID: session.HashSID("https://idp.example", name), Started: now - 10}
		if set.Revoked(&env, later) {
			t.Errorf("%s: still revoked after maxLifetime", name)
		}
	}
	if n := set.Prune(later); n != 2 {
		t.Errorf("Prune after maxLifetime dropped %d entries, want 2", n)
	}
	if got := f.malformed.Load(); got != 1 {
		t.Errorf("counted %d malformed, want 1 (the entry a day ahead)", got)
	}
}

// TestFollowerCapsEntries: a follower holds at most maxEntries; a load of
// more stops there and a published entry beyond it is refused, both
// counted. Without the cap it holds all 6.
func TestFollowerCapsEntries(t *testing.T) {
	srv := redistest.Start(t)
	w, f := newStore(t, srv.Addr), newStore(t, srv.Addr)
	f.maxEntries = 3
	ctx := context.Background()
	for i := range 5 {
		if _, err := w.Revoke(ctx, sidEntry("s"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	set := follow(t, f)
	bintest.Eventually(t, time.Second, "the load", func() bool { return set.Len() == 3 })
	if _, err := w.Revoke(ctx, sidEntry("s5")); err != nil {
		t.Fatal(err)
	}
	bintest.Eventually(t, time.Second, "the sixth entry refused", func() bool { return f.refused.Load() == 3 })
	if n := set.Len(); n != 3 {
		t.Errorf("the follower holds %d entries, want 3", n)
	}
}
