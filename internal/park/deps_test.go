package park

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// Parking idle keep-alive connections: epoll and a fasthttp hook, nothing
// of the daemons.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed:    deptest.Cat([]string{deptest.Module + "/internal/park"}, deptest.Fasthttp),
		BadDeps:    map[string]string{deptest.Module + "/internal/daemon": "the daemon's server uses it: linking the daemon would be an import cycle"},
		Production: true,
	}.Check(t)
}
