package settings

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Rename is a setting that moved: Old is the spelling a file may still use,
// New the one to write instead, both as YAML paths ("cookie_format",
// "cookie.format"). A file that uses Old is read as if it said New, with a
// warning; a file that uses both is refused. It may be copied.
type Rename struct {
	Old, New string
}

// SharedRenames are the spellings both daemons read from before their
// shared settings took one shape (issue #16): the cookie settings moved
// into the cookie section.
var SharedRenames = []Rename{
	{Old: "cookie_name_prefix", New: "cookie.prefix"},
	{Old: "cookie_format", New: "cookie.format"},
	{Old: "cookie_accept", New: "cookie.accept"},
}

// Deprecations collects the warnings about deprecated settings a file used.
// A configuration file's struct embeds it (with no yaml tag: it is no
// setting) for [Parse] to fill and the conversion to read. The zero value
// holds none; it is not safe for concurrent use.
type Deprecations struct {
	warnings []string
}

func (d *Deprecations) deprecations() *Deprecations { return d }

// Deprecated adds the warning "<old> is deprecated: write <new>".
func (d *Deprecations) Deprecated(old, new string) {
	d.warnings = append(d.warnings, fmt.Sprintf("%s is deprecated: write %s", old, new))
}

// Warnings returns the warnings, one sentence each, in the order of the
// file; nil when it used no deprecated setting. The slice is the caller's.
func (d *Deprecations) Warnings() []string { return slices.Clone(d.warnings) }

// applyRenames moves every setting of renames found under its old spelling
// in the mapping root to its new place, and returns one warning for each.
// Both spellings, or the old one twice, are an error naming the lines.
func applyRenames(root *yaml.Node, renames []Rename) ([]string, error) {
	var warnings []string
	for _, r := range renames {
		oldMap, oldName, _ := parentMapping(root, r.Old, false)
		if oldMap == nil {
			continue
		}
		found := keyIndexes(oldMap, oldName)
		if len(found) == 0 {
			continue
		}
		if len(found) > 1 {
			return nil, Errorf(r.Old, "set twice (lines %d and %d)", oldMap.Content[found[0]].Line, oldMap.Content[found[1]].Line)
		}
		i := found[0]
		key, value := oldMap.Content[i], oldMap.Content[i+1]
		newMap, newName, err := parentMapping(root, r.New, true)
		if err != nil {
			return nil, err
		}
		if j := keyIndexes(newMap, newName); len(j) > 0 {
			return nil, fmt.Errorf("%s (line %d) and %s (line %d) are the same setting: keep %s and remove %s, its deprecated spelling",
				r.Old, key.Line, r.New, newMap.Content[j[0]].Line, r.New, r.Old)
		}
		oldMap.Content = append(oldMap.Content[:i:i], oldMap.Content[i+2:]...)
		moved := *key
		moved.Value = newName
		newMap.Content = append(newMap.Content, &moved, value)
		warnings = append(warnings, fmt.Sprintf("%s (line %d) is deprecated: write %s", r.Old, key.Line, r.New))
	}
	return warnings, nil
}

// parentMapping returns the mapping that holds the last key of path, and
// that key; nil when a section on the way is missing or not a mapping.
// With create it adds the sections missing on the way, fills a section
// written with no settings, and copies one written as an alias, so that
// the anchor it names stays as it was; a section that is not a mapping is
// then an error.
func parentMapping(root *yaml.Node, path string, create bool) (*yaml.Node, string, error) {
	sections := strings.Split(path, ".")
	n := root
	for k, s := range sections[:len(sections)-1] {
		i := keyIndexes(n, s)
		if len(i) == 0 {
			if !create {
				return nil, "", nil
			}
			section := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}, section)
			n = section
			continue
		}
		v := n.Content[i[0]+1]
		switch {
		case !create:
			if v = resolve(v); v.Kind != yaml.MappingNode {
				return nil, "", nil
			}
		case v.Kind == yaml.AliasNode && v.Alias.Kind == yaml.MappingNode:
			c := *v.Alias
			c.Anchor = ""
			c.Content = append([]*yaml.Node(nil), v.Alias.Content...)
			n.Content[i[0]+1] = &c
			v = &c
		case IsNull(v):
			*v = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: v.Line, Column: v.Column}
		case v.Kind != yaml.MappingNode:
			return nil, "", Errorf(strings.Join(sections[:k+1], "."), "must be a mapping of settings (line %d)", v.Line)
		}
		n = v
	}
	return n, sections[len(sections)-1], nil
}

// keyIndexes returns the indexes in m.Content of the keys named name.
func keyIndexes(m *yaml.Node, name string) []int {
	var found []int
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == name {
			found = append(found, i)
		}
	}
	return found
}

// writtenAs tells, for an error of a setting the file wrote under a
// deprecated spelling, how the file wrote it: the error names the new one.
func writtenAs(err error, renames []Rename, warnings []string) string {
	msg := err.Error()
	for _, r := range renames {
		if !strings.HasPrefix(msg, r.New+":") && !strings.HasPrefix(msg, r.New+"[") {
			continue
		}
		for _, w := range warnings {
			if strings.HasPrefix(w, r.Old+" (") {
				return fmt.Sprintf(" (written %s, its deprecated spelling)", r.Old)
			}
		}
	}
	return ""
}

// closest returns the name of known nearest to name when it is near enough
// to be a slip (a letter or two, or '-' for '_', or capitals), else "".
func closest(name string, known []string) string {
	best, bestDist := "", -1
	lower := strings.ReplaceAll(strings.ToLower(name), "-", "_")
	for _, k := range known {
		d := editDistance(lower, k)
		if bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	// One edit in four letters, at least one and at most three: "lsten" is
	// listen and "trusted_proxy" trusted_proxies, but "as" is not "at".
	limit := min(3, max(1, len(name)/4))
	if len(name) < 3 {
		limit = 0
	}
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// the insertions, deletions, substitutions and swaps of two neighbouring
// bytes that turn one into the other (Levenshtein's, with the swap that is
// the commonest slip counted once).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
