package metrics

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

func TestDependencies(t *testing.T) {
	deptest.Allow(t, deptest.Module+"/metrics")
}
