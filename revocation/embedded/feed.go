package embedded

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/revocation"
)

// Path is where the agent serves the feed on its ops listener.
const Path = "/revocations"

const (
	// DefaultWait is how long a poll waits for an entry when it asks no
	// wait: below the 30 s idle timeouts of common proxies and balancers.
	DefaultWait = 25 * time.Second
	// MaxWait caps what a poll may ask.
	MaxWait = 60 * time.Second
)

// answer is the feed's JSON body.
type answer struct {
	Epoch   string      `json:"epoch"`
	Seq     uint64      `json:"seq"`
	Entries []wireEntry `json:"entries"`
	Reset   bool        `json:"reset"`
}

// wireEntry is a revocation.Entry on the feed, and the fields of a record
// in the log's file.
type wireEntry struct {
	Kind    string `json:"kind"`   // "sid" or "sub"
	Digest  string `json:"digest"` // hex
	At      int64  `json:"at"`
	Expires int64  `json:"expires"`
	Seq     uint64 `json:"seq"`
}

func toWire(e revocation.Entry) wireEntry {
	kind := "sid"
	if e.Kind == revocation.BySub {
		kind = "sub"
	}
	return wireEntry{Kind: kind, Digest: hex.EncodeToString(e.Digest[:]), At: e.At, Expires: e.Expires, Seq: e.Seq}
}

// entry returns w as a revocation.Entry, or an error that says what is
// wrong with it.
func (w wireEntry) entry() (revocation.Entry, error) {
	e := revocation.Entry{At: w.At, Expires: w.Expires, Seq: w.Seq}
	switch w.Kind {
	case "sid":
		e.Kind = revocation.BySID
	case "sub":
		e.Kind = revocation.BySub
	default:
		return e, errors.New("unknown kind")
	}
	d, err := hex.DecodeString(w.Digest)
	if err != nil || len(d) != len(e.Digest) {
		return e, errors.New("bad digest")
	}
	copy(e.Digest[:], d)
	return e, nil
}

func fromWire(in []wireEntry) ([]revocation.Entry, error) {
	out := make([]revocation.Entry, len(in))
	for i, w := range in {
		var err error
		if out[i], err = w.entry(); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return out, nil
}

// Handler serves the feed: GET with the query parameters after (the
// highest Seq the follower holds; default 0), epoch (the epoch it holds
// them from; none or another one gets the whole list with reset true) and
// wait (a Go duration, default DefaultWait, at most MaxWait; 0 answers at
// once). It answers as soon as there are entries after after, else when
// one is recorded, wait passes, the server shuts down or the log closes.
// Bad parameters get 400, other methods 405; every answer is JSON with
// Cache-Control: no-store.
func (l *Log) Handler() fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
		ctx.SetContentType("application/json")
		if !ctx.IsGet() && !ctx.IsHead() {
			ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
			ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
			ctx.SetBodyString(`{"error":"method_not_allowed"}`)
			return
		}
		after, wait, err := feedQuery(ctx.QueryArgs())
		if err != nil {
			ctx.SetStatusCode(fasthttp.StatusBadRequest)
			body, _ := json.Marshal(map[string]string{"error": "invalid_request", "error_description": err.Error()})
			ctx.SetBody(body)
			return
		}
		epoch := string(ctx.QueryArgs().Peek("epoch"))
		entries, seq, changed, closed := l.snapshot(after)
		reset := epoch != l.epoch || after > seq
		if reset {
			entries, seq, _, _ = l.snapshot(0)
		} else if len(entries) == 0 && wait > 0 && !closed {
			timer := time.NewTimer(wait)
			select {
			case <-changed:
			case <-timer.C:
			case <-ctx.Done(): // the ops server shuts down
			}
			timer.Stop()
			entries, seq, _, _ = l.snapshot(after)
		}
		wire := make([]wireEntry, len(entries))
		for i, e := range entries {
			wire[i] = toWire(e)
		}
		body, _ := json.Marshal(answer{Epoch: l.epoch, Seq: seq, Entries: wire, Reset: reset})
		ctx.SetBody(body)
	}
}

func feedQuery(q *fasthttp.Args) (after uint64, wait time.Duration, err error) {
	if v := q.Peek("after"); len(v) > 0 {
		if after, err = strconv.ParseUint(string(v), 10, 64); err != nil {
			return 0, 0, errors.New("after must be a sequence number")
		}
	}
	wait = DefaultWait
	if v := q.Peek("wait"); len(v) > 0 {
		if wait, err = time.ParseDuration(string(v)); err != nil || wait < 0 {
			return 0, 0, errors.New("wait must be a duration such as 25s")
		}
	}
	return after, min(wait, MaxWait), nil
}
