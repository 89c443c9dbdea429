package settings

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tokenhandler/tokenhandler/crypto"
)

// A file may list applications (issue #15): `apps:` at the top level, each
// entry a name, its hosts and any per-application setting of the daemon.
// An entry is read as the file's top level with the entry's settings merged
// over it (mappings key by key, any other value replaced), so the top
// level's per-application settings are every application's defaults. The
// process-wide settings (listeners, logging, revocation, timeouts, ...)
// belong to the top level alone. A file without apps is one application,
// exactly as before.

// AppsSpec says how a daemon's configuration file lists applications, for
// [LoadApps] and [ParseApps]. It may be copied.
type AppsSpec[C any] struct {
	// ProcessWide are the top-level settings an application may not set.
	ProcessWide []string
	// Alternatives are groups of top-level settings that give one value
	// in different ways (encryption_keys or encryption_keys_file): an
	// application that sets one of a group drops the top level's others.
	Alternatives [][]string
	// About returns what the checks across applications read of one
	// application's converted configuration.
	About func(C) AppAbout
	// Combine returns the one configuration of a file with apps, made of
	// its applications' (each converted alone, in the file's order), with
	// their names and hosts set.
	Combine func(apps []App[C]) C
}

// AppAbout is what the checks across applications read of one.
type AppAbout struct {
	Keys            *crypto.Keyring
	CookiePrefix    string
	BasePath        string // the agent's base_path; "" for the proxy
	AllowSharedKeys bool
	// Unbound reports whether the application writes or reads cookies of
	// a format that carries no binding (v1 or DARE).
	Unbound bool
}

// App is one application of a file with apps: its name, its host names
// (lower case, checked) and its converted configuration.
type App[C any] struct {
	Name   string
	Hosts  []string
	Config C
}

// LoadApps is [Load] for a daemon whose file may list applications.
func LoadApps[F, C any](prefix, path string, getenv func(string) string, convert func(*F, func(string) string) (C, error), spec AppsSpec[C]) (C, error) {
	return load(prefix, path, getenv, convert, &spec)
}

// ParseApps is [Parse] for a daemon whose file may list applications.
func ParseApps[F, C any](prefix string, data []byte, getenv func(string) string, convert func(*F, func(string) string) (C, error), spec AppsSpec[C]) (C, error) {
	return parse(prefix, "", data, getenv, convert, &spec)
}

// appNodes splits root, a file's top level with an apps key, into the top
// level without apps and each application's settings: the top level with
// the entry's settings but name and hosts merged over it. It also returns
// the names and hosts, checked, and the warnings of the renames each entry
// used.
func appNodes(root *yaml.Node, processWide []string, alternatives [][]string, renames []Rename) (top *yaml.Node, nodes []*yaml.Node, names []string, hosts [][]string, warnings [][]string, err error) {
	top = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: root.Line, Column: root.Column}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Value == "apps" {
			if list != nil {
				return nil, nil, nil, nil, nil, Errorf("apps", "set twice (line %d)", k.Line)
			}
			list = resolve(root.Content[i+1])
			continue
		}
		top.Content = append(top.Content, root.Content[i], root.Content[i+1])
	}
	if list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		return nil, nil, nil, nil, nil, Errorf("apps", "must be a list of applications, each with a name and hosts (line %d)", list.Line)
	}
	for i, entry := range list.Content {
		path := fmt.Sprintf("apps[%d]", i)
		entry = resolve(entry)
		if entry.Kind != yaml.MappingNode {
			return nil, nil, nil, nil, nil, Errorf(path, "must be a mapping of settings (line %d)", entry.Line)
		}
		// The entry is the caller's: work on a copy of its list of keys.
		entry = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: entry.Line, Content: slices.Clone(entry.Content)}
		w, err := applyRenames(entry, renames)
		if err != nil {
			return nil, nil, nil, nil, nil, fmt.Errorf("%s.%w", path, err)
		}
		warnings = append(warnings, w)
		var name string
		var hostList []string
		var own []*yaml.Node
		seen := make(map[string]int)
		for j := 0; j+1 < len(entry.Content); j += 2 {
			k, v := entry.Content[j], resolve(entry.Content[j+1])
			setting := path + "." + k.Value
			if line, dup := seen[k.Value]; dup {
				return nil, nil, nil, nil, nil, Errorf(setting, "set twice (lines %d and %d)", line, k.Line)
			}
			seen[k.Value] = k.Line
			switch {
			case k.Value == "name":
				if v.Kind != yaml.ScalarNode || IsNull(v) {
					return nil, nil, nil, nil, nil, Errorf(setting, "must be a string (line %d)", v.Line)
				}
				name = v.Value
			case k.Value == "hosts":
				if err := v.Decode(&hostList); err != nil || v.Kind != yaml.SequenceNode {
					return nil, nil, nil, nil, nil, Errorf(setting, "must be a list of host names (line %d)", v.Line)
				}
			case slices.Contains(processWide, k.Value):
				return nil, nil, nil, nil, nil, Errorf(setting, "is process-wide (line %d): set it at the top level, for every application", k.Line)
			default:
				own = append(own, k, entry.Content[j+1])
			}
		}
		if err := CheckAppName(path+".name", name); err != nil {
			return nil, nil, nil, nil, nil, err
		}
		if j := slices.Index(names, name); j >= 0 {
			return nil, nil, nil, nil, nil, Errorf(path+".name", "%q is also apps[%d].name", name, j)
		}
		if len(hostList) == 0 {
			return nil, nil, nil, nil, nil, Errorf(path+".hosts", "is required: the host names the application's requests name in their Host header, as [api.shop.example]")
		}
		for j, h := range hostList {
			if hostList[j], err = CheckHost(hostKey(i, j), h); err != nil {
				return nil, nil, nil, nil, nil, err
			}
			if k := slices.Index(hostList[:j], hostList[j]); k >= 0 {
				return nil, nil, nil, nil, nil, Errorf(hostKey(i, j), "%q is also %s", h, hostKey(i, k))
			}
		}
		names, hosts = append(names, name), append(hosts, hostList)
		base := top
		for _, group := range alternatives {
			if slices.ContainsFunc(keyPairs(&yaml.Node{Content: own}), func(k *yaml.Node) bool { return slices.Contains(group, k.Value) }) {
				base = without(base, group)
			}
		}
		nodes = append(nodes, merge(base, &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: own}))
	}
	return top, nodes, names, hosts, warnings, nil
}

// without returns the mapping n without the keys named.
func without(n *yaml.Node, keys []string) *yaml.Node {
	out := &yaml.Node{Kind: n.Kind, Tag: n.Tag, Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !slices.Contains(keys, n.Content[i].Value) {
			out.Content = append(out.Content, n.Content[i], n.Content[i+1])
		}
	}
	return out
}

// resolve follows an alias to what it names.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

// merge returns the mapping base with over's keys merged in: a key both
// map to mappings is merged the same way, any other key of over replaces
// base's. Neither node changes.
func merge(base, over *yaml.Node) *yaml.Node {
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: base.Line, Column: base.Column, Content: slices.Clone(base.Content)}
	for i := 0; i+1 < len(over.Content); i += 2 {
		k, v := over.Content[i], over.Content[i+1]
		j := slices.IndexFunc(keyPairs(out), func(key *yaml.Node) bool { return key.Value == k.Value })
		switch {
		case j < 0:
			out.Content = append(out.Content, k, v)
		case resolve(out.Content[2*j+1]).Kind == yaml.MappingNode && resolve(v).Kind == yaml.MappingNode:
			out.Content[2*j+1] = merge(resolve(out.Content[2*j+1]), resolve(v))
		default:
			out.Content[2*j], out.Content[2*j+1] = k, v
		}
	}
	return out
}

// keyPairs returns the keys of the mapping n, in order.
func keyPairs(n *yaml.Node) []*yaml.Node {
	keys := make([]*yaml.Node, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i])
	}
	return keys
}

// checkApps makes the checks across the applications of one file: a key
// is one application's alone unless allow_shared_keys says otherwise, each
// application names its cookies apart (a browser that sends the cookies of
// two, on a shared host or cookie domain, must not mix them), and no two
// applications answer the same host (and, for the agent, base path).
func checkApps[C any](apps []App[C], about func(C) AppAbout) error {
	type route struct{ host, base string }
	owner := make(map[route]int)
	for i, a := range apps {
		ai := about(a.Config)
		for j := range i {
			aj := about(apps[j].Config)
			if ai.Keys.Shares(aj.Keys) {
				switch {
				case !ai.AllowSharedKeys:
					return Errorf(fmt.Sprintf("apps[%d].encryption_keys", i), "share a key with apps[%d] (%s): give each application keys of its own (thctl keygen), or set allow_shared_keys: true at the top level", j, apps[j].Name)
				case ai.Unbound || aj.Unbound:
					// A v1 or DARE value says nothing of its application:
					// renamed, one application's cookie would open at the
					// other.
					return Errorf(fmt.Sprintf("apps[%d].encryption_keys", i), "share a key with apps[%d] (%s), and one of them writes or reads cookie format v1 or dare, which carry no application binding: allow_shared_keys needs cookie.format v2 and no cookie.accept of v1 or dare in both", j, apps[j].Name)
				}
			}
			if ai.CookiePrefix == aj.CookiePrefix {
				return Errorf(fmt.Sprintf("apps[%d].cookie.prefix", i), "%q is also the cookie prefix of apps[%d] (%s): give each application a prefix of its own, so that a browser that sends both applications' cookies never mixes them", ai.CookiePrefix, j, apps[j].Name)
			}
		}
		for h, host := range a.Hosts {
			r := route{host, ai.BasePath}
			if j, dup := owner[r]; dup {
				what := "the host"
				if r.base != "" {
					what = "the host and base_path"
				}
				return Errorf(hostKey(i, h), "%q: apps[%d] (%s) answers %s already", host, j, apps[j].Name, what)
			}
			owner[r] = i
		}
	}
	return nil
}

// appError names the application an error of its conversion is in: the
// setting "client_id" becomes "apps[1].client_id".
func appError(i int, err error) error {
	msg := err.Error()
	if strings.HasPrefix(msg, "unknown setting \"") {
		return fmt.Errorf("unknown setting \"apps[%d].%s", i, strings.TrimPrefix(msg, "unknown setting \""))
	}
	return fmt.Errorf("apps[%d].%w", i, err)
}

// AppendNew appends each of vs that list does not hold yet.
func AppendNew(list []string, vs ...string) []string {
	for _, v := range vs {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// Unbound reports whether a daemon that writes cookies in format write and
// reads accept besides reads a format that carries no binding: v1 or DARE.
func Unbound(write crypto.Format, accept []crypto.Format) bool {
	if write != 0 && write != crypto.FormatV2 {
		return true
	}
	return slices.ContainsFunc(accept, func(f crypto.Format) bool { return f != crypto.FormatV2 })
}
