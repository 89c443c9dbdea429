package agent

import (
	"testing"
	"time"
)

// TestRefetchGate: the first fetch goes out; then one per
// jwksRefetchInterval, or one after each verified token.
func TestRefetchGate(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	g := &refetchGate{now: func() time.Time { return now }}
	for i, step := range []struct {
		advance  time.Duration
		verified bool
		want     bool
	}{
		{0, false, true},  // the first fetch
		{0, false, false}, // at once again
		{jwksRefetchInterval - time.Millisecond, false, false},
		{time.Millisecond, false, true}, // the interval has passed
		{time.Second, true, true},       // a token verified since
		{0, false, false},               // but only once
		{0, true, true},
	} {
		now = now.Add(step.advance)
		if step.verified {
			g.markVerified()
		}
		if got := g.allow(); got != step.want {
			t.Errorf("step %d: allow() = %v, want %v", i, got, step.want)
		}
	}
}
