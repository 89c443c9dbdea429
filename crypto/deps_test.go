package crypto

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// TestDependencies keeps crypto on the standard library, sio and what sio
// itself needs (golang.org/x/crypto for ChaCha20-Poly1305, x/sys).
func TestDependencies(t *testing.T) {
	deptest.Allow(t, deptest.Module+"/crypto", "github.com/minio/sio", "golang.org/x/crypto", "golang.org/x/sys")
}
