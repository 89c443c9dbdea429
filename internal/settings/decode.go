// Package settings is the configuration vocabulary the oauth-proxy and
// oauth-agent binaries share (contract §7): strict YAML decoding into tagged
// structs, the blocks both files have ([Shared] and the cors, cookie and
// timeouts sections), and each rule written once: [Duration] (a duration
// setting that decodes itself), [URLRule], [PathRule], [CheckList], the
// listen addresses, web origins, logging, and secrets and key rings from
// exactly one source.
//
// Every error names the setting by its YAML path, as "routes[1].upstream",
// and never quotes a secret. Only [Load] and [Parse] prefix their errors,
// with what the binary gives ("proxy: config", "agent: config"); the other
// functions' errors carry no program prefix.
package settings

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Errorf returns an error naming setting by its YAML path:
// "<setting>: <message>". The message wraps what format and args wrap.
func Errorf(setting, format string, args ...any) error {
	return fmt.Errorf("%s: %w", setting, fmt.Errorf(format, args...))
}

// ValueOr returns *p, or def when the setting was left out (p is nil).
func ValueOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// readRoot reads data, one YAML document holding a mapping, and returns
// the mapping.
func readRoot(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty")
		}
		// "yaml: line 3: ..." becomes "line 3: ...": the caller puts the
		// file's name in front.
		return nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, errors.New("the file holds several YAML documents; it must hold one")
	}
	root := doc.Content[0]
	if IsNull(root) {
		return nil, errors.New("the file is empty")
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the file must be a YAML mapping of settings (line %d)", root.Line)
	}
	return root, nil
}

// Load reads the configuration file at path and returns what [Parse] does.
// Errors of reading and decoding the file name it: "<prefix>: <path>:
// line 3: ..."; the checks of the settings name the setting alone, as Parse's
// do.
func Load[F, C any](prefix, path string, getenv func(string) string, convert func(*F, func(string) string) (C, error), spec AppsSpec[C]) (C, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var zero C
		return zero, fmt.Errorf("%s: %w", prefix, err)
	}
	return parse(prefix, path, data, getenv, convert, spec)
}

// Parse decodes data, the text of a configuration file, into a new F, then
// returns what convert makes of it: convert validates the settings, reads
// what they point to with getenv and applies the defaults. An error of
// either step is returned as "<prefix>: <error>". A file with apps is read
// as spec says.
//
// Data is one YAML document holding a mapping of settings. Keys match the
// fields' yaml tags; a nested struct is a section (a mapping), a slice of
// structs a list of sections, a yaml.Node field takes the value as
// written, and a type that decodes itself (a yaml.Unmarshaler, as
// [Duration]) checks its value, its errors prefixed with the setting's
// path. An embedded struct tagged `yaml:",inline"` adds its settings to the
// section it is embedded in, so that both daemons share one declaration of
// a shared block. Pointer fields tell a setting left out (nil) from one
// given, even as "" or false.
//
// Unknown keys, keys set twice and values of the wrong type are errors that
// name the setting by its path and line, and never quote the value: yaml's
// own type errors would quote its first characters, which could be a key.
// An unknown key close to a known one of its section suggests it. An empty
// file, several documents and a top level that is not a mapping are errors
// too.
//
// When *F has a method Renames() []Rename, the settings it lists are read
// under their old spelling too, each with a warning; when F embeds
// [Deprecations], the warnings go there, for convert to hand on.
func Parse[F, C any](prefix string, data []byte, getenv func(string) string, convert func(*F, func(string) string) (C, error), spec AppsSpec[C]) (C, error) {
	return parse(prefix, "", data, getenv, convert, spec)
}

// parse is Parse; path, when not "", is the file's name for decoding
// errors.
func parse[F, C any](prefix, path string, data []byte, getenv func(string) string, convert func(*F, func(string) string) (C, error), spec AppsSpec[C]) (C, error) {
	var zero C
	fail := func(err error) (C, error) {
		if path != "" {
			return zero, fmt.Errorf("%s: %s: %w", prefix, path, err)
		}
		return zero, fmt.Errorf("%s: %w", prefix, err)
	}
	var renames []Rename
	if r, ok := any(new(F)).(interface{ Renames() []Rename }); ok {
		renames = r.Renames()
	}
	root, err := readRoot(data)
	if err != nil {
		return fail(err)
	}
	warnings, err := applyRenames(root, renames)
	if err != nil {
		return fail(err)
	}
	// A zero spec (no Top) reads a file of one application: apps is then
	// an unknown setting like any other.
	if spec.Top != nil && len(keyIndexes(root, "apps")) > 0 {
		return parseApps(root, warnings, getenv, convert, spec, renames, fail)
	}
	var f F
	if err := decodeMapping(root, "", reflect.ValueOf(&f).Elem()); err != nil {
		return fail(err)
	}
	c, err := convertFile(&f, getenv, convert, renames, warnings)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", prefix, err)
	}
	return c, nil
}

// convertFile hands the warnings to f and converts it. Its errors say how
// the file wrote a renamed setting, and carry no prefix.
func convertFile[F, C any](f *F, getenv func(string) string, convert func(*F, func(string) string) (C, error), renames []Rename, warnings []string) (C, error) {
	if d, ok := any(f).(interface{ deprecations() *Deprecations }); ok {
		d.deprecations().warnings = append(d.deprecations().warnings, warnings...)
	}
	c, err := convert(f, getenv)
	if err != nil {
		var zero C
		return zero, fmt.Errorf("%w%s", err, writtenAs(err, renames, warnings))
	}
	return c, nil
}

// parseApps reads a file with apps, its renames applied (topWarnings are
// theirs): the top level is decoded alone first, so that an error in it is
// named as a top-level setting, then each application's settings merged
// over it are decoded and converted.
func parseApps[F, C any](root *yaml.Node, topWarnings []string, getenv func(string) string, convert func(*F, func(string) string) (C, error), spec AppsSpec[C], renames []Rename, fail func(error) (C, error)) (C, error) {
	top, nodes, err := appNodes(root, spec.ProcessWide, spec.Alternatives, spec.Replaces, renames)
	if err != nil {
		return fail(err)
	}
	// The top level alone, so that an error in it is named as written
	// there, not as some application's.
	if err := decodeMapping(top, "", reflect.ValueOf(new(F)).Elem()); err != nil {
		return fail(err)
	}
	topNames := settingNames(top)
	apps := make([]App[C], len(nodes))
	for i, n := range nodes {
		var f F
		if err := decodeMapping(n.node, "", reflect.ValueOf(&f).Elem()); err != nil {
			return fail(appError(i, n.own, topNames, err))
		}
		c, err := convertFile(&f, envOf(getenv, n.dropped), convert, renames, slices.Concat(topWarnings, n.warnings))
		if err != nil {
			return fail(appError(i, n.own, topNames, err))
		}
		apps[i] = App[C]{Name: n.name, Hosts: n.hosts, Own: n.own, Config: c}
	}
	if err := checkApps(apps, spec.About); err != nil {
		return fail(err)
	}
	if spec.Check != nil {
		if err := spec.Check(apps, topNames, getenv); err != nil {
			return fail(err)
		}
	}
	return combine(apps, spec.Top), nil
}

// IsNull reports whether n is YAML null, as a key written with no value.
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

var yamlNodeType = reflect.TypeFor[yaml.Node]()

// decodeMapping decodes the mapping n into the struct out, one key at a time,
// matching keys to the fields' yaml tags; path is the YAML path of n ("" for
// the top level).
//
// Decoding by hand, rather than with yaml.Decoder.KnownFields, lets every
// error name the setting by its full path, and keeps values out of messages.
func decodeMapping(n *yaml.Node, path string, out reflect.Value) error {
	if n = resolve(n); IsNull(n) {
		return nil // a section with no settings keeps its defaults
	}
	if n.Kind != yaml.MappingNode {
		return Errorf(path, "must be a mapping of settings (line %d)", n.Line)
	}
	seen := make(map[string]int)
	fields := yamlFields(out.Type())
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		setting := k.Value
		if path != "" {
			setting = path + "." + k.Value
		}
		index, ok := fields[k.Value]
		if !ok || k.Kind != yaml.ScalarNode {
			if k.Kind == yaml.ScalarNode {
				if near := closest(k.Value, slices.Sorted(maps.Keys(fields))); near != "" {
					if path != "" {
						near = path + "." + near
					}
					return fmt.Errorf("unknown setting %q (line %d): did you mean %s?", setting, k.Line, near)
				}
			}
			return fmt.Errorf("unknown setting %q (line %d)", setting, k.Line)
		}
		if line, dup := seen[k.Value]; dup {
			return Errorf(setting, "set twice (lines %d and %d)", line, k.Line)
		}
		seen[k.Value] = k.Line
		if err := decodeSetting(v, setting, out.FieldByIndex(index)); err != nil {
			return err
		}
	}
	return nil
}

// decodeSetting decodes the value of one setting into out.
func decodeSetting(n *yaml.Node, setting string, out reflect.Value) error {
	n = resolve(n)
	t := out.Type()
	switch {
	case t.Kind() == reflect.Struct && t != yamlNodeType && !isUnmarshaler(t):
		return decodeMapping(n, setting, out)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		if IsNull(n) {
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return Errorf(setting, "must be a list (line %d)", n.Line)
		}
		out.Set(reflect.MakeSlice(t, len(n.Content), len(n.Content)))
		for i, item := range n.Content {
			if err := decodeMapping(item, fmt.Sprintf("%s[%d]", setting, i), out.Index(i)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := n.Decode(out.Addr().Interface()); err != nil {
		if _, ok := errors.AsType[*yaml.TypeError](err); !ok && isUnmarshaler(t) {
			return Errorf(setting, "%w", err) // the type's own message, as Duration's
		}
		return Errorf(setting, "must be %s (line %d)", describeSettingType(t), n.Line)
	}
	return nil
}

// isUnmarshaler reports whether a setting of type t decodes itself, as
// [Duration] does: its errors say what is wrong without yaml's quoting.
func isUnmarshaler(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return reflect.PointerTo(t).Implements(reflect.TypeFor[yaml.Unmarshaler]())
}

// describeSettingType names what a setting of type t holds, for messages.
func describeSettingType(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list of strings"
	}
	return "a " + t.String()
}

// yamlFields maps the settings of the section struct type t (their yaml
// tags) to their field indexes, looking into embedded structs tagged
// ",inline".
func yamlFields(t reflect.Type) map[string][]int {
	fields := make(map[string][]int)
	for i := range t.NumField() {
		f := t.Field(i)
		tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case f.Anonymous && tag == "" && opts == "inline" && f.Type.Kind() == reflect.Struct:
			for name, index := range yamlFields(f.Type) {
				fields[name] = append([]int{i}, index...)
			}
		case tag != "" && tag != "-" && f.IsExported():
			fields[tag] = []int{i}
		}
	}
	return fields
}
