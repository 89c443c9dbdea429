// Package deptest holds the module's dependency rules (Layout: a row a
// package, each banned import with its reason, as tailscale's
// tstest/deptest gives them) and checks them from each package's
// TestDependencies, so that the layout of contract §8 holds and a broken
// rule says why it is one. Only tests import it.
package deptest

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// Module is this module's path.
const Module = "github.com/tokenhandler/tokenhandler"

// TestSupport names the packages only tests and the harnesses link, each
// with the reason; a Production package links none of them.
var TestSupport = map[string]string{
	"testing":                                  "test code: in a daemon it would only add code and flags nobody uses",
	Module + "/internal/bintest":               "builds and runs the binaries in black-box tests (and links package testing)",
	Module + "/internal/harness":               "starts the parts on loopback for bench/run and loadtest/run; a daemon never starts another",
	Module + "/agent/astest":                   "a fake Authorization Server with fault switches, for tests",
	Module + "/internal/oidcfake":              "the fake OpenID Providers' core (grant store, tokens, keys), for tests and the development IdP",
	Module + "/examples/":                      "the development stack: never part of a daemon",
	Module + "/nginx/nginxtest":                "runs real NGINX in tests",
	Module + "/internal/metricstest":           "reads the daemons' metrics pages in tests and harnesses; a daemon writes its page, never parses one",
	Module + "/internal/redistest":             "runs a real redis-server in tests",
	Module + "/internal/optest":                "runs the certified OpenID Provider in tests",
	Module + "/internal/nodetest":              "runs Node.js scripts in tests",
	Module + "/internal/settings/settingstest": "what the configuration files' tests share",
	Module + "/internal/spatest":               "plays the SPA's browser in tests",
	Module + "/revocation/revocationtest":      "what the revocation stores' tests share",
}

// DepChecker is the rules of one package: what it may link and what it
// must never link. It may be copied.
type DepChecker struct {
	// Allowed lists the non-standard packages it may link, itself
	// included. A prefix ending in "/" matches a subtree; any other matches
	// exactly or as a subtree. Nil allows whatever BadDeps does not name.
	Allowed []string
	// BadDeps maps the packages it must never link (matched as Allowed
	// matches, standard packages included) to why; a failure prints the
	// reason. They are checked before Allowed.
	BadDeps map[string]string
	// AllowLinksOf names a package whatever links the checked package may
	// link too.
	AllowLinksOf string
	// Production marks a package that goes into the daemons or the
	// operator's tools: it links nothing TestSupport names either.
	Production bool
}

// Check checks the package in the current directory against its row of
// Layout, and fails t for each package it links against the rules, with
// the reason.
func Check(t *testing.T) {
	t.Helper()
	self, err := exec.Command("go", "list", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	name := strings.TrimSpace(string(self))
	c, ok := Layout[strings.TrimPrefix(name, Module)]
	if !ok {
		t.Fatalf("deptest.Layout has no row for %s: add one saying what it may link and what it must not, and why", name)
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := c.Allowed
	if c.AllowLinksOf != "" {
		allowed = append(deps(t, c.AllowLinksOf), allowed...)
	}
	bad := c.BadDeps
	if c.Production {
		bad = make(map[string]string, len(c.BadDeps)+len(TestSupport))
		for k, v := range TestSupport {
			bad[k] = v
		}
		for k, v := range c.BadDeps {
			bad[k] = v
		}
	}
	var prefixes []string
	for p := range bad {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		dep, standard, _ := strings.Cut(line, " ")
		if dep == name {
			continue
		}
		if p, ok := match(dep, prefixes); ok {
			t.Errorf("%s links %s, which it must not: %s", name, dep, bad[p])
			continue
		}
		if allowed != nil && standard != "true" {
			if _, ok := match(dep, allowed); !ok {
				t.Errorf("%s links %s, which is not in its allowed list: drop the import, or add it to its row of deptest.Layout and say why", name, dep)
			}
		}
	}
}

// match returns the first of prefixes that pkg matches: exactly, or as a
// subtree.
func match(pkg string, prefixes []string) (string, bool) {
	for _, p := range prefixes {
		if q := strings.TrimSuffix(p, "/"); pkg == q || strings.HasPrefix(pkg, q+"/") {
			return p, true
		}
	}
	return "", false
}

// deps returns the non-standard packages that pkg links, itself included.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.Fields(string(out))
}
