// Package redis is the revocation store for deployments of many machines:
// every agent and proxy shares one Redis 7 or Valkey server (contract §7,
// revocation.store: redis). It also coordinates refresh-token grants across
// agents (see [Store.Acquire]).
//
// Layout, under the configured key prefix P (default "tokenhandler:"):
//
//	P revocations          hash: "<kind>:<hex digest>" → "<at> <expires> <seq>"
//	P revocations:expiry   sorted set: the hash's fields scored by expires, for pruning
//	P revocations:seq      the sequence number, INCR per recorded entry
//	P revocations:epoch    random, set when the server first holds the list:
//	                       a new one means the server lost its data
//	P revocations          (pub/sub channel) every recorded entry, as its field and value
//	P refresh:lock:<hex>   a refresh grant in progress (SET NX PX, renewed)
//	P refresh:result:<hex> its sealed result, kept for the grace period
//
// Revoke records an entry, increments the sequence number and publishes the
// entry in one Lua script, so entries are published in sequence order.
// Follow subscribes, then loads every live entry (MULTI: epoch, seq; then
// HSCAN in batches of 1,000, at most MaxEntries) and applies what it is
// pushed; a gap in the sequence numbers, an error or a lost connection makes
// it load everything again, with backoff from 100 ms to 500 ms between attempts.
//
// What a follower reads from Redis is not trusted further than it must be
// (anyone with write access can put anything there): a field, value or
// message it cannot parse is skipped, counted and logged, never
// a reason to stop or reload; an entry's Expires is capped at
// min(At, now) + maxLifetime (the daemon's session.max_lifetime, which
// [Store.SetMaxLifetime] changes at a reload) and an entry whose At is more than a minute
// ahead of the follower's clock is skipped as malformed, so a forged entry
// expires like any other; beyond MaxEntries entries the rest are refused
// (and counted, and logged). It pings every second, and each answer marks the
// set current (revocation.Set.Synced), so Set.Stale grows from the first
// second of an outage. Every key of one store is named in the scripts that
// use it, but they are not in one hash slot: Redis Cluster is not supported.
//
// The client is github.com/redis/go-redis/v9 (docs/operations.md says why).
package redis

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/revocation"
	"github.com/tokenhandler/tokenhandler/session"
)

// Store is a revocation.Store on Redis, and the agents' refresh
// coordinator. It is safe for concurrent use and must not be copied; Close
// it when done.
type Store struct {
	c *goredis.Client
	// maxLifetime is session.max_lifetime in seconds (SetMaxLifetime);
	// raised counts the times it grew, which makes followers load again.
	maxLifetime atomic.Int64
	raised      atomic.Uint64
	keys        keys
	// pingEvery is how often Follow pings an idle subscription; tests
	// shorten it.
	pingEvery time.Duration
	lockTTL   time.Duration // defaultLockTTL; tests shorten it
	// maxEntries caps a follower's list (MaxEntries); tests lower it.
	maxEntries int

	// Log gets a warning when a follower skips malformed entries or refuses
	// entries beyond MaxEntries, at most one a minute. Zero value: no
	// logging. Set it before Follow.
	Log zerolog.Logger

	// malformed counts the hash fields and published messages followers
	// skipped because they could not be parsed, or held times no agent
	// writes (an At more than a minute ahead): entries this daemon does
	// not enforce. refused counts the entries refused because the list
	// held maxEntries already (a load does not read the hash past the
	// batch where that happened: those are not counted). warn logs both.
	malformed atomic.Uint64
	refused   atomic.Uint64
	lastWarn  atomic.Int64 // Unix nanoseconds of the last warning
}

// MaxEntries is the most entries a follower holds. A list that long is
// about 100 MB in each daemon; back-channel logouts alone do not get near
// it within a session lifetime. A load stops scanning at the batch that
// passes it, and messages beyond it are dropped: those revocations are not
// enforced, and [Store.Refused] counts the ones seen.
const MaxEntries = 1_000_000

// maxSkew is how far ahead of a follower's clock an entry's At may be
// (the agents' clocks differ a little); later, the entry is malformed.
const maxSkew = time.Minute

type keys struct {
	hash, expiry, seq, epoch, channel, lock, result string
}

// ErrInvalidEntry is Revoke's error for an entry it cannot record: an
// unknown kind, a zero digest, or times that are not positive and ordered.
var ErrInvalidEntry = errors.New("redis: invalid revocation entry")

// New returns a Store for cfg (settings.Revocation's redis section, checked).
// Entries recorded without an expiry expire maxLifetime after their At. New
// does not connect: a server that is down makes Revoke fail and Follow
// retry, and the daemon starts anyway (fail open).
func New(cfg settings.RedisSettings, maxLifetime time.Duration) (*Store, error) {
	if cfg.Address == "" {
		return nil, errors.New("redis: no address")
	}
	if cfg.KeyPrefix == "" {
		return nil, errors.New("redis: no key prefix")
	}
	if maxLifetime < time.Second {
		return nil, fmt.Errorf("redis: the session lifetime %v is under a second", maxLifetime)
	}
	host, _, err := net.SplitHostPort(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("redis: address %q: %w", cfg.Address, err)
	}
	opt := &goredis.Options{
		Addr:     cfg.Address,
		Username: cfg.Username,
		Password: cfg.Password,
		// RESP2 works with every Redis 7 and Valkey; nothing here needs 3.
		Protocol:        2,
		DisableIdentity: true, // no CLIENT SETINFO: older servers log an error for it
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
		DialTimeout:  2 * time.Second,
		ReadTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
		MaxRetries:   1,
	}
	if cfg.TLS {
		opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	}
	quietOnce.Do(func() { goredis.SetLogger(quiet{}) })
	p := cfg.KeyPrefix
	s := &Store{
		c: goredis.NewClient(opt),
		keys: keys{
			hash: p + "revocations", expiry: p + "revocations:expiry", seq: p + "revocations:seq",
			epoch: p + "revocations:epoch", channel: p + "revocations",
			lock: p + "refresh:lock:", result: p + "refresh:result:",
		},
		pingEvery:  time.Second,
		lockTTL:    defaultLockTTL,
		maxEntries: MaxEntries,
	}
	s.maxLifetime.Store(int64(maxLifetime / time.Second))
	return s, nil
}

// SetMaxLifetime makes d the session lifetime from now on: a daemon's
// reload calls it with the longest session.max_lifetime of its new
// configuration (it implements revocation.MaxLifetimeSetter). Revoke gives
// entries without an expiry d, and followers cap entries at min(At, now) +
// d. When d is longer than before, every Follow of s loads the list again
// (within a second): an entry it capped with the shorter lifetime gets back
// the expiry it was recorded with, up to the new cap. Entries are never
// made to live longer than they were recorded for: the agent records each
// one for as long as a session it could end may last (agent.md). It
// refuses a d under a second, as New does, and is safe to call at any
// time.
func (s *Store) SetMaxLifetime(d time.Duration) error {
	if d < time.Second {
		return fmt.Errorf("redis: the session lifetime %v is under a second", d)
	}
	if old := s.maxLifetime.Swap(int64(d / time.Second)); int64(d/time.Second) > old {
		s.raised.Add(1)
	}
	return nil
}

// check caps e's Expires at min(At, now) + maxLifetime and reports
// whether e may be applied: false for an At more than maxSkew ahead of now
// (counted as malformed).
func (s *Store) check(e *revocation.Entry, now time.Time) bool {
	if e.At <= 0 || e.At > now.Add(maxSkew).Unix() {
		s.malformed.Add(1)
		return false
	}
	e.Expires = min(e.Expires, min(e.At, now.Unix())+s.maxLifetime.Load())
	return true
}

// warn logs msg with the counters, at most once a minute.
func (s *Store) warn(now time.Time, msg string) {
	last := s.lastWarn.Load()
	if last != 0 && now.UnixNano()-last < int64(time.Minute) || !s.lastWarn.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	s.Log.Warn().Uint64("malformed", s.malformed.Load()).Uint64("refused", s.refused.Load()).
		Int("max_entries", s.maxEntries).Msg(msg)
}

// Close closes the connections; a Follow in progress ends with an error.
func (s *Store) Close() error { return s.c.Close() }

// revokeScript records one entry, merged with what the hash holds for its
// field (the later At and the later Expires win, as in revocation.Set),
// with the next sequence number, and publishes it; it also forgets up to 100
// entries that expired. KEYS: hash, expiry, seq, epoch. ARGV: field, at,
// expires, now, channel, a new epoch.
var revokeScript = goredis.NewScript(`
local at, exp = tonumber(ARGV[2]), tonumber(ARGV[3])
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local oa, oe = string.match(old, '^(%d+) (%d+) ')
  if oa then
    at = math.max(at, tonumber(oa))
    exp = math.max(exp, tonumber(oe))
  end
end
redis.call('SET', KEYS[4], ARGV[6], 'NX')
local seq = redis.call('INCR', KEYS[3])
local v = string.format('%d %d %d', at, exp, seq)
redis.call('HSET', KEYS[1], ARGV[1], v)
redis.call('ZADD', KEYS[2], exp, ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4], 'LIMIT', 0, 100)
for _, f in ipairs(dead) do
  redis.call('HDEL', KEYS[1], f)
  redis.call('ZREM', KEYS[2], f)
end
redis.call('PUBLISH', ARGV[5], ARGV[1] .. ' ' .. v)
return v
`)

// Revoke records e and publishes it to every follower. An entry without
// Expires expires maxLifetime after At. The returned entry carries its Seq
// and the merged At and Expires.
func (s *Store) Revoke(ctx context.Context, e revocation.Entry) (revocation.Entry, error) {
	if e.Expires == 0 && e.At > 0 {
		e.Expires = e.At + s.maxLifetime.Load()
	}
	if (e.Kind != revocation.BySID && e.Kind != revocation.BySub) || e.Digest == (session.Digest{}) ||
		e.At <= 0 || e.Expires <= e.At {
		return e, ErrInvalidEntry
	}
	field := appendField(nil, e.Kind, e.Digest)
	v, err := revokeScript.Run(ctx, s.c, []string{s.keys.hash, s.keys.expiry, s.keys.seq, s.keys.epoch},
		field, e.At, e.Expires, time.Now().Unix(), s.keys.channel, revocation.NewEpoch()).Text()
	if err != nil {
		return e, fmt.Errorf("redis: recording a revocation: %w", err)
	}
	got, err := parseEntry(string(field), v)
	if err != nil {
		return e, err
	}
	if !s.check(&got, time.Now()) {
		// Merged with a forged entry's times: the caller gets its own.
		got.At, got.Expires = e.At, e.Expires
	}
	return got, nil
}

// appendField appends the hash field of an entry: "<kind>:<hex digest>".
func appendField(dst []byte, k revocation.Kind, d session.Digest) []byte {
	dst = strconv.AppendUint(dst, uint64(k), 10)
	dst = append(dst, ':')
	return hex.AppendEncode(dst, d[:])
}

var errBadEntry = errors.New("redis: a malformed revocation entry in the store")

// parseEntry reads a hash field and its value "<at> <expires> <seq>".
func parseEntry(field, value string) (revocation.Entry, error) {
	var e revocation.Entry
	kind, digest, ok := strings.Cut(field, ":")
	if !ok || len(digest) != 2*len(e.Digest) {
		return e, errBadEntry
	}
	switch kind {
	case "1":
		e.Kind = revocation.BySID
	case "2":
		e.Kind = revocation.BySub
	default:
		return e, errBadEntry
	}
	if _, err := hex.Decode(e.Digest[:], []byte(digest)); err != nil {
		return e, errBadEntry
	}
	f := strings.Fields(value)
	if len(f) != 3 {
		return e, errBadEntry
	}
	var err1, err2, err3 error
	e.At, err1 = strconv.ParseInt(f[0], 10, 64)
	e.Expires, err2 = strconv.ParseInt(f[1], 10, 64)
	e.Seq, err3 = strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return e, errBadEntry
	}
	return e, nil
}

// parseMessage reads a published entry: "<field> <at> <expires> <seq>".
func parseMessage(payload string) (revocation.Entry, error) {
	field, value, ok := strings.Cut(payload, " ")
	if !ok {
		return revocation.Entry{}, errBadEntry
	}
	return parseEntry(field, value)
}

// quiet drops go-redis's own log lines, which it writes to stderr in a
// format of its own. A server that cannot be reached shows in the daemons'
// logs and metrics instead: Revoke's errors and Set.Stale.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

var quietOnce sync.Once

var _ revocation.MaxLifetimeSetter = (*Store)(nil)
