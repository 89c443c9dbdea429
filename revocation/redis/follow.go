package redis

import (
	"context"
	"errors"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenhandler/tokenhandler/revocation"
)

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// errGap ends a subscription whose sequence numbers skipped one: a message
// was lost, and the follower loads everything again.
var errGap = errors.New("redis: a gap in the revocation sequence")

// Follow keeps set current until ctx ends, and returns ctx's error. While
// the server cannot be reached set keeps what it has and Set.Stale grows.
//
// After each (re)connection it loads every live entry and replaces set's
// entries with them (Set.Reset). When the server's epoch changed (it lost
// its data: it ran without persistence and restarted), the follower keeps
// its own live entries as well, so a restart of Redis does not bring back
// sessions that were revoked.
func (s *Store) Follow(ctx context.Context, set *revocation.Set) error {
	var epoch string // the server's epoch at the last load; "" before the first
	backoff := minBackoff
	for {
		err := s.follow(ctx, set, &epoch, func() { backoff = minBackoff })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_ = err // the connection failed or a message was lost: start over
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
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
	last, err := s.load(ctx, set, epoch)
	if err != nil {
		return err
	}
	connected()
	for {
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
			set.Synced(s.now())
		case *goredis.Message:
			e, err := parseMessage(m.Payload)
			if err != nil {
				return err
			}
			switch {
			case e.Seq <= last: // already loaded
			case e.Seq == last+1:
				last = e.Seq
			default:
				return errGap
			}
			set.Add(e)
			set.Synced(s.now())
		}
	}
}

// load replaces set's entries with the server's live ones and returns the
// server's sequence number.
func (s *Store) load(ctx context.Context, set *revocation.Set, epoch *string) (uint64, error) {
	var epochCmd, seqCmd *goredis.StringCmd
	var hashCmd *goredis.MapStringStringCmd
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.SetNX(ctx, s.keys.epoch, newEpoch(), 0)
		epochCmd = p.Get(ctx, s.keys.epoch)
		seqCmd = p.Get(ctx, s.keys.seq)
		hashCmd = p.HGetAll(ctx, s.keys.hash)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) { // Nil: no seq yet
		return 0, err
	}
	var seq uint64
	if seqCmd.Err() == nil {
		if seq, err = seqCmd.Uint64(); err != nil {
			return 0, errBadEntry
		}
	}
	now := s.now()
	var entries []revocation.Entry
	for field, value := range hashCmd.Val() {
		e, err := parseEntry(field, value)
		if err != nil {
			return 0, err
		}
		if e.Expires > now.Unix() {
			entries = append(entries, e)
		}
	}
	got := epochCmd.Val()
	if *epoch != "" && got != *epoch {
		// The server lost its data: what this follower knew still holds.
		for _, e := range set.Entries() {
			if e.Expires > now.Unix() {
				entries = append(entries, e)
			}
		}
	}
	*epoch = got
	set.Reset(entries, seq)
	set.Synced(now)
	return seq, nil
}
