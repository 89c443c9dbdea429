package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/revocation"
)

// ErrReadOnly is what a Follower's Revoke returns: proxies only follow.
var ErrReadOnly = errors.New("embedded: a feed follower is read-only: revocations are recorded by the agent")

// FollowerWait is a Follower's long-poll wait by default: short, so that
// the set is known current every 5 s while nothing happens (a poll an
// instant, and one idle request per 5 s per proxy), which keeps
// revocation.fail_closed_after (at least 10 s) from firing while the feed
// is up.
const FollowerWait = 5 * time.Second

// maxAnswer caps a feed answer: 100,000 entries are about 15 MB of JSON.
const maxAnswer = 64 << 20

// Follower is a proxy's revocation store: it follows an agent's feed and
// keeps a revocation.Set current. Make one with NewFollower and set its
// fields before Follow. A Follower is safe for concurrent use once Follow
// runs (one Follow at a time) and must not be copied.
type Follower struct {
	// Wait is the long poll's wait (default FollowerWait). The feed
	// answers at least this often, and every answer marks the set
	// current: the set's Stale stays under Wait while the feed is up.
	Wait time.Duration
	// MaxBackoff is the longest pause between failed polls (default 2 s);
	// the first pause is a twentieth of it, doubling.
	MaxBackoff time.Duration
	// Log gets a warning when the feed becomes unreachable and a line when
	// it answers again, not one per failed poll. Zero value: no logging.
	Log zerolog.Logger

	feed   string // base URL, without a final "/"
	client *http.Client
}

// NewFollower returns a Follower of the feed served under feedURL, the
// agent's ops listener as "http://127.0.0.1:9100" (settings.Revocation's
// feed; Path is appended).
func NewFollower(feedURL string) *Follower {
	feedURL = strings.TrimRight(feedURL, "/")
	// A transport of its own: no HTTP_PROXY (the feed is on the agent's
	// private ops listener), and Close closes only its connection.
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   2 * time.Second,
		ResponseHeaderTimeout: MaxWait + 10*time.Second,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       90 * time.Second,
	}
	return &Follower{feed: feedURL, client: &http.Client{Transport: tr}}
}

// Revoke returns ErrReadOnly.
func (f *Follower) Revoke(context.Context, revocation.Entry) (revocation.Entry, error) {
	return revocation.Entry{}, ErrReadOnly
}

// Close closes idle connections to the feed.
func (f *Follower) Close() error {
	f.client.CloseIdleConnections()
	return nil
}

// Follow long-polls the feed until ctx ends, and returns ctx's error. It
// asks for the entries after set.Seq() of the epoch it last saw, adds
// them, and calls set.Synced on every answer; an answer with reset (the
// agent's log is new, or Follow starts with no epoch) replaces the set's
// entries. When a poll fails, the set keeps what it has (fail open; its
// Stale grows) and Follow retries after a pause that doubles up to
// MaxBackoff. It never prunes set: its daemon does (Set.PruneEvery).
func (f *Follower) Follow(ctx context.Context, set *revocation.Set) error {
	maxBackoff := f.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = 2 * time.Second
	}
	var epoch string // the epoch the set's entries came from; "" before the first answer
	failing := false
	return revocation.Retry(ctx, maxBackoff/20, maxBackoff, func(func()) error {
		if err := f.poll(ctx, set, &epoch); err != nil {
			if !failing && ctx.Err() == nil {
				f.Log.Warn().Err(err).Str("feed", f.feed).Msg("revocation feed unreachable: serving with the revocations known so far")
				failing = true
			}
			return err
		}
		if failing {
			f.Log.Info().Str("feed", f.feed).Int("entries", set.Len()).Msg("revocation feed reached again")
			failing = false
		}
		return nil
	})
}

// poll makes one request and applies its answer to set; epoch is the one
// set's entries came from, which the answer updates.
func (f *Follower) poll(ctx context.Context, set *revocation.Set, epoch *string) error {
	wait := f.Wait
	if wait <= 0 {
		wait = FollowerWait
	}
	after := set.Seq()
	if *epoch == "" {
		after = 0
	}
	q := url.Values{"after": {strconv.FormatUint(after, 10)}, "epoch": {*epoch}, "wait": {wait.String()}}
	// The wait plus time to answer: a feed that holds a poll longer is down.
	rctx, cancel := context.WithTimeout(ctx, wait+10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, f.feed+Path+"?"+q.Encode(), nil)
	if err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return fmt.Errorf("embedded: reading the feed: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("embedded: the feed answered %d", resp.StatusCode)
	}
	if len(body) > maxAnswer {
		return fmt.Errorf("embedded: the feed's answer exceeds %d bytes", maxAnswer)
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Errorf("embedded: the feed's answer is not JSON: %w", err)
	}
	entries, err := fromWire(a.Entries)
	if err != nil {
		return fmt.Errorf("embedded: the feed's answer: %w", err)
	}
	switch {
	case a.Reset:
		set.Reset(entries, a.Seq)
	case a.Epoch != *epoch:
		// Entries of another epoch without reset: the answer does not fit
		// what set holds. Start over with the whole list.
		*epoch = ""
		return errors.New("embedded: the feed changed epoch without a reset")
	default:
		set.Add(entries...)
	}
	*epoch = a.Epoch
	set.Synced(time.Now())
	return nil
}

var _ revocation.Store = (*Follower)(nil)
