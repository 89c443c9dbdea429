// Package docs holds the repository's documentation and the test that keeps
// it, and every other file, self-contained: a fresh clone must not depend on
// anything outside it (issue #16), and the documentation's own links must
// lead somewhere.
package docs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// outsideMarker is the one path that must appear nowhere: the directory the
// specification lived in before the repository held its own contract
// (docs/contract.md). It is built from two parts so that this file does not
// contain it.
var outsideMarker = []byte(".." + "/shared")

// relPath finds relative paths that climb: "../x/y" or "./../x", starting
// where a path can start (not inside "/api/../x", which is a URL path under
// test, nor inside a word).
var relPath = regexp.MustCompile(`(?:^|[^A-Za-z0-9_.~/\\-])((?:\./)?(?:\.\./)+[A-Za-z0-9_.@~/-]*)`)

// mdLink finds the targets of markdown links, [text](target "title") and
// reference definitions, [label]: target.
var (
	mdLink    = regexp.MustCompile(`\]\(\s*<?([^()\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	mdRefDef  = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
	mdHeading = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t#]*$`)
	mdFence   = regexp.MustCompile("(?ms)^ {0,3}```.*?^ {0,3}```[ \t]*$")
)

// sourceExts are the files whose strings are paths a program or a shell
// opens: a "../x" in them is resolved against the file's directory (for a Go
// test, the package directory, where `go test` runs it).
var sourceExts = []string{".go", ".sh", ".bash", ".mk", ".yaml", ".yml", ".js", ".mjs", ".cjs", ".ts", ".json",
	".tmpl", ".conf", ".service", ".md"}

// repoRoot is the repository's top directory (this package is docs/).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("docs: %s is not the repository root: %v", root, err)
	}
	return root
}

// repoFiles lists the repository's files, slash-separated and relative to
// root: what git tracks plus new files it does not ignore, or, outside a git
// checkout, every file but those under .git, node_modules, bin and dist.
func repoFiles(t *testing.T, root string) []string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(root, ".git")); err == nil {
		if _, err := exec.LookPath("git"); err == nil {
			cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
			cmd.Dir = root
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("git ls-files: %v", err)
			}
			var files []string
			for f := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
				// A file deleted in the work tree but not yet in the index.
				if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(f))); err == nil && !skipped(f) {
					files = append(files, f)
				}
			}
			return slices.Compact(files)
		}
	}
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "bin", "dist":
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && !skipped(rel) {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// skipped reports files that are not the repository's own text: installed
// npm packages, should they ever be committed.
func skipped(rel string) bool {
	return strings.HasPrefix(rel, "node_modules/") || strings.Contains(rel, "/node_modules/")
}

// isSource reports whether rel is a file whose relative paths are checked.
func isSource(rel string, data []byte) bool {
	base := path.Base(rel)
	if base == "Makefile" || slices.Contains(sourceExts, path.Ext(base)) {
		return true
	}
	// Scripts without an extension, such as .ci/run.
	return bytes.HasPrefix(data, []byte("#!"))
}

// escapes reports whether target, relative to the directory dir (both
// slash-separated, dir relative to the root), leaves the repository.
func escapes(dir, target string) bool {
	p := path.Join(dir, target)
	return p == ".." || strings.HasPrefix(p, "../")
}

// Finding is one reference that leaves the repository.
type finding struct{ file, ref, why string }

func (f finding) String() string { return fmt.Sprintf("%s: %q %s", f.file, f.ref, f.why) }

// outsideRefs returns the references in the file rel (its contents data)
// that point outside the repository.
func outsideRefs(rel string, data []byte) []finding {
	var out []finding
	if i := bytes.Index(data, outsideMarker); i >= 0 {
		end := min(len(data), i+40)
		if j := bytes.IndexAny(data[i:end], " \t\n)\"'`"); j >= 0 {
			end = i + j
		}
		out = append(out, finding{rel, string(data[i:end]), "names a directory beside the repository"})
	}
	if bytes.IndexByte(data[:min(len(data), 8000)], 0) >= 0 || !isSource(rel, data) {
		return out // binary, or data whose strings are not paths (fuzz corpora, go.sum)
	}
	dir := path.Dir(rel)
	for _, m := range relPath.FindAllSubmatch(data, -1) {
		ref := string(m[1])
		if strings.HasSuffix(ref, ".") && !strings.HasSuffix(ref, "..") {
			ref = ref[:len(ref)-1] // a full stop after the path
		}
		if escapes(dir, ref) {
			out = append(out, finding{rel, ref, "resolves outside the repository from " + dir + "/"})
		}
	}
	if path.Ext(rel) == ".md" {
		for _, target := range markdownTargets(data) {
			if p, _, ok := localTarget(target); ok && !strings.HasPrefix(p, "/") && escapes(dir, p) {
				out = append(out, finding{rel, target, "links outside the repository"})
			}
		}
	}
	return out
}

// markdownTargets returns the link targets of a markdown text, code blocks
// left out.
func markdownTargets(data []byte) []string {
	data = mdFence.ReplaceAll(data, nil)
	var targets []string
	for _, re := range []*regexp.Regexp{mdLink, mdRefDef} {
		for _, m := range re.FindAllSubmatch(data, -1) {
			targets = append(targets, string(m[1]))
		}
	}
	return targets
}

// localTarget splits a link target into a path and a fragment; ok is false
// for links with a scheme (https:, mailto:) or a host (//host).
func localTarget(target string) (p, fragment string, ok bool) {
	if strings.HasPrefix(target, "//") || regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`).MatchString(target) {
		return "", "", false
	}
	p, fragment, _ = strings.Cut(target, "#")
	p, _, _ = strings.Cut(p, "?")
	return p, fragment, true
}

// anchors returns the heading anchors GitHub makes for a markdown text:
// lower case, punctuation but '-' and '_' dropped, spaces as '-', repeats
// numbered -1, -2, ….
func anchors(data []byte) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	for _, m := range mdHeading.FindAllSubmatch(mdFence.ReplaceAll(data, nil), -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(string(m[1])) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r > 127 && !strings.ContainsRune("§‖…–—→’“”", r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// brokenLinks returns the relative links of the markdown file rel (under
// root) that lead to no file, or to a heading the target does not have.
func brokenLinks(root, rel string, data []byte) []finding {
	var out []finding
	dir := path.Dir(rel)
	for _, target := range markdownTargets(data) {
		p, fragment, ok := localTarget(target)
		if !ok {
			continue
		}
		if p == "" {
			if fragment != "" && !anchors(data)[fragment] {
				out = append(out, finding{rel, target, "names a heading this file does not have"})
			}
			continue
		}
		file := path.Join(dir, p)
		if strings.HasPrefix(p, "/") { // GitHub reads it from the repository's root
			file = strings.TrimPrefix(path.Clean(p), "/")
		}
		if escapes(".", file) {
			continue // outsideRefs reports it
		}
		st, err := os.Stat(filepath.Join(root, filepath.FromSlash(file)))
		if err != nil {
			out = append(out, finding{rel, target, "leads to no file"})
			continue
		}
		if fragment == "" || st.IsDir() || path.Ext(file) != ".md" {
			continue
		}
		body, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		if err != nil {
			out = append(out, finding{rel, target, err.Error()})
			continue
		}
		if !anchors(body)[fragment] {
			out = append(out, finding{rel, target, "names a heading " + file + " does not have"})
		}
	}
	return out
}

// TestNothingOutside fails when any file of the repository refers to a path
// outside it: the old specification's directory anywhere, or a relative
// path (a markdown link, or a "../x" string in code, scripts and
// configuration) that climbs above the repository's root.
func TestNothingOutside(t *testing.T) {
	root := repoRoot(t)
	files := repoFiles(t, root)
	if len(files) < 100 || !slices.Contains(files, "README.md") || !slices.Contains(files, "docs/links_test.go") {
		t.Fatalf("listed %d files, without README.md or this test: the listing is broken", len(files))
	}
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			t.Fatal(err)
		}
		for _, f := range outsideRefs(rel, data) {
			t.Error(f)
		}
	}
}

// TestDocLinks fails when a relative link in README.md or docs/ leads to no
// file, or to a heading that is not there.
func TestDocLinks(t *testing.T) {
	root := repoRoot(t)
	var checked int
	for _, rel := range repoFiles(t, root) {
		if rel != "README.md" && !(strings.HasPrefix(rel, "docs/") && path.Ext(rel) == ".md") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, f := range brokenLinks(root, rel, data) {
			t.Error(f)
		}
	}
	if checked < 2 {
		t.Fatalf("checked %d markdown files", checked)
	}
}

// TestCheckers shows each rule finding what it must find, and passing what
// it must pass.
// The cases write "^^/" for "../", so that this file holds no path that
// climbs out of the repository.
func TestCheckers(t *testing.T) {
	const up = ".." + "/"
	outside := []struct {
		name, file, text string
		want             int
	}{
		{"marker in prose", "docs/x.md", "see " + string(outsideMarker) + "/SPEC.md §6", 1},
		{"marker in Go", "agent/x.go", `// contract: ` + string(outsideMarker) + `/SPEC.md`, 1},
		{"markdown link climbing", "docs/x.md", "[spec](^^/^^/SPEC.md)", 2},
		{"markdown link inside", "docs/x.md", "[units](^^/deploy/systemd/oauth-agent.service)", 0},
		{"reference definition climbing", "README.md", "[spec]: ^^/SPEC.md\n", 2},
		{"go string climbing", "cmd/thctl/main_test.go", `os.ReadFile("^^/^^/^^/vectors.json")`, 1},
		{"go string inside", "cmd/thctl/main_test.go", `os.ReadFile("^^/^^/session/testdata/vectors.json")`, 0},
		{"dot-slash start", "e2e/x_test.go", `"./^^/^^/x"`, 1},
		{"shell climbing", "scripts/x.sh", "cd ^^/..", 1},
		{"script without extension", ".ci/run", "#!/bin/sh\ncat ^^/^^/x", 1},
		{"makefile climbing", "Makefile", "include ^^/common.mk", 1},
		{"yaml climbing", "deploy/x.yaml", "keys: ^^/^^/keys", 1},
		{"js import climbing", "e2e/x.mjs", "import x from '^^/^^/lib/x.js'", 1},
		{"url path under test", "proxy/x_test.go", `"/api/^^/^^/^^/etc/passwd"`, 0},
		{"http link", "README.md", "[x](https://example.com/^^/x)", 0},
		{"fenced code block", "docs/x.md", "```\n[x](^^/^^/y)\n```\n", 1}, // the string rule still sees it
		{"data file", "proxy/testdata/fuzz/F/abc", "go test fuzz v1\n[]byte(\"^^/^^/^^/x\")", 0},
	}
	for _, tc := range outside {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.ReplaceAll(tc.text, "^^/", up)
			if got := outsideRefs(tc.file, []byte(text)); len(got) != tc.want {
				t.Errorf("outsideRefs(%q, %q) = %v, want %d findings", tc.file, text, got, tc.want)
			}
		})
	}

	root := t.TempDir()
	for name, text := range map[string]string{
		"docs/a.md":    "# A title\n\n## Two words, §6 (x)\n\n## A title\n",
		"deploy/x.yml": "x: 1\n",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := []struct {
		name, text string
		want       int
	}{
		{"existing file", "[a](docs/a.md) [x](deploy/x.yml)", 0},
		{"missing file", "[b](docs/b.md)", 1},
		{"heading", "[a](docs/a.md#a-title) [b](docs/a.md#two-words-6-x) [c](docs/a.md#a-title-1)", 0},
		{"missing heading", "[a](docs/a.md#no-such)", 1},
		{"own heading", "# Here\n[h](#here) [m](#missing)", 1},
		{"web link", "[w](https://example.com/x.md)", 0},
	}
	for _, tc := range links {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.ReplaceAll(tc.text, "^^/", up)
			if got := brokenLinks(root, "README.md", []byte(text)); len(got) != tc.want {
				t.Errorf("brokenLinks(%q) = %v, want %d findings", tc.text, got, tc.want)
			}
		})
	}
}
