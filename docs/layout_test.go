package docs

import (
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// layoutPath finds the folder a row of README's layout table names: the
// first cell, a path in backquotes.
var layoutPath = regexp.MustCompile("(?m)^\\| `([a-z0-9/_.-]+?)/?` \\|")

// TestEveryPackageSaysWhatItIsFor keeps issue #17's promise to a new reader:
// each Go package's doc comment says in a sentence what the package is for,
// and README's "Layout" section has a row for every package (and rows only
// for folders that exist).
func TestEveryPackageSaysWhatItIsFor(t *testing.T) {
	root := repoRoot(t)
	packages := map[string][]string{} // folder → its .go files
	for _, f := range repoFiles(t, root) {
		if strings.HasSuffix(f, ".go") && !strings.Contains("/"+f, "/testdata/") {
			packages[path.Dir(f)] = append(packages[path.Dir(f)], f)
		}
	}
	if len(packages) < 10 {
		t.Fatalf("found %d Go packages; is %s the repository?", len(packages), root)
	}

	for dir, files := range packages {
		if doc := packageDoc(t, root, files); doc == "" {
			t.Errorf("%s: no package doc comment (write one that says in a sentence what the package is for)", dir)
		} else if words := strings.Fields(doc); len(words) < 6 {
			t.Errorf("%s: the package doc %q is too short to say what the package is for", dir, doc)
		}
	}

	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Layout\n")
	if !ok {
		t.Fatal(`README.md has no "## Layout" section`)
	}
	if next := strings.Index(section, "\n## "); next >= 0 {
		section = section[:next]
	}
	listed := map[string]bool{}
	for _, m := range layoutPath.FindAllStringSubmatch(section, -1) {
		listed[m[1]] = true
	}
	var missing []string
	for dir := range packages {
		if !listed[dir] {
			missing = append(missing, dir)
		}
	}
	slices.Sort(missing)
	for _, dir := range missing {
		t.Errorf("README.md's Layout section has no row for the package %s/", dir)
	}
	for dir := range listed {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(dir))); err != nil {
			t.Errorf("README.md's Layout section lists %s/, which does not exist", dir)
		}
	}
}

// packageDoc returns the doc comment of a package: the one on its package
// clause in any of its files (tests included: a package of tests alone keeps
// its doc in a test file).
func packageDoc(t *testing.T, root string, files []string) string {
	t.Helper()
	slices.Sort(files)
	for _, f := range files {
		file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, filepath.FromSlash(f)), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if file.Doc != nil {
			if doc := strings.TrimSpace(file.Doc.Text()); doc != "" && !strings.HasPrefix(doc, "Code generated") {
				return doc
			}
		}
	}
	return ""
}
