package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	if r := thctl(t, nil, "", "version"); r.code != 0 || r.stdout != "thctl "+buildVersion()+"\n" || r.stderr != "" {
		t.Errorf("thctl version = %+v, want exit 0 and %q", r, "thctl "+buildVersion()+"\n")
	}
	if r := thctl(t, nil, "", "version", "extra"); r.code != 2 || !strings.Contains(r.stderr, "version takes no arguments") {
		t.Errorf("thctl version extra = %+v, want exit 2 and a usage error", r)
	}
}

// TestVersionStamp links the binary as make dist does and checks that the
// stamp is what thctl version prints.
func TestVersionStamp(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "thctl")
	const stamp = "v9.8.7-3-gabcdef0-dirty"
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version="+stamp, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || string(out) != "thctl "+stamp+"\n" {
		t.Fatalf("thctl version = %q, %v; want %q", out, err, "thctl "+stamp+"\n")
	}
}
