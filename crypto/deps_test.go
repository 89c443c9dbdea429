package crypto

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps crypto on the standard library, sio and what sio
// itself needs (golang.org/x/crypto for ChaCha20-Poly1305, x/sys).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := []string{"github.com/tokenhandler/tokenhandler/crypto", "github.com/minio/sio", "golang.org/x/crypto/", "golang.org/x/sys/"}
	for _, pkg := range strings.Fields(string(out)) {
		ok := false
		for _, a := range allowed {
			ok = ok || pkg == a || strings.HasPrefix(pkg, a)
		}
		if !ok {
			t.Errorf("crypto depends on %s", pkg)
		}
	}
}
