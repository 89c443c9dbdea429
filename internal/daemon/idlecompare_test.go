//go:build !idlecompare

package daemon

import (
	"testing"

	"github.com/rs/zerolog"
)

// TestReleaseBuildKeepsBuffers: only the measurement build of
// bench/run -idle-compare (-tags idlecompare) trades CPU for idle memory;
// a release server keeps fasthttp's buffers between requests.
func TestReleaseBuildKeepsBuffers(t *testing.T) {
	s := HTTP{}.Server(zerolog.Nop())
	if s.ReduceMemoryUsage || s.WriteBufferSize != 16<<10 {
		t.Errorf("release server: ReduceMemoryUsage %v, WriteBufferSize %d; want false, %d", s.ReduceMemoryUsage, s.WriteBufferSize, 16<<10)
	}
}
