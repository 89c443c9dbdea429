package bintest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestWithin(t *testing.T) {
	if Within(30*time.Millisecond, func() bool { return false }) {
		t.Error("Within = true for a condition that never holds")
	}
	calls := 0
	if !Within(time.Second, func() bool { calls++; return calls == 3 }) {
		t.Error("Within = false for a condition that holds at the third poll")
	}
	if calls != 3 {
		t.Errorf("Within polled %d times, want 3: it stops once the condition holds", calls)
	}
}

// TestPoll: the harnesses' wait (internal/harness.Wait) tells a timeout
// from a cancelled context.
func TestPoll(t *testing.T) {
	if err := Poll(context.Background(), 30*time.Millisecond, time.Millisecond, "no answer", func() bool { return false }); err == nil || err.Error() != "no answer within 30ms" {
		t.Errorf("Poll of a condition that never holds = %v, want \"no answer within 30ms\"", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Poll(ctx, time.Minute, time.Millisecond, "", func() bool { return false }); !errors.Is(err, context.Canceled) {
		t.Errorf("Poll with a cancelled context = %v, want context.Canceled", err)
	}
	if err := Poll(ctx, time.Minute, time.Millisecond, "", func() bool { return true }); err != nil {
		t.Errorf("Poll of a condition that holds = %v, want nil", err)
	}
}

// recorder is a testing.TB that records Errorf instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Errorf(format string, a ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, a...))
}

// leaked keeps what the leaking run allocates alive past HeapPerRequest's
// second measurement.
var leaked [][]byte

func TestHeapPerRequest(t *testing.T) {
	const n = 20_000
	for _, tt := range []struct {
		name string
		leak int // bytes kept per request
		fail bool
	}{
		{"no leak", 0, false},
		{"48 bytes a request", 48, true},
		{"a kilobyte a request", 1024, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			HeapPerRequest(r, n, 32, func(n int) {
				for range n {
					_ = fmt.Sprint(n) // garbage, not a leak
				}
				if tt.leak > 0 {
					leaked = append(leaked, make([]byte, n*tt.leak))
				}
			})
			leaked = nil
			if failed := len(r.errors) > 0; failed != tt.fail {
				t.Errorf("HeapPerRequest failed = %v (%q), want %v", failed, r.errors, tt.fail)
			}
			if tt.fail && len(r.errors) > 0 && !strings.Contains(r.errors[0], "bytes per request") {
				t.Errorf("message %q does not give the bytes per request", r.errors[0])
			}
		})
	}
}
