package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenhandler/tokenhandler/revocation"
)

// defaultLockTTL is how long a refresh lock outlives an agent that died holding
// it; the holder renews it every third of that while its grant runs.
const defaultLockTTL = 6 * time.Second

// renewScript extends the lock only while it is still this holder's.
var renewScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript deletes the lock only while it is still this holder's.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Acquire takes the refresh lock for key (the agent's hash of a session key
// and a refresh token, never the token) unless another agent holds it. When
// won, the lock is renewed until release is called, which gives it up;
// release is never nil and may be called more than once. A lock whose holder
// died expires after 6 s.
func (s *Store) Acquire(ctx context.Context, key [32]byte) (release func(), won bool, err error) {
	name := s.keys.lock + hex.EncodeToString(key[:])
	token := rand.Text() // a random value: only this holder renews or deletes the lock
	won, err = s.c.SetNX(ctx, name, token, s.lockTTL).Result()
	if err != nil {
		return func() {}, false, fmt.Errorf("redis: taking a refresh lock: %w", err)
	}
	if !won {
		return func() {}, false, nil
	}
	held, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		// Renewals start every third of the TTL, counted from the last
		// one's start, so that a slow renewal does not delay the next; one
		// that starts late moves the count, so missed ones are not made up
		// in a burst.
		for next := time.Now().Add(s.lockTTL / 3); revocation.Wait(held, time.Until(next)) == nil; next = next.Add(s.lockTTL / 3) {
			if now := time.Now(); now.After(next) {
				next = now
			}
			c, cancel := context.WithTimeout(held, s.lockTTL/3)
			renewScript.Run(c, s.c, []string{name}, token, s.lockTTL.Milliseconds())
			cancel()
		}
	})
	return sync.OnceFunc(func() {
		stop()
		wg.Wait()
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		// A failure leaves the lock to expire.
		releaseScript.Run(c, s.c, []string{name}, token)
	}), true, nil
}

// Result returns the sealed result another agent stored for key, if any.
func (s *Store) Result(ctx context.Context, key [32]byte) ([]byte, bool, error) {
	b, err := s.c.Get(ctx, s.keys.result+hex.EncodeToString(key[:])).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redis: reading a refresh result: %w", err)
	}
	return b, true, nil
}

// SetResult keeps a sealed result for key for ttl. The caller seals it: it
// holds tokens.
func (s *Store) SetResult(ctx context.Context, key [32]byte, sealed []byte, ttl time.Duration) error {
	if err := s.c.Set(ctx, s.keys.result+hex.EncodeToString(key[:]), sealed, ttl).Err(); err != nil {
		return fmt.Errorf("redis: storing a refresh result: %w", err)
	}
	return nil
}
