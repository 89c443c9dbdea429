// Package deptest checks a package's dependency rules from its
// TestDependencies, as tailscale's tstest/deptest does: each package's
// deps_test.go states what it may link and what it must never link, with
// the reason per banned import, so that the layout of contract §8 holds
// and a broken rule says why it is one. Only tests import it.
package deptest

import (
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// Module is this module's path.
const Module = "github.com/tokenhandler/tokenhandler"

// Reasons several packages give.
const (
	Daemons = "the agent and the proxy never import each other (contract §8): each is deployed and scaled alone"
	NoOAuth = "the proxy links no OAuth or OIDC library (contract §8): it opens cookies and forwards, and never talks to the Authorization Server"
)

// Module dependencies several packages allow, each with what it links.
var (
	// Fasthttp is the HTTP server both daemons run on.
	Fasthttp = []string{"github.com/valyala/", "github.com/andybalholm/brotli", "github.com/klauspost/compress", "github.com/molecule-man/go-brrr"}
	// Zerolog is the logger.
	Zerolog = []string{"github.com/rs/zerolog", "github.com/mattn/go-colorable", "github.com/mattn/go-isatty"}
	// Sio is the DARE library crypto builds on (golang.org/x/crypto for
	// ChaCha20-Poly1305, x/sys).
	Sio = []string{"github.com/minio/sio", "golang.org/x/crypto", "golang.org/x/sys"}
	// GoRedis is the Redis client of revocation.store redis, with its
	// xxhash (cluster slots) and uber's atomic.
	GoRedis = []string{"github.com/redis/go-redis/v9", "github.com/cespare/xxhash/v2", "go.uber.org/atomic"}
)

// Rules several packages share.
var (
	// Stdlib is the rule of a package that links the standard library
	// alone, so that any package's tests can import it.
	Stdlib = DepChecker{Allowed: []string{}}
	// Runner is the rule of a package built on the binaries' runner
	// (internal/bintest), which runs programs and makes HTTP calls for
	// tests: the standard library and it.
	Runner = DepChecker{AllowLinksOf: Module + "/internal/bintest"}
	// FakeProvider is the rule of the fake OpenID Providers built on
	// internal/oidcfake (agent/astest for tests, examples/devidp for the
	// development stack): oidcfake and go-jose only.
	FakeProvider = DepChecker{
		Allowed: []string{Module + "/internal/oidcfake", "github.com/go-jose/go-jose/v4"},
		BadDeps: map[string]string{
			Module + "/agent":           "a provider stands for the Authorization Server, which knows nothing of the agent that calls it (and the agent's tests import astest: an import cycle)",
			Module + "/proxy":           "a fake Authorization Server for any package's tests links no daemon",
			Module + "/agent/astest":    "the test fake and the development IdP are siblings on oidcfake; neither builds on the other",
			Module + "/examples/devidp": "the test fake and the development IdP are siblings on oidcfake; neither builds on the other",
		},
	}
	// Harness is the rule of what starts every part (the harness, the
	// benchmarks, the load test, the development stack), so links them all:
	// it runs on the development IdP and needs neither the certified OP nor
	// Node.js.
	Harness = DepChecker{BadDeps: map[string]string{
		Module + "/internal/optest":   "the harnesses run against devidp, the fast fake; the certified OP runs in conformance tests only",
		Module + "/internal/nodetest": "the harnesses are Go, NGINX and k6; Node.js runs only in tests",
	}}
)

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
	// Shared marks a package both daemons build on: it links neither.
	Shared bool
	// Production marks a package that goes into the daemons or the
	// operator's tools: it links nothing TestSupport names either.
	Production bool
}

// Check checks the package in the current directory (a test's) against
// c, and fails t for each package it links against the rules, with the
// reason.
func (c DepChecker) Check(t *testing.T) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	name, _, _ := strings.Cut(lines[len(lines)-1], " ") // -deps lists the package itself last
	allowed := c.Allowed
	if c.AllowLinksOf != "" {
		allowed = append(deps(t, c.AllowLinksOf), allowed...)
	}
	bad := make(map[string]string)
	if c.Production {
		maps.Copy(bad, TestSupport)
	}
	if c.Shared {
		bad[Module+"/agent"] = "both daemons build on it, so it links neither"
		bad[Module+"/proxy"] = bad[Module+"/agent"]
	}
	maps.Copy(bad, c.BadDeps)
	prefixes := slices.Sorted(maps.Keys(bad))
	for _, line := range lines {
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
				t.Errorf("%s links %s, which is not in its allowed list: drop the import, or add it to Allowed in its deps_test.go and say why", name, dep)
			}
		}
	}
}

// Cat joins lists of allowed packages.
func Cat(lists ...[]string) []string { return slices.Concat(lists...) }

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
