//go:build !race

package proxy

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestRequestNoAllocs: a full request through the proxy, upstream mode and
// auth endpoint, allocates nothing in steady state: not the proxy, and not
// the fasthttp client and upstream around it either (AllocsPerRun counts
// every goroutine).
//
// The one exception is not ours: for a request with a body (POST here),
// fasthttp's server discards the unread rest of the body stream after the
// handler with io.CopyN, whose io.LimitReader escapes: one 24-byte
// allocation per such request, whatever the handler does.
func TestRequestNoAllocs(t *testing.T) {
	s := newBenchStack(t)
	for _, tc := range []struct {
		name string
		req  *fasthttp.Request
		max  float64
	}{
		{"upstream GET", s.api, 0},
		{"auth endpoint", s.auth, 0},
		{"upstream POST with CSRF", s.post, 1},
	} {
		var resp fasthttp.Response
		for range 100 { // warm the pools
			s.roundTrip(t, tc.req, &resp)
		}
		if allocs := testing.AllocsPerRun(500, func() { s.roundTrip(t, tc.req, &resp) }); allocs > tc.max {
			t.Errorf("%s: %.2f allocations per request, want at most %.0f", tc.name, allocs, tc.max)
		}
	}
}
