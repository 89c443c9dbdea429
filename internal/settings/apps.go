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
// [Load] and [Parse]. It may be copied.
type AppsSpec[C any] struct {
	// ProcessWide are the top-level settings an application may not set.
	ProcessWide []string
	// Alternatives are groups of settings that give one value in
	// different ways (encryption_keys, encryption_keys_file and the
	// environment variable $TH_ENCRYPTION_KEYS): an application that sets
	// one of a group drops the top level's others and the environment's.
	Alternatives [][]string
	// Replaces maps a setting to the top-level settings an entry that sets
	// it drops: an application on an issuer of its own takes none of the
	// top level's endpoints, which belong to the top level's issuer.
	Replaces map[string][]string
	// Check, unless nil, makes the daemon's own checks across the
	// applications; top are the settings of the file's top level.
	Check func(apps []App[C], top []string, getenv func(string) string) error
	// About returns what the checks across applications read of one
	// application's converted configuration.
	About func(C) AppAbout
	// Top returns the top level of a file with apps, made of the first
	// application's configuration: its process-wide settings, which are
	// every application's. Load and Parse add the applications (each
	// converted alone, in the file's order, with their names and hosts
	// set) and the rest of its [AppSet].
	Top func(first C) C
}

// AppSet are the fields of a daemon's configuration that say which
// application of a file it is, or which applications the file lists. Both
// daemons' Config embed them, as AppSet[*Config], for [Load] and [Parse] to
// fill. They may be copied; copies share Hosts, Apps and Warnings.
type AppSet[C any] struct {
	// Name is the application's name (apps[i].name, issue #15): the app
	// label of its metrics, a field of its log lines, and part of the
	// associated data of every v2 cookie it seals (session.Codec.WithApp).
	// "" in a file without apps: the one application, labelled as before.
	Name string
	// Hosts are the host names the application answers (apps[i].hosts):
	// lower case, without port, as [CheckHost] returns them. Nil in a file
	// without apps: any host.
	Hosts []string
	// Apps are the applications of a file with apps (issue #15), each a
	// complete configuration: its own settings, merged over the file's top
	// level, and the process-wide ones (listen, metrics_listen, log,
	// revocation, timeouts, ...) of the top level. In the top level's
	// configuration the per-application fields are zero and unused. Nil in
	// a file without apps.
	Apps []C
	// AllowSharedKeys (YAML allow_shared_keys) lets two applications seal
	// with a key they share; refused otherwise. Their cookies are still
	// bound to their application (the name is in the associated data).
	AllowSharedKeys bool
	// Warnings name each deprecated spelling the file used and the one to
	// write instead ("cookie_format (line 3) is deprecated: write
	// cookie.format"), each once; the daemon logs them at start and
	// -check-config prints them. Nil for a configuration built in Go.
	Warnings []string
}

func (s *AppSet[C]) appSet() *AppSet[C] { return s }

// appSetOf returns the AppSet c embeds.
func appSetOf[C any](c C) *AppSet[C] {
	return any(c).(interface{ appSet() *AppSet[C] }).appSet()
}

// combine returns the one configuration of a file with apps: the top level
// top makes of the first application's, with every application under it,
// named, and the warnings of them all, each once.
func combine[C any](apps []App[C], top func(first C) C) C {
	c := top(apps[0].Config)
	t := appSetOf(c)
	t.AllowSharedKeys = appSetOf(apps[0].Config).AllowSharedKeys
	for _, a := range apps {
		s := appSetOf(a.Config)
		s.Name, s.Hosts = a.Name, a.Hosts
		for _, w := range s.Warnings {
			if !slices.Contains(t.Warnings, w) {
				t.Warnings = append(t.Warnings, w)
			}
		}
		t.Apps = append(t.Apps, a.Config)
	}
	return c
}

// AppAbout is what the checks across applications read of one.
type AppAbout struct {
	Keys         *crypto.Keyring
	CookiePrefix string
	BasePath     string // the agent's base_path; "" for the proxy
	// Unbound reports whether the application writes or reads cookies of
	// a format that carries no binding (v1 or DARE).
	Unbound bool
	// Origins are the web origins the application trusts.
	Origins []string
}

// App is one application of a file with apps: its name, its host names
// (lower case, checked) and its converted configuration.
type App[C any] struct {
	Name   string
	Hosts  []string
	Own    []string // the settings its entry sets, but name and hosts
	Config C
}

// appNode is one entry of apps, split from the file.
type appNode struct {
	name     string
	hosts    []string   // checked, lower case
	own      []string   // the settings the entry sets, but name and hosts
	dropped  []string   // the top level's settings (and "$" variables) own replaces
	node     *yaml.Node // the top level with the entry's settings merged over it
	warnings []string   // of the renames the entry used
}

// appNodes splits root, a file's top level with an apps key, into the top
// level without apps and each application's entry. An entry that sets a
// setting of one of alternatives drops the top level's others, and one
// that sets a setting of replaces the top-level settings it names.
func appNodes(root *yaml.Node, processWide []string, alternatives [][]string, replaces map[string][]string, renames []Rename) (top *yaml.Node, apps []appNode, err error) {
	top = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: root.Line, Column: root.Column}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Value == "apps" {
			if list != nil {
				return nil, nil, Errorf("apps", "set twice (line %d)", k.Line)
			}
			list = resolve(root.Content[i+1])
			continue
		}
		top.Content = append(top.Content, root.Content[i], root.Content[i+1])
	}
	if list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		return nil, nil, Errorf("apps", "must be a list of applications, each with a name and hosts (line %d)", list.Line)
	}
	for i, entry := range list.Content {
		a, err := readAppNode(fmt.Sprintf("apps[%d]", i), entry, processWide, renames)
		if err != nil {
			return nil, nil, err
		}
		if j := slices.IndexFunc(apps, func(b appNode) bool { return b.name == a.name }); j >= 0 {
			return nil, nil, Errorf(fmt.Sprintf("apps[%d].name", i), "%q is also apps[%d].name", a.name, j)
		}
		for j, h := range a.hosts {
			if a.hosts[j], err = CheckHost(hostKey(i, j), h); err != nil {
				return nil, nil, err
			}
			if k := slices.Index(a.hosts[:j], a.hosts[j]); k >= 0 {
				return nil, nil, Errorf(hostKey(i, j), "%q is also %s", h, hostKey(i, k))
			}
		}
		for _, group := range alternatives {
			if slices.ContainsFunc(a.own, func(k string) bool { return slices.Contains(group, k) }) {
				a.dropped = append(a.dropped, group...)
			}
		}
		for _, k := range a.own {
			a.dropped = append(a.dropped, replaces[k]...)
		}
		a.node = merge(without(top, a.dropped), a.node)
		apps = append(apps, a)
	}
	return top, apps, nil
}

// readAppNode reads one entry of apps, at path ("apps[1]"): its name and
// hosts, and its other settings (in a.node, not merged yet), which must not
// be process-wide. The entry is copied first, aliases resolved, so that
// neither the renames nor the merge change a node another entry shares.
func readAppNode(path string, entry *yaml.Node, processWide []string, renames []Rename) (a appNode, err error) {
	entry = deepCopy(entry)
	if entry.Kind != yaml.MappingNode {
		return a, Errorf(path, "must be a mapping of settings (line %d)", entry.Line)
	}
	if a.warnings, err = applyRenames(entry, renames); err != nil {
		return a, fmt.Errorf("%s.%w", path, err)
	}
	a.node = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: entry.Line}
	seen := make(map[string]int)
	for j := 0; j+1 < len(entry.Content); j += 2 {
		k, v := entry.Content[j], entry.Content[j+1]
		setting := path + "." + k.Value
		if line, dup := seen[k.Value]; dup {
			return a, Errorf(setting, "set twice (lines %d and %d)", line, k.Line)
		}
		seen[k.Value] = k.Line
		switch {
		case k.Value == "name":
			if v.Kind != yaml.ScalarNode || IsNull(v) {
				return a, Errorf(setting, "must be a string (line %d)", v.Line)
			}
			a.name = v.Value
		case k.Value == "hosts":
			if err := v.Decode(&a.hosts); err != nil || v.Kind != yaml.SequenceNode {
				return a, Errorf(setting, "must be a list of host names (line %d)", v.Line)
			}
		case slices.Contains(processWide, k.Value):
			return a, Errorf(setting, "is process-wide (line %d): set it at the top level, for every application", k.Line)
		default:
			a.own = append(a.own, k.Value)
			a.node.Content = append(a.node.Content, k, v)
		}
	}
	if err := CheckAppName(path+".name", a.name); err != nil {
		return a, err
	}
	if len(a.hosts) == 0 {
		return a, Errorf(path+".hosts", "is required: the host names the application's requests name in their Host header, as [api.shop.example]")
	}
	return a, nil
}

// deepCopy copies n and everything under it, aliases replaced by copies of
// what they name.
func deepCopy(n *yaml.Node) *yaml.Node {
	n = resolve(n)
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		c.Content[i] = deepCopy(child)
	}
	return &c
}

// envOf returns getenv without the environment variables dropped names
// (an entry that starts with "$" names one): an application's own setting
// replaces the environment's default, as it replaces the top level's.
func envOf(getenv func(string) string, dropped []string) func(string) string {
	return func(k string) string {
		if getenv == nil || slices.Contains(dropped, "$"+k) {
			return ""
		}
		return getenv(k)
	}
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
		found := keyIndexes(out, k.Value)
		switch {
		case len(found) == 0:
			out.Content = append(out.Content, k, v)
		case resolve(out.Content[found[0]+1]).Kind == yaml.MappingNode && resolve(v).Kind == yaml.MappingNode:
			out.Content[found[0]+1] = merge(resolve(out.Content[found[0]+1]), resolve(v))
		default:
			out.Content[found[0]], out.Content[found[0]+1] = k, v
		}
	}
	return out
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
				case !appSetOf(a.Config).AllowSharedKeys:
					return Errorf(fmt.Sprintf("apps[%d].encryption_keys", i), "share a key with apps[%d] (%s): give each application keys of its own (thctl keygen), or set allow_shared_keys: true at the top level", j, apps[j].Name)
				case ai.Unbound || aj.Unbound:
					// A v1 or DARE value says nothing of its application:
					// renamed, one application's cookie would open at the
					// other.
					return Errorf(fmt.Sprintf("apps[%d].encryption_keys", i), "share a key with apps[%d] (%s), and one of them writes or reads cookie format v1 or dare, which carry no application binding: allow_shared_keys needs cookie.format v2 and no cookie.accept of v1 or dare in both", j, apps[j].Name)
				}
			}
			for _, o := range ai.Origins {
				if slices.Contains(aj.Origins, o) {
					// A page of that origin could use either application's
					// cookies (one site: SameSite does not keep them apart).
					return Errorf(fmt.Sprintf("apps[%d].trusted_web_origins", i), "%q is also trusted by apps[%d] (%s): a page of an origin two applications trust could call either with its cookies; give each application the origins of its own SPA", o, j, apps[j].Name)
				}
			}
			if ai.CookiePrefix == aj.CookiePrefix {
				return Errorf(fmt.Sprintf("apps[%d].cookie.prefix", i), "%q is also the cookie prefix of apps[%d] (%s): give each application a prefix of its own, so that a browser that sends both applications' cookies never mixes them", ai.CookiePrefix, j, apps[j].Name)
			}
		}
		for h, host := range a.Hosts {
			r := route{host, ai.BasePath}
			for other, j := range owner {
				if other.host == host && other.base != r.base && (UnderBasePath(r.base, other.base) || UnderBasePath(other.base, r.base)) {
					return Errorf(hostKey(i, h), "%q: base_path %q and apps[%d] (%s)'s %q on the same host nest: one application's paths would hide the other's; give them base paths apart", host, r.base, j, apps[j].Name, other.base)
				}
			}
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
// setting "client_id" becomes "apps[1].client_id". A setting the entry
// does not set but the top level does keeps its top-level name, with the
// application it was read for: "cors.max_age: ... (read for apps[0])".
func appError(i int, own, top []string, err error) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "unknown setting \""); ok {
		return fmt.Errorf("unknown setting \"apps[%d].%s", i, rest)
	}
	first := msg[:strings.IndexAny(msg+":", ".[:")]
	if !slices.Contains(own, first) && slices.Contains(top, first) {
		return fmt.Errorf("%w (the top level's, read for apps[%d])", err, i)
	}
	return fmt.Errorf("apps[%d].%w", i, err)
}

// settingNames returns the keys of the mapping n.
func settingNames(n *yaml.Node) []string {
	var names []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		names = append(names, n.Content[i].Value)
	}
	return names
}

// Unbound reports whether a daemon that writes cookies in format write and
// reads accept besides reads a format that carries no binding: v1 or DARE.
func Unbound(write crypto.Format, accept []crypto.Format) bool {
	if write != 0 && write != crypto.FormatV2 {
		return true
	}
	return slices.ContainsFunc(accept, func(f crypto.Format) bool { return f != crypto.FormatV2 })
}

// UnderBasePath reports whether path is base or under it, at a segment
// boundary: base, then "/" or nothing ("/oauth-agent" covers
// /oauth-agent/refresh, not /oauth-agentx). base is an agent's base_path,
// which never ends with "/". It allocates nothing: the agent picks a
// request's application with it.
func UnderBasePath[P string | []byte](path P, base string) bool {
	return len(path) >= len(base) && string(path[:len(base)]) == base &&
		(len(path) == len(base) || path[len(base)] == '/')
}
