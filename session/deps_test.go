package session

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// TestDependencies keeps the envelope beside crypto: it builds on crypto
// alone, so both daemons and the tools can use it without linking any
// server code.
func TestDependencies(t *testing.T) {
	m := deptest.Module
	deptest.Allow(t, m+"/session", m+"/crypto", "github.com/minio/sio", "golang.org/x/crypto", "golang.org/x/sys")
}
