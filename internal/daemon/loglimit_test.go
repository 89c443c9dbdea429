package daemon

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLogLimiter: n lines per kind and window, the rest counted and handed
// to the first line of a later window; kinds do not share their budget.
func TestLogLimiter(t *testing.T) {
	l := NewLogLimiter(2, 3, time.Second)
	t0 := time.Unix(1_700_000_000, 0)
	allowed := 0
	for i := range 1000 {
		ok, suppressed := l.Allow(0, t0.Add(time.Duration(i)*time.Microsecond))
		if suppressed != 0 {
			t.Fatalf("line %d: suppressed %d within the first window", i, suppressed)
		}
		if ok {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("1,000 lines in one window: %d let through, want 3", allowed)
	}
	if ok, _ := l.Allow(1, t0); !ok {
		t.Error("kind 1 was held back by kind 0's lines")
	}
	ok, suppressed := l.Allow(0, t0.Add(time.Second))
	if !ok || suppressed != 997 {
		t.Errorf("first line of the next window: ok %v, suppressed %d, want true, 997", ok, suppressed)
	}
	if ok, suppressed := l.Allow(0, t0.Add(time.Second+time.Millisecond)); !ok || suppressed != 0 {
		t.Errorf("second line of the next window: ok %v, suppressed %d, want true, 0 (already reported)", ok, suppressed)
	}
	// A quiet window in between changes nothing: the next line goes.
	if ok, suppressed := l.Allow(0, t0.Add(5*time.Second)); !ok || suppressed != 0 {
		t.Errorf("after quiet windows: ok %v, suppressed %d, want true, 0", ok, suppressed)
	}
}

// TestLogLimiterConcurrent: however many goroutines race in one window, at
// most n lines go through, and every other one is counted.
func TestLogLimiterConcurrent(t *testing.T) {
	const n, goroutines, each = 10, 8, 1000
	l := NewLogLimiter(1, n, time.Hour)
	now := time.Unix(1_700_000_000, 0)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				if ok, _ := l.Allow(0, now); ok {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if allowed.Load() != n {
		t.Errorf("%d lines let through, want %d", allowed.Load(), n)
	}
	if _, suppressed := l.Allow(0, now.Add(time.Hour)); suppressed != goroutines*each-n {
		t.Errorf("suppressed %d, want %d", suppressed, goroutines*each-n)
	}
}

func TestLogLimiterNoAllocs(t *testing.T) {
	l := NewLogLimiter(1, 1, time.Second)
	now := time.Now()
	if a := testing.AllocsPerRun(100, func() { l.Allow(0, now) }); a != 0 {
		t.Errorf("Allow allocates %.1f times", a)
	}
}
