package redistest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// Runs a real redis-server: the standard library and the binaries' runner.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: []string{deptest.Module + "/internal/redistest", deptest.Module + "/internal/bintest"},
		BadDeps: map[string]string{
			"github.com/redis/go-redis/v9": "it runs the server; each test talks to it with the client it tests",
		},
	}.Check(t)
}
