package redis

import (
	"context"
	"errors"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenhandler/tokenhandler/revocation"
)

// A follower that lost Redis tries again after minBackoff, doubling up to
// maxBackoff. The cap is what a logout recorded just after Redis came back
// may wait before it reaches this follower, so it stays under the issue's
// 1 s (it was 2 s: TestRedisRevocation saw a logout arrive late); one
// connection attempt every half second costs Redis nothing.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 500 * time.Millisecond
)

// errGap ends a subscription whose sequence numbers skipped one: a message
// was lost, and the follower loads everything again.
var errGap = errors.New("redis: a gap in the revocation sequence")

// Follow keeps set current until ctx ends, and returns ctx's error. While
// the server cannot be reached set keeps what it has and Set.Stale grows.
//
// After each (re)connection, and within a second of a SetMaxLifetime that
// raised the lifetime, it loads every live entry and replaces set's entries
// with them (Set.Reset). When the server's epoch changed (it lost
// its data: it ran without persistence and restarted), the follower keeps
// its own live entries as well, so a restart of Redis does not bring back
// sessions that were revoked.
func (s *Store) Follow(ctx context.Context, set *revocation.Set) error {
	var epoch string // the server's epoch at the last load; "" before the first
	// follow fails when the connection does or a message was lost: start over.
	return revocation.Retry(ctx, minBackoff, maxBackoff, func(connected func()) error {
		return s.follow(ctx, set, &epoch, connected)
	})
}

// follow subscribes, loads, and applies messages until an error.
func (s *Store) follow(ctx context.Context, set *revocation.Set, epoch *string, connected func()) error {
	ps := s.c.Subscribe(ctx) // connects lazily
	defer ps.Close()
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	if err := ps.Subscribe(ctx, s.keys.channel); err != nil {
		return err
	}
	// Wait for the confirmation: from here on nothing published is missed,
	// so the load below and the messages after it overlap, never gap.
	for {
		msg, err := ps.ReceiveTimeout(ctx, 2*time.Second)
		if err != nil {
			return err
		}
		if _, ok := msg.(*goredis.Subscription); ok {
			break
		}
	}
	raised := s.raised.Load()
	last, err := s.load(ctx, set, epoch, false)
	if err != nil {
		return err
	}
	connected()
	for {
		if r := s.raised.Load(); r != raised {
			// SetMaxLifetime raised the cap: entries capped with the old
			// one get their recorded expiry back from the hash, and those
			// it dropped as expired come back; what set holds stays. The
			// subscription stays open, so, as at the first load, nothing
			// falls between.
			raised = r
			if last, err = s.load(ctx, set, epoch, true); err != nil {
				return err
			}
		}
		msg, err := ps.ReceiveTimeout(ctx, s.pingEvery)
		if err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				// Idle: ask the server whether it is still there; its
				// pong marks the set current.
				if err := ps.Ping(ctx); err != nil {
					return err
				}
				continue
			}
			return err
		}
		switch m := msg.(type) {
		case *goredis.Pong:
			set.Synced(time.Now())
		case *goredis.Message:
			now := time.Now()
			e, err := parseMessage(m.Payload)
			if err != nil {
				// Not from Revoke: no sequence number to miss.
				s.malformed.Add(1)
				s.warn(now, "redis: skipped a malformed revocation message")
				continue
			}
			switch {
			case e.Seq <= last: // already loaded
			case e.Seq == last+1:
				last = e.Seq
			default:
				return errGap
			}
			switch {
			case !s.check(&e, now):
				s.warn(now, "redis: skipped a malformed revocation message")
			case set.Len() >= s.maxEntries:
				s.refused.Add(1)
				s.warn(now, "redis: the revocation list is full: refused an entry")
			default:
				set.Add(e)
			}
			set.Synced(now)
		}
	}
}

// scanBatch is how many fields one HSCAN asks for.
const scanBatch = 1000

// load replaces set's entries with the server's live ones and returns the
// server's sequence number; with keep (or when the server's epoch changed)
// set's live entries stay too, merged with the server's (the later Expires
// wins). It reads the sequence number first, then scans
// the hash: every entry up to that number is in the hash (the script
// records and numbers it at once) and every later one is published to the
// subscription already open, so nothing falls between the two.
func (s *Store) load(ctx context.Context, set *revocation.Set, epoch *string, keep bool) (uint64, error) {
	var epochCmd, seqCmd *goredis.StringCmd
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.SetNX(ctx, s.keys.epoch, revocation.NewEpoch(), 0)
		epochCmd = p.Get(ctx, s.keys.epoch)
		seqCmd = p.Get(ctx, s.keys.seq)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) { // Nil: no seq yet
		return 0, err
	}
	var seq uint64
	if seqCmd.Err() == nil {
		if seq, err = seqCmd.Uint64(); err != nil {
			// Not Revoke's (INCR would fail on it too): start from 0.
			s.malformed.Add(1)
			s.warn(time.Now(), "redis: the revocation sequence number is malformed")
		}
	}
	now := time.Now()
	var entries []revocation.Entry
	bad, full := s.malformed.Load(), false
	var cursor uint64
	for {
		kv, next, err := s.c.HScan(ctx, s.keys.hash, cursor, "", scanBatch).Result()
		if err != nil {
			return 0, err
		}
		for i := 0; i+1 < len(kv); i += 2 {
			e, err := parseEntry(kv[i], kv[i+1])
			if err != nil {
				s.malformed.Add(1)
				continue
			}
			if !s.check(&e, now) || e.Expires <= now.Unix() {
				continue
			}
			if len(entries) >= s.maxEntries {
				s.refused.Add(1)
				full = true
				continue
			}
			entries = append(entries, e)
		}
		if cursor = next; cursor == 0 || full {
			break
		}
	}
	switch {
	case full:
		s.warn(now, "redis: the revocation list holds more entries than a follower keeps: the rest were not loaded")
	case s.malformed.Load() > bad:
		s.warn(now, "redis: skipped malformed revocation entries")
	}
	got := epochCmd.Val()
	if keep || *epoch != "" && got != *epoch {
		// The server lost its data (what this follower knew still holds),
		// or a raised lifetime reloads: it lifts entries, never drops one.
		for _, e := range set.Entries() {
			if e.Expires > now.Unix() && len(entries) < s.maxEntries {
				entries = append(entries, e)
			}
		}
	}
	*epoch = got
	set.Reset(entries, seq)
	set.Synced(now)
	return seq, nil
}
