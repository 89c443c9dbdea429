package daemon

import (
	"sync/atomic"
	"time"
)

// LogLimiter lets at most N log lines of each kind through per window and
// counts the ones it holds back, so that a client sending one bad request
// after another (an attack, or a broken deployment) cannot flood the log:
// the proxy and the agent log each refused request at info through one,
// with the refusal's reason as the kind.
//
// Allow is lock-free and allocates nothing. The count of held-back lines is
// handed to the first line let through in a later window of the same kind,
// which should say "suppressed K similar ..." before its own message; if no
// line of that kind comes again, the count is never logged (the metrics
// count every event anyway).
//
// A LogLimiter is safe for concurrent use and must not be copied.
type LogLimiter struct {
	n      uint64
	window int64 // nanoseconds
	kinds  []logKind
}

// logKind is one kind's window and count, packed into one word so that a
// compare-and-swap moves both: the upper 40 bits are the window's number
// (time in windows since the epoch, truncated), the lower 24 the lines let
// through in it.
type logKind struct {
	state      atomic.Uint64
	suppressed atomic.Uint64
	_          [48]byte // one cache line each: kinds are hit from many goroutines
}

const (
	logCountBits = 24
	logCountMask = 1<<logCountBits - 1
)

// NewLogLimiter returns a LogLimiter for kinds 0 to kinds-1 that lets n
// lines of each through per window. n is at least 1 and at most 2^24-1,
// window at least a millisecond: other values are programmer errors and
// panic.
func NewLogLimiter(kinds, n int, window time.Duration) *LogLimiter {
	if kinds < 1 || n < 1 || n > logCountMask || window < time.Millisecond {
		panic("daemon: internal error: NewLogLimiter with kinds, n or window out of range")
	}
	return &LogLimiter{n: uint64(n), window: int64(window), kinds: make([]logKind, kinds)}
}

// Allow reports whether a line of kind may be written at time now. When it
// may, suppressed is how many lines of that kind Allow refused since the
// last one it let through. kind must be below the kinds given to
// NewLogLimiter.
func (l *LogLimiter) Allow(kind int, now time.Time) (ok bool, suppressed uint64) {
	k := &l.kinds[kind]
	w := uint64(now.UnixNano()/l.window) << logCountBits
	for {
		old := k.state.Load()
		switch {
		case old&^logCountMask != w:
			// A new window: whoever swaps it in writes the first line,
			// and reports what the windows before it held back.
			if k.state.CompareAndSwap(old, w|1) {
				return true, k.suppressed.Swap(0)
			}
		case old&logCountMask >= l.n:
			k.suppressed.Add(1)
			return false, 0
		default:
			if k.state.CompareAndSwap(old, old+1) {
				return true, 0
			}
		}
	}
}

// What both daemons log about refused requests (issue #16), in one place so
// that an operator's alert matches the agent and the proxy alike.
const (
	// DeniedLinesPerSecond is how many denial lines of one reason each
	// daemon writes per second; a line saying how many were suppressed
	// follows once the next second lets one through.
	DeniedLinesPerSecond = 10
	// KeyMismatchEvery is how often, at most, a daemon warns that a
	// well-formed cookie did not open with any configured key.
	KeyMismatchEvery = time.Minute
	// KeyMismatchMessage is that warning. The usual cause is an agent and a
	// proxy (or two agents behind one balancer) configured with different
	// keys, or a key retired from the ring while its cookies were live.
	KeyMismatchMessage = "a cookie did not open with any configured key: do the agent and proxy share keys?"
)
