package proxytest

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// Sealing cookies as the agent does needs the envelope and the codec only;
// the proxy's own tests import this package, so linking the proxy would
// not compile.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: deptest.Cat([]string{deptest.Module + "/proxy/proxytest", deptest.Module + "/session", deptest.Module + "/crypto"}, deptest.Sio),
	}.Check(t)
}
