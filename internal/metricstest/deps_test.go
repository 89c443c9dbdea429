package metricstest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The scraper reads the metrics page's text: the standard library only.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: []string{deptest.Module + "/internal/metricstest"},
		BadDeps: map[string]string{
			"github.com/VictoriaMetrics/metrics": "it reads the page as a scraper does, by its text, so that a test sees what the library writes",
		},
	}.Check(t)
}
