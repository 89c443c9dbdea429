// Package revocation is the set of sessions that ended before their cookies
// did: a user logged out at the OpenID Provider, or an administrator ended
// their sessions there, and the Provider told the agent through OpenID
// Connect Back-Channel Logout 1.0. Cookies are stateless, but every v2
// cookie carries its session's identity (session.Envelope: the digests of
// the Provider's sid and of iss+sub, and the start time), so a short list
// of ended sessions is enough to refuse them everywhere:
//
//   - by sid: the Provider session sid is over, and with it every token
//     handler session that began inside it;
//   - by sub: every session of that subject started at or before a time is
//     over ("log this user out everywhere").
//
// An entry lives only as long as a session can (session.max_lifetime):
// after that no cookie it could refuse is still live. A Set forgets an entry
// at its Expires and knows no lifetime of its own; the agent that records
// an entry sets Expires to cover every session it may have started (see
// MaxLifetimeSetter for how a reload changes the lifetime).
//
// A Set is the in-memory list that the agent and every proxy consult on
// each request, without allocating and without a network call. A Store
// carries entries from the agent that records them to every Set: the
// embedded store (package revocation/embedded: the agent persists the list
// under a state directory and serves it as a feed that proxies follow) or
// Redis (package revocation/redis) for deployments of many machines.
package revocation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/tokenhandler/tokenhandler/session"
)

// Kind says what an Entry's digest identifies.
type Kind uint8

const (
	// BySID ends the sessions whose envelope has this SID digest.
	BySID Kind = 1
	// BySub ends the sessions whose envelope has this Sub digest and that
	// started at or before the entry's At.
	BySub Kind = 2
)

// Entry is one revocation. It is plain data and may be copied.
type Entry struct {
	Kind   Kind
	Digest session.Digest // session.HashSID(iss, sid) or session.HashSub(iss, sub)
	// At is a Unix time in seconds. For BySub, sessions that started at or
	// before At are over; for BySID it is when the entry was recorded.
	At int64
	// Expires is the Unix time in seconds from which the entry can be
	// forgotten: At plus session.max_lifetime.
	Expires int64
	// Seq is the store's sequence number, increasing with every entry a
	// store records; 0 before a store recorded it.
	Seq uint64
}

// Store records revocations and carries them to the Sets that follow it.
// Implementations are safe for concurrent use.
type Store interface {
	// Revoke records e durably and returns it with its Seq. It fails when
	// the entry could not be recorded (the back-channel endpoint then
	// answers 503, so that the Provider retries).
	Revoke(ctx context.Context, e Entry) (Entry, error)
	// Follow keeps set current until ctx ends: it loads every live entry,
	// then applies new ones as they come, and resynchronises after an
	// outage. It returns ctx's error. While it cannot reach the store, set
	// keeps what it has (fail-open; see Set.Stale).
	Follow(ctx context.Context, set *Set) error
	// Close releases the store's resources.
	Close() error
}

// MaxLifetimeSetter is a Store whose entries' lifetime follows
// session.max_lifetime (embedded.Log, redis.Store): the lifetime an entry
// without an Expires gets and, for Redis, the cap on what followers read.
// Both daemons' reloads call SetMaxLifetime with the longest
// session.max_lifetime of the new configuration, so that raising it (or
// adding an application with a longer one) takes effect without a restart.
// It fails for a lifetime the store's constructor refuses, and is safe for
// concurrent use with the Store's other methods.
type MaxLifetimeSetter interface {
	SetMaxLifetime(d time.Duration) error
}

// NewEpoch returns 32 random hex digits: a name for a store's list that a
// list started afresh does not share, so that a follower holding another
// epoch knows to reset.
func NewEpoch() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Retry is the loop of a Store's Follow: it calls attempt until ctx ends,
// and returns ctx's error. After an attempt that failed it waits lo,
// doubling up to hi; an attempt that succeeds, or that calls its reached
// argument (it got through to the store), starts the pauses from lo again.
func Retry(ctx context.Context, lo, hi time.Duration, attempt func(reached func()) error) error {
	pause := lo
	for {
		err := attempt(func() { pause = lo })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			pause = lo
			continue
		}
		if err := Wait(ctx, pause); err != nil {
			return err
		}
		pause = min(2*pause, hi)
	}
}

// Wait waits d, or less if ctx ends first: it then returns ctx's error.
func Wait(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d): // collected when it is no longer referenced (Go 1.23)
		return nil
	}
}
