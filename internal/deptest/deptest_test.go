package deptest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryPackage: every package of the module with non-test Go files has
// a deps_test.go whose TestDependencies checks its rules, and every
// package the binaries link is marked Production, so that a new package
// cannot be forgotten and test support cannot slip into a daemon.
func TestEveryPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{len .GoFiles}} {{.Dir}}", "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	linked, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "../../cmd/...", "../../nginx/cmd/render").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	production := make(map[string]bool)
	for _, pkg := range strings.Fields(string(linked)) {
		production[pkg] = true
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 30 {
		t.Fatalf("go list found %d packages: is the module root ../..?", len(lines))
	}
	for _, line := range lines {
		pkg, rest, _ := strings.Cut(line, " ")
		files, dir, _ := strings.Cut(rest, " ")
		if files == "0" {
			continue // tests alone: it links nothing
		}
		b, err := os.ReadFile(filepath.Join(dir, "deps_test.go"))
		src := string(b)
		switch {
		case err != nil || !strings.Contains(src, "func TestDependencies(t *testing.T)") || !strings.Contains(src, ".Check(t)"):
			t.Errorf("%s has no deps_test.go whose TestDependencies checks its rule: add one saying what it may link and what it must not, and why (%v)", pkg, err)
		case production[pkg] && !strings.Contains(strings.Join(strings.Fields(src), " "), "Production: true"): // however gofmt aligns it
			t.Errorf("the binaries link %s, but its deps_test.go does not mark it Production", pkg)
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
