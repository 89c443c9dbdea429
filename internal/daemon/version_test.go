package daemon

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestVersionStamp links oauth-proxy with the -X flag make dist uses and
// checks that -version prints the stamp: renaming the variable, or moving
// it, fails here rather than in a release.
func TestVersionStamp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "oauth-proxy")
	const stamp = "v9.8.7-3-gabcdef0-dirty"
	flags := "-X github.com/tokenhandler/tokenhandler/internal/daemon.version=" + stamp
	if out, err := exec.Command("go", "build", "-ldflags", flags, "-o", bin, "../../cmd/oauth-proxy").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-version").Output()
	if want := "oauth-proxy " + stamp + "\n"; err != nil || string(out) != want {
		t.Fatalf("oauth-proxy -version = %q, %v; want %q", out, err, want)
	}
}
