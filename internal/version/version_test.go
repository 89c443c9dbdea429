package version

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestStamp links the binaries with the -X flag make dist uses and checks
// that each prints the stamp: renaming the variable, or moving it, fails
// here rather than in a release.
func TestStamp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	const stamp = "v9.8.7-3-gabcdef0-dirty"
	for _, c := range []struct{ name, arg string }{{"oauth-proxy", "-version"}, {"thctl", "version"}} {
		bin := filepath.Join(t.TempDir(), c.name)
		flags := "-X github.com/tokenhandler/tokenhandler/internal/version.stamp=" + stamp
		if out, err := exec.Command("go", "build", "-ldflags", flags, "-o", bin, "../../cmd/"+c.name).CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		out, err := exec.Command(bin, c.arg).Output()
		if want := c.name + " " + stamp + "\n"; err != nil || string(out) != want {
			t.Errorf("%s %s = %q, %v; want %q", c.name, c.arg, out, err, want)
		}
	}
}
