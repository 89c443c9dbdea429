package oidcfake

import (
	"crypto/rand"
	"maps"
	"net/url"
	"sync"
	"time"
)

// Requests holds validated authorization requests between two steps of a
// provider, each under a random id and single use until it expires:
// astest's pushed requests (RFC 9126) and devidp's open login pages. Set
// TTL and Max when making it; it is safe for concurrent use and must not be
// copied. It drops what expired at most once a minute.
type Requests struct {
	TTL time.Duration // how long a request waits
	Max int           // how many requests may wait at once; 0: no bound

	mu        sync.Mutex
	m         map[string]pendingRequest
	nextSweep time.Time
}

type pendingRequest struct {
	params  url.Values
	expires time.Time
}

// Put stores params under a new id, prefix and a random string, and
// returns the id; "" when Max requests are already waiting.
func (rs *Requests) Put(prefix string, params url.Values, now time.Time) string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if now.After(rs.nextSweep) {
		rs.nextSweep = now.Add(time.Minute)
		maps.DeleteFunc(rs.m, func(_ string, r pendingRequest) bool { return now.After(r.expires) })
	}
	if rs.Max > 0 && len(rs.m) >= rs.Max {
		return ""
	}
	if rs.m == nil {
		rs.m = make(map[string]pendingRequest)
	}
	id := prefix + rand.Text()
	rs.m[id] = pendingRequest{params, now.Add(rs.TTL)}
	return id
}

// Get returns the parameters of the request id, or nil when there is none
// or it has expired; take forgets it, so that it is used once.
func (rs *Requests) Get(id string, take bool, now time.Time) url.Values {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.m[id]
	if !ok || now.After(r.expires) {
		delete(rs.m, id)
		return nil
	}
	if take {
		delete(rs.m, id)
	}
	return r.params
}
