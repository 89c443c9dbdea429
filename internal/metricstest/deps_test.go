package metricstest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The standard library and bintest's HTTP calls, not
// VictoriaMetrics/metrics: it reads the page as a scraper does, by its
// text, so that a test sees what the library writes.
func TestDependencies(t *testing.T) { deptest.Runner.Check(t) }
