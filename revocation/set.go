package revocation

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenhandler/tokenhandler/session"
)

// Set is the in-memory list of revocations one daemon consults. Revoked
// allocates nothing and takes a read lock only when the set is not empty;
// Add and Reset take the write lock, and Prune only to delete what it
// found expired under the read lock. The zero value is not usable:
// make one with NewSet. A Set is safe for concurrent use and must not be
// copied.
type Set struct {
	n      atomic.Int64 // len(sids) + len(subs), read without the lock
	synced atomic.Int64 // Unix nanoseconds of the last successful sync; 0: never
	mu     sync.RWMutex
	sids   map[session.Digest]Entry
	subs   map[session.Digest]Entry
	seq    uint64 // the highest Seq added
}

// NewSet returns an empty Set.
func NewSet() *Set {
	return &Set{sids: map[session.Digest]Entry{}, subs: map[session.Digest]Entry{}}
}

// Revoked reports whether a session with this envelope is over at Unix
// time now: its SID digest is revoked, or its Sub digest is revoked at or
// after the session started. Entries that expired before now do not count.
// A zero digest (a session without sid, an OAuth-only session without sub)
// never matches.
func (s *Set) Revoked(env *session.Envelope, now int64) bool {
	if s.n.Load() == 0 {
		return false
	}
	var zero session.Digest
	s.mu.RLock()
	defer s.mu.RUnlock()
	if env.SID != zero {
		if e, ok := s.sids[env.SID]; ok && now < e.Expires {
			return true
		}
	}
	if env.Sub != zero {
		if e, ok := s.subs[env.Sub]; ok && now < e.Expires && env.Started <= e.At {
			return true
		}
	}
	return false
}

// Add records entries. For one sub the later At wins (it ends more
// sessions), and so does the later Expires for one sid.
func (s *Set) Add(entries ...Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range entries {
		s.add(e)
	}
	s.n.Store(int64(len(s.sids) + len(s.subs)))
}

func (s *Set) add(e Entry) {
	if e.Seq > s.seq {
		s.seq = e.Seq
	}
	var m map[session.Digest]Entry
	switch e.Kind {
	case BySID:
		m = s.sids
	case BySub:
		m = s.subs
	default:
		return
	}
	if old, ok := m[e.Digest]; ok {
		e.At, e.Expires = max(e.At, old.At), max(e.Expires, old.Expires)
	}
	m[e.Digest] = e
}

// Reset replaces every entry with entries and sets the sequence number to
// seq: a follower's full resynchronisation.
func (s *Set) Reset(entries []Entry, seq uint64) {
	// The new maps are built outside the lock: with 100,000 entries that
	// takes about 17 ms, which every request would otherwise wait for.
	next := NewSet()
	for _, e := range entries {
		next.add(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sids, s.subs, s.seq = next.sids, next.subs, seq
	s.n.Store(int64(len(s.sids) + len(s.subs)))
}

// Prune forgets the entries that expired before Unix time now and returns
// how many it forgot. It looks for them under the read lock, which
// requests share (a million entries take some 20 ms to scan), and takes
// the write lock only to delete what it found.
func (s *Set) Prune(now int64) int {
	var expired [2][]session.Digest
	s.mu.RLock()
	for i, m := range [2]map[session.Digest]Entry{s.sids, s.subs} {
		for d, e := range m {
			if e.Expires <= now {
				expired[i] = append(expired[i], d)
			}
		}
	}
	s.mu.RUnlock()
	if len(expired[0])+len(expired[1]) == 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for i, m := range [2]map[session.Digest]Entry{s.sids, s.subs} {
		for _, d := range expired[i] {
			// Looked up again: an Add or a Reset may have come between.
			if e, ok := m[d]; ok && e.Expires <= now {
				delete(m, d)
				n++
			}
		}
	}
	s.n.Store(int64(len(s.sids) + len(s.subs)))
	return n
}

// PruneEvery prunes s at the time now gives, every interval, until ctx
// ends. Each daemon runs it beside its follower, whatever the store: a
// follower only adds, and a set never pruned keeps every revocation it
// ever saw (a Redis follower then refuses new ones at its entry cap).
func (s *Set) PruneEvery(ctx context.Context, every time.Duration, now func() time.Time) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Prune(now().Unix())
		}
	}
}

// Entries returns a copy of every entry, in no particular order.
func (s *Set) Entries() []Entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Entry, 0, len(s.sids)+len(s.subs))
	for _, m := range []map[session.Digest]Entry{s.sids, s.subs} {
		for _, e := range m {
			out = append(out, e)
		}
	}
	return out
}

// Len returns the number of entries.
func (s *Set) Len() int { return int(s.n.Load()) }

// Seq returns the highest sequence number added: where a follower resumes.
func (s *Set) Seq() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.seq
}

// Synced records that the set is current as of t (a follower reached its
// store).
func (s *Set) Synced(t time.Time) { s.synced.Store(t.UnixNano()) }

// Stale returns how long ago the set was last known current, at time now;
// a set never synced is stale since the Unix epoch. A daemon exports it as
// a gauge, and may refuse requests when it exceeds a limit (fail closed).
func (s *Set) Stale(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, s.synced.Load()))
}
