package embedded

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The embedded store needs the list, fasthttp for the feed handler and
// zerolog for the follower's two log lines.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: deptest.Cat([]string{deptest.Module + "/revocation", deptest.Module + "/session", deptest.Module + "/crypto"}, deptest.Sio, deptest.Fasthttp, deptest.Zerolog),
		Shared:  true,
		BadDeps: map[string]string{
			"github.com/redis/go-redis/v9": "the single-machine store needs no Redis: that is the other store's",
		},
		Production: true,
	}.Check(t)
}
