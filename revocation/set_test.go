package revocation

import (
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/session"
)

const iss = "https://op.example"

func TestRevoked(t *testing.T) {
	sid, otherSID := session.HashSID(iss, "s1"), session.HashSID(iss, "s2")
	sub, otherSub := session.HashSub(iss, "alice"), session.HashSub(iss, "bob")
	s := NewSet()
	s.Add(
		Entry{Kind: BySID, Digest: sid, At: 1000, Expires: 2000, Seq: 1},
		Entry{Kind: BySub, Digest: sub, At: 1500, Expires: 3000, Seq: 2},
	)
	for _, tc := range []struct {
		name string
		env  session.Envelope
		now  int64
		want bool
	}{
		{"revoked sid", session.Envelope{SID: sid, Sub: otherSub, Started: 900}, 1100, true},
		{"revoked sid, started later: the Provider session is over all the same", session.Envelope{SID: sid, Started: 1900}, 1950, true},
		{"sid entry expired", session.Envelope{SID: sid, Started: 900}, 2000, false},
		{"other sid", session.Envelope{SID: otherSID, Sub: otherSub, Started: 900}, 1100, false},
		{"sub, started before At", session.Envelope{SID: otherSID, Sub: sub, Started: 1400}, 1600, true},
		{"sub, started at At", session.Envelope{Sub: sub, Started: 1500}, 1600, true},
		{"sub, started after At: a new login", session.Envelope{Sub: sub, Started: 1501}, 1600, false},
		{"sub entry expired", session.Envelope{Sub: sub, Started: 1400}, 3000, false},
		{"no digests: OAuth-only session", session.Envelope{Started: 900}, 1100, false},
	} {
		if got := s.Revoked(&tc.env, tc.now); got != tc.want {
			t.Errorf("%s: Revoked = %v, want %v", tc.name, got, tc.want)
		}
	}
	if s.Len() != 2 || s.Seq() != 2 {
		t.Errorf("Len %d, Seq %d; want 2, 2", s.Len(), s.Seq())
	}
}

func TestAddKeepsTheWiderEntry(t *testing.T) {
	sub := session.HashSub(iss, "alice")
	s := NewSet()
	s.Add(Entry{Kind: BySub, Digest: sub, At: 2000, Expires: 5000, Seq: 7})
	s.Add(Entry{Kind: BySub, Digest: sub, At: 1000, Expires: 4000, Seq: 3}) // an older one, replayed
	if !s.Revoked(&session.Envelope{Sub: sub, Started: 1999}, 4500) {
		t.Error("an older entry narrowed the newer one")
	}
	if s.Seq() != 7 {
		t.Errorf("Seq %d, want 7", s.Seq())
	}
	s.Add(Entry{Kind: 9, Digest: sub, At: 1, Expires: 9999})
	if s.Len() != 1 {
		t.Errorf("an unknown kind was added: Len %d", s.Len())
	}
}

func TestPruneAndReset(t *testing.T) {
	s := NewSet()
	for i := range 10 {
		s.Add(Entry{Kind: BySID, Digest: session.HashSID(iss, string(rune('a'+i))), At: 0, Expires: int64(100 + i)})
	}
	if n := s.Prune(105); n != 6 || s.Len() != 4 {
		t.Errorf("Prune(105) forgot %d, left %d; want 6 (Expires 100-105), 4", n, s.Len())
	}
	if len(s.Entries()) != 4 {
		t.Errorf("Entries: %d, want 4", len(s.Entries()))
	}
	s.Reset([]Entry{{Kind: BySub, Digest: session.HashSub(iss, "x"), Expires: 1000}}, 42)
	if s.Len() != 1 || s.Seq() != 42 {
		t.Errorf("after Reset: Len %d, Seq %d; want 1, 42", s.Len(), s.Seq())
	}
}

func TestStale(t *testing.T) {
	s := NewSet()
	now := time.Unix(10_000, 0)
	if s.Stale(now) < time.Hour {
		t.Errorf("a set never synced is stale by %v", s.Stale(now))
	}
	s.Synced(now.Add(-3 * time.Second))
	if got := s.Stale(now); got != 3*time.Second {
		t.Errorf("Stale = %v, want 3s", got)
	}
}
