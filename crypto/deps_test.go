package crypto

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// The codec: the standard library and sio only.
func TestDependencies(t *testing.T) {
	deptest.DepChecker{
		Allowed: deptest.Cat([]string{deptest.Module + "/crypto"}, deptest.Sio),
		BadDeps: map[string]string{
			deptest.Module + "/session":   "the envelope builds on the codec, never the reverse: crypto knows no session",
			deptest.Module + "/browser":   "the codec seals byte slices; cookies and headers are browser's, which calls it",
			deptest.Module + "/internal/": "crypto is the bottom of the module: the standard library and sio only (STYLE \"Shape\")",
			"github.com/valyala/fasthttp": "the codec needs no HTTP: the proxy's hot path hands it byte slices",
		},
		Production: true,
	}.Check(t)
}
