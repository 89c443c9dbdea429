package deptest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLayout: every package the binaries link has a row in Layout, and
// every row names a package whose TestDependencies checks it (a
// deps_test.go calling Check).
func TestLayout(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "../../cmd/...", "../../nginx/cmd/render").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if rel, ok := strings.CutPrefix(pkg, Module); ok {
			if _, ok := Layout[rel]; !ok {
				t.Errorf("the binaries link %s, which has no row in Layout", pkg)
			}
		}
	}
	for rel := range Layout {
		b, err := os.ReadFile(filepath.Join("../..", rel, "deps_test.go"))
		if err != nil || !strings.Contains(string(b), "deptest.Check(t)") {
			t.Errorf("Layout has a row for %s, but no %s/deps_test.go calls deptest.Check (%v)", rel, rel, err)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name, pkg, prefix string
		want              bool
	}{
		{"exact", "github.com/rs/zerolog", "github.com/rs/zerolog", true},
		{"subtree without slash", "github.com/rs/zerolog/log", "github.com/rs/zerolog", true},
		{"subtree with slash", "github.com/valyala/fasthttp", "github.com/valyala/", true},
		{"subtree prefix matches its root", "github.com/valyala", "github.com/valyala/", true},
		{"sibling with the same start", "github.com/rs/zerologx", "github.com/rs/zerolog", false},
		{"other", "golang.org/x/net", "golang.org/x/sys", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := match(tt.pkg, []string{tt.prefix}); got != tt.want {
				t.Errorf("match(%q, %q) = %v, want %v", tt.pkg, tt.prefix, got, tt.want)
			}
		})
	}
}
