// Package deptest checks which modules a package links, so that the
// dependency rules of the layout (contract §8, STYLE "Shape") hold.
package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

// Module is this module's path.
const Module = "github.com/tokenhandler/tokenhandler"

// Allow checks that every non-standard package the package in the current
// directory depends on, itself included, starts with one of prefixes. A
// prefix ending in "/" matches a subtree; any other matches exactly or as a
// subtree.
func Allow(t *testing.T, prefixes ...string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if !allowed(pkg, prefixes) {
			t.Errorf("depends on %s, which is not allowed here", pkg)
		}
	}
}

func allowed(pkg string, prefixes []string) bool {
	for _, p := range prefixes {
		if pkg == strings.TrimSuffix(p, "/") || strings.HasPrefix(pkg, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}
