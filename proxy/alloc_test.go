//go:build !race

package proxy

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// TestRequestNoAllocs: a full request through the proxy, upstream mode and
// auth endpoint, allocates nothing in steady state: not the proxy, and not
// the fasthttp client and upstream around it either (AllocsPerRun counts
// every goroutine). So with 50 applications (issue #15), the request for
// one of their hosts.
//
// The one exception is not ours: for a request with a body (POST here),
// fasthttp's server discards the unread rest of the body stream after the
// handler with io.CopyN, whose io.LimitReader escapes: one 24-byte
// allocation per such request, whatever the handler does.
func TestRequestNoAllocs(t *testing.T) {
	for _, apps := range []int{0, 50} {
		s := newBenchStackApps(t, zerolog.Nop(), time.Now, apps)
		for _, tc := range []struct {
			name string
			req  *fasthttp.Request
			max  float64
		}{
			{"upstream GET", s.api, 0},
			{"upstream GET as NGINX forwards it", s.nginx, 0},
			{"auth endpoint", s.auth, 0},
			{"upstream POST with CSRF", s.post, 1},
		} {
			var resp fasthttp.Response
			for range 100 { // warm the pools
				s.roundTrip(t, tc.req, &resp)
			}
			if allocs := testing.AllocsPerRun(500, func() { s.roundTrip(t, tc.req, &resp) }); allocs > tc.max {
				t.Errorf("%d apps, %s: %.2f allocations per request, want at most %.0f", apps, tc.name, allocs, tc.max)
			}
		}
	}
}

// TestUnknownHostNoAllocs: with 50 applications, a request for a host none
// has allocates nothing either, answered 404 and logged at info (the clock
// moves a minute at every reading, so that the limiter holds no line
// back), and neither does a denial of one application's request.
func TestUnknownHostNoAllocs(t *testing.T) {
	var lines lineCounter
	s := newBenchStackApps(t, zerolog.New(&lines), minuteClock(), 50)
	loggedNoAllocs(t, s, &lines, []refusal{
		{"unknown host", s.unknown, 404},
		{"P-at sealed with another key", s.foreign, 401},
	})
}

// TestRevocationNoAllocs: with 100,000 sessions on the revocation list
// (issue #13), a request still allocates nothing, and neither does the
// refusal of a revoked one.
func TestRevocationNoAllocs(t *testing.T) {
	s := newBenchStack(t)
	s.revokeMany(100_000)
	var resp fasthttp.Response
	for range 100 {
		s.roundTrip(t, s.api, &resp)
	}
	if allocs := testing.AllocsPerRun(500, func() { s.roundTrip(t, s.api, &resp) }); allocs > 0 {
		t.Errorf("upstream GET, 100,000 revoked: %.2f allocations per request, want 0", allocs)
	}
	refuse := func() {
		if err := s.client.Do(s.revoked, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != 401 {
			t.Fatalf("revoked session: status %d, want 401", resp.StatusCode())
		}
	}
	for range 100 {
		refuse()
	}
	if allocs := testing.AllocsPerRun(500, refuse); allocs > 0 {
		t.Errorf("revoked session refused: %.2f allocations per request, want 0", allocs)
	}
}

// TestDenialNoAllocs: a refused request allocates nothing either, logged
// at info with its reason (and, for a cookie sealed with another key, the
// warning): the clock moves a minute at every reading, so that no line is
// held back by the limiter and every one is written.
func TestDenialNoAllocs(t *testing.T) {
	var lines lineCounter
	s := newBenchStackWith(t, zerolog.New(&lines), minuteClock())
	loggedNoAllocs(t, s, &lines, []refusal{
		{"untrusted Origin", s.denied, 401},
		{"P-at sealed with another key", s.foreign, 401},
	})
}

// minuteClock returns a clock that moves a minute at every reading, so
// that the denial log's limiter holds no line back and every one is
// written.
func minuteClock() func() time.Time {
	var minutes atomic.Int64
	start := time.Now()
	return func() time.Time { return start.Add(time.Duration(minutes.Add(1)) * time.Minute) }
}

// refusal is a request the proxy refuses with status, and logs.
type refusal struct {
	name   string
	req    *fasthttp.Request
	status int
}

// loggedNoAllocs sends each refusal through s, whose log lines counts:
// once answered its status, it allocates nothing, and every request is
// logged (else the logging path was not measured).
func loggedNoAllocs(t *testing.T, s *benchStack, lines *lineCounter, refusals []refusal) {
	t.Helper()
	for _, tc := range refusals {
		var resp fasthttp.Response
		do := func() {
			if err := s.client.Do(tc.req, &resp); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode() != tc.status {
				t.Fatalf("%s: status %d, want %d", tc.name, resp.StatusCode(), tc.status)
			}
		}
		for range 100 {
			do()
		}
		before := lines.n.Load()
		if allocs := testing.AllocsPerRun(500, do); allocs > 0 {
			t.Errorf("%s: %.2f allocations per refused request, want 0", tc.name, allocs)
		}
		if n := lines.n.Load() - before; n < 501 {
			t.Errorf("%s: %d lines logged for 501 refused requests: the logging path was not measured", tc.name, n)
		}
	}
}

// lineCounter is an io.Writer that counts what it is given and keeps
// nothing.
type lineCounter struct{ n atomic.Int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n.Add(1)
	return len(p), nil
}
