//go:build !race

package metrics

import (
	"testing"
	"time"
)

func TestUpdatesNoAllocs(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("c_total", "C.")
	h := r.Histogram("h_seconds", "H.", DefaultLatencyBuckets)
	if a := testing.AllocsPerRun(100, func() { c.Inc(); h.Observe(3 * time.Millisecond) }); a != 0 {
		t.Fatalf("%.1f allocations per update", a)
	}
}
