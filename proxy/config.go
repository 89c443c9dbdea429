package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/internal/workers"
)

// Config is the validated configuration of the oauth-proxy binary (contract §7).
// Build one with [LoadConfig] or [ParseConfig], which apply the defaults noted
// beside each field and refuse anything invalid, naming the setting.
//
// A Config is plain data and may be copied; copies share its slices and its
// Keyring. It is read-only after ParseConfig returns: nothing modifies it, or
// the slices it holds, afterwards, so one Config may be shared by any number of
// goroutines. Keys is safe for concurrent use.
type Config struct {
	// AppSet names the application and lists those of a file with apps
	// (issue #15), with the warnings of the file.
	settings.AppSet[*Config]
	Listen            string             // "host:port" or "unix:/abs/path.sock"; default "127.0.0.1:8081"
	MetricsListen     string             // same forms; "" (default) = no metrics/health listener
	CookieNamePrefix  string             // YAML cookie.prefix; default "example"
	NamePrefix        browser.NamePrefix // YAML cookie.name_prefix: __Host- or __Host-Http- names
	Keys              *crypto.Keyring    // built from the one key source
	TrustedWebOrigins []string
	CORS              CORS
	AllowTokens       bool
	// AllowTokenSchemes (YAML allow_token_schemes) are authorization
	// schemes besides Bearer, such as DPoP, whose requests pass through
	// untouched with allow_tokens; compared case-insensitively. Default
	// none; refused without allow_tokens.
	AllowTokenSchemes []string
	// TrustedProxies (YAML trusted_proxies) are the peers whose
	// X-Forwarded-For, -Proto, -Host and Forwarded headers are kept (the
	// address appended to X-Forwarded-For); from any other peer they are
	// replaced. A Unix-socket peer is always trusted. Left out: loopback
	// (127.0.0.0/8 and ::1), where NGINX runs beside the proxy; an empty
	// list trusts no TCP peer (docs/proxy.md, "Forwarding headers").
	TrustedProxies      []netip.Prefix
	RemoveCookieHeaders bool   // default true (YAML key present with false turns it off)
	AuthPath            string // default "/_oauth-proxy/auth"
	// AuthEndpoint turns on the auth_request endpoint at AuthPath. It
	// answers a valid cookie with the decrypted token in a header, so it is
	// for NGINX alone: default true without Routes (auth_request mode) and
	// false with Routes, where AuthPath is an ordinary path.
	AuthEndpoint bool
	Routes       []Route
	// CookieFormat is the format the OAuth Agent writes (YAML
	// cookie.format: v2, the default, v1 or dare); the proxy opens it and
	// every format in CookieAccept (YAML cookie.accept, for a migration;
	// default none with v2, [v1, dare] with v1 or dare). v2 cookies are
	// always opened. The zero Format is v2, as in package session.
	CookieFormat crypto.Format
	CookieAccept []crypto.Format
	// MaxLifetime is YAML session.max_lifetime: a v2 cookie whose session
	// started longer ago is refused, whatever its own expiry says. Default
	// 12h; zero means the default.
	MaxLifetime time.Duration
	Timeouts    Timeouts
	Limits      Limits
	Log         Log
	// Revocation is YAML revocation (issue #13, shared with the agent):
	// where the proxy learns of sessions ended by a back-channel logout.
	// Store embedded (the default) follows Revocation.Feed, the agent's
	// ops listener; with no feed the proxy follows nothing and warns at
	// start; so does the zero value (no revocation section). Store redis
	// follows Redis; off follows nothing. state_dir is the agent's and
	// refused here, and so is fail_closed_after without anything to
	// follow.
	Revocation settings.RevocationSettings
	// Workers is YAML workers: how many processes serve, each with one Go
	// processor: 1 (the default), 2 to 64, or auto, runtime.GOMAXPROCS(0)
	// as the process started (within a cgroup CPU quota). With more than
	// one, the process started supervises that many workers
	// (internal/workers, docs/operations.md).
	Workers int
	// Worker is, in a worker of such a set, its index ("" elsewhere):
	// Listen and MetricsListen are then the worker's own, from the
	// environment its supervisor sets (workers.EnvWorker, EnvListen,
	// EnvMetrics), and a TCP Listen is bound with SO_REUSEPORT, shared by
	// every worker.
	Worker string
}

// Applications returns the applications c serves: c.Apps, or c itself for
// a file without apps.
func (c *Config) Applications() []*Config {
	if len(c.Apps) == 0 {
		return []*Config{c}
	}
	return c.Apps
}

// CORS is the cross-origin part of a [Config]. It is plain data, read-only
// after ParseConfig, like Config.
type CORS struct {
	Enabled       bool     // default true
	AllowMethods  []string // default empty (then the proxy uses its built-in list)
	AllowHeaders  []string // default empty (then the proxy echoes Access-Control-Request-Headers)
	ExposeHeaders []string
	MaxAge        int // seconds, default 86400, 0 allowed, negative refused
}

// Route sends requests whose path starts with PathPrefix to its upstreams. It
// is plain data, read-only after ParseConfig, like Config.
type Route struct {
	PathPrefix  string     // starts and ends with "/"
	Upstreams   []Upstream // at least one
	StripPrefix bool
}

// Upstream is one upstream server of a [Route]. It is plain data and may be
// copied.
type Upstream struct {
	Addr string // host:port, port filled in from the scheme when absent (80/443)
	TLS  bool   // https
	URL  string // the upstream as written, for logs; never holds user information
}

// Timeouts of a [Config]: of the listener and of a shutdown
// (settings.ServerTimeouts: read, write, idle and shutdown, shutdown_delay),
// and the proxy's own. All but Park and ShutdownDelay are greater than
// zero. It may be copied.
type Timeouts struct {
	settings.ServerTimeouts
	Upstream time.Duration // default 30s
	// Park is how long a keep-alive connection waits idle before it is
	// parked: its goroutine and buffers are released until the client's
	// next request (package park). Default 1s, but 0 (off) when Listen is
	// a Unix socket or a loopback address (behind NGINX); 0 turns parking
	// off, else at least 100ms.
	Park time.Duration
}

// Limits of a [Config]. It may be copied.
type Limits struct {
	MaxRequestHeaderBytes int // 4096 to 1 MiB, default 16384: large cookies must fit (contract §6)
	MaxBodyBytes          int // 1 to 1 GiB, default 10485760
}

// Log is the logging part of a [Config]: level (default info) and format
// ("json", the default, or "console"), as the agent's. It may be copied.
type Log = settings.LogSettings

// LoadConfig reads the YAML file at path and returns the validated
// configuration, as [ParseConfig] does.
func LoadConfig(path string, getenv func(string) string) (*Config, error) {
	return settings.Load("proxy: config", path, getenv, (*fileConfig).config, appsSpec)
}

// ParseConfig parses and validates YAML configuration text. It returns a
// Config with defaults applied, or an error that starts with "proxy: config: "
// and names the setting by its YAML path, such as "routes[1].upstream".
// Errors never quote key material.
//
// The keys come from exactly one of encryption_keys, encryption_keys_file and
// the environment variable TH_ENCRYPTION_KEYS, read with getenv (usually
// os.Getenv; nil means an empty environment).
func ParseConfig(data []byte, getenv func(string) string) (*Config, error) {
	return settings.Parse("proxy: config", data, getenv, (*fileConfig).config, appsSpec)
}

// appsSpec is how the proxy's file lists applications (issue #15): every
// setting is an application's but these, the process's.
var appsSpec = settings.AppsSpec[*Config]{
	ProcessWide:  []string{"listen", "metrics_listen", "log", "revocation", "timeouts", "limits", "workers", "trusted_proxies", "allow_shared_keys"},
	Alternatives: [][]string{{"encryption_keys", "encryption_keys_file", "$" + settings.KeySource.Env}},
	About: func(c *Config) settings.AppAbout {
		return settings.AppAbout{Keys: c.Keys, CookiePrefix: c.CookieNamePrefix, Unbound: settings.Unbound(c.CookieFormat, c.CookieAccept), Origins: c.TrustedWebOrigins}
	},
	Top: func(first *Config) *Config {
		return &Config{
			Listen: first.Listen, MetricsListen: first.MetricsListen, Log: first.Log, Revocation: first.Revocation,
			Timeouts: first.Timeouts, Limits: first.Limits, Workers: first.Workers, Worker: first.Worker, TrustedProxies: first.TrustedProxies,
		}
	},
}

// fileConfig is the configuration file as written. Pointers tell a setting
// left out (nil: use the default) from one given, even as "" or false. The
// settings the agent has too are declared in package settings (contract §7).
type fileConfig struct {
	settings.Deprecations
	settings.Shared `yaml:",inline"`

	Cookie              settings.Cookie `yaml:"cookie"`
	CORS                fileCORS        `yaml:"cors"`
	AllowTokens         bool            `yaml:"allow_tokens"`
	AllowTokenSchemes   []string        `yaml:"allow_token_schemes"`
	TrustedProxies      *[]string       `yaml:"trusted_proxies"`
	RemoveCookieHeaders *bool           `yaml:"remove_cookie_headers"`
	AuthPath            *string         `yaml:"auth_path"`
	AuthEndpoint        *bool           `yaml:"auth_endpoint"`
	Routes              []fileRoute     `yaml:"routes"`
	Timeouts            fileTimeouts    `yaml:"timeouts"`
	Limits              fileLimits      `yaml:"limits"`
	Workers             *string         `yaml:"workers"`
}

// Renames are the settings the file may still spell as before issue #16.
func (*fileConfig) Renames() []settings.Rename { return settings.SharedRenames }

type fileCORS struct {
	settings.CORS `yaml:",inline"`
	AllowMethods  []string `yaml:"allow_methods"`
	AllowHeaders  []string `yaml:"allow_headers"`
	ExposeHeaders []string `yaml:"expose_headers"`
	MaxAge        *int     `yaml:"max_age"`
}

type fileRoute struct {
	PathPrefix  string    `yaml:"path_prefix"`
	Upstream    yaml.Node `yaml:"upstream"` // one URL or a list of URLs
	StripPrefix bool      `yaml:"strip_prefix"`
}

type fileTimeouts struct {
	settings.Timeouts `yaml:",inline"`
	Upstream          *settings.Duration `yaml:"upstream"`
	Park              *settings.Duration `yaml:"park"`
}

type fileLimits struct {
	MaxRequestHeaderBytes *int `yaml:"max_request_header_bytes"`
	MaxBodyBytes          *int `yaml:"max_body_bytes"`
}

// config validates f and converts it, applying defaults. Its errors come
// without the "proxy: config: " prefix.
func (f *fileConfig) config(getenv func(string) string) (*Config, error) {
	c := &Config{
		AllowTokens:         f.AllowTokens,
		RemoveCookieHeaders: settings.ValueOr(f.RemoveCookieHeaders, true),
		AuthPath:            settings.ValueOr(f.AuthPath, "/_oauth-proxy/auth"),
		CORS: CORS{
			Enabled:       f.CORS.On(),
			AllowMethods:  f.CORS.AllowMethods,
			AllowHeaders:  f.CORS.AllowHeaders,
			ExposeHeaders: f.CORS.ExposeHeaders,
			MaxAge:        settings.ValueOr(f.CORS.MaxAge, 86400),
		},
	}

	shared, err := f.Shared.Parse("127.0.0.1:8081", "/run/tokenhandler/proxy.sock", getenv)
	if err != nil {
		return nil, err
	}
	c.Listen, c.MetricsListen, c.TrustedWebOrigins, c.Keys = shared.Listen, shared.MetricsListen, shared.TrustedWebOrigins, shared.Keys
	c.MaxLifetime, c.Log, c.Revocation = shared.MaxLifetime, shared.Log, shared.Revocation
	c.AllowSharedKeys = f.AllowSharedKeys
	if c.Workers, err = parseWorkers(settings.ValueOr(f.Workers, defaultWorkers)); err != nil {
		return nil, err
	}
	if _, port, _ := net.SplitHostPort(c.Listen); c.Workers > 1 && port == "0" {
		return nil, settings.Errorf("workers", "needs a fixed listen port: with port 0 each of the %d workers would get a port of its own", c.Workers)
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if c.Worker = getenv(workers.EnvWorker); c.Worker != "" {
		// A worker of a set: cmd/oauth-proxy also wants its supervisor's
		// pipe, so that a stray variable cannot move a single process's
		// listen. The file's own workers may say 1: a worker restarted
		// after an edit to 1 serves on until the set is restarted.
		if c.Listen, c.MetricsListen = getenv(workers.EnvListen), getenv(workers.EnvMetrics); c.Listen == "" || c.MetricsListen == "" {
			return nil, settings.Errorf("workers", "%s is set without %s and %s: they are for the workers of a set only; unset it", workers.EnvWorker, workers.EnvListen, workers.EnvMetrics)
		}
	}
	cookie, err := f.Cookie.Parse(&f.Deprecations)
	if err != nil {
		return nil, err
	}
	c.CookieNamePrefix, c.NamePrefix, c.CookieFormat, c.CookieAccept = cookie.Prefix, cookie.NamePrefix, cookie.Format, cookie.Accept

	for _, l := range []struct {
		setting string
		list    []string
	}{
		{"cors.allow_methods", c.CORS.AllowMethods},
		{"cors.allow_headers", c.CORS.AllowHeaders},
		{"cors.expose_headers", c.CORS.ExposeHeaders},
	} {
		if err := settings.CheckList(l.setting, l.list, nil, settings.CheckToken); err != nil {
			return nil, err
		}
	}
	if c.AllowTokenSchemes, err = f.tokenSchemes(); err != nil {
		return nil, err
	}
	if c.TrustedProxies, err = parseTrustedProxies(f.TrustedProxies); err != nil {
		return nil, err
	}
	if c.CORS.MaxAge < 0 {
		return nil, settings.Errorf("cors.max_age", "must not be negative, got %d", c.CORS.MaxAge)
	}

	// The path NGINX auth_request calls.
	if err := (settings.PathRule{MaxLen: 256}).Check("auth_path", c.AuthPath); err != nil {
		return nil, err
	}
	c.AuthEndpoint = settings.ValueOr(f.AuthEndpoint, len(f.Routes) == 0)
	if c.Routes, err = f.routes(c.AuthPath, c.AuthEndpoint); err != nil {
		return nil, err
	}

	if c.Timeouts.ServerTimeouts, err = f.Timeouts.Timeouts.Parse("timeouts"); err != nil {
		return nil, err
	}
	if c.Timeouts.Upstream, err = f.Timeouts.Upstream.Positive("timeouts.upstream", 30*time.Second); err != nil {
		return nil, err
	}
	if _, err = f.Timeouts.Park.Range("timeouts.park", 0, 0, time.Hour); err != nil {
		return nil, err
	}
	if c.Timeouts.Park, err = f.Timeouts.Park.OffOrAtLeast("timeouts.park", defaultPark(c.Listen), 100*time.Millisecond, "off"); err != nil {
		return nil, err
	}

	for _, l := range []struct {
		setting       string
		value         *int
		def, min, max int
		dst           *int
	}{
		{"limits.max_request_header_bytes", f.Limits.MaxRequestHeaderBytes, 16384, 4096, 1 << 20, &c.Limits.MaxRequestHeaderBytes},
		{"limits.max_body_bytes", f.Limits.MaxBodyBytes, 10 << 20, 1, 1 << 30, &c.Limits.MaxBodyBytes},
	} {
		n := settings.ValueOr(l.value, l.def)
		if n < l.min || n > l.max {
			return nil, settings.Errorf(l.setting, "must be between %d and %d, got %d", l.min, l.max, n)
		}
		*l.dst = n
	}

	// A revocation section left out is the zero value: following nothing.
	if c.Revocation.StateDir != "" {
		return nil, settings.Errorf("revocation.state_dir", "is the agent's setting: a proxy keeps no list of its own, it follows revocation.feed")
	}
	if c.Revocation.Store == settings.StoreEmbedded && c.Revocation.Feed == "" && c.Revocation.FailClosedAfter > 0 {
		return nil, settings.Errorf("revocation.fail_closed_after", "needs revocation.feed: a proxy that follows no feed has no list to be stale")
	}
	c.Warnings = f.Warnings()
	return c, nil
}

// routes validates and converts the routes. No route may take the requests
// meant for the auth endpoint when it is on.
func (f *fileConfig) routes(authPath string, authEndpoint bool) ([]Route, error) {
	var routes []Route
	for i, fr := range f.Routes {
		setting := fmt.Sprintf("routes[%d].path_prefix", i)
		p := fr.PathPrefix
		if p == "" {
			return nil, settings.Errorf(setting, "is required")
		}
		if err := (settings.PathRule{Slash: 1, NoDotDot: true}).Check(setting, p); err != nil {
			return nil, err
		}
		switch {
		case authEndpoint && strings.HasPrefix(authPath, p):
			return nil, settings.Errorf(setting, "%q overlaps the auth endpoint auth_path %q (auth_endpoint is on)", p, authPath)
		}
		for j, r := range routes {
			if r.PathPrefix == p {
				return nil, settings.Errorf(setting, "duplicate or overlapping routes: %q is also routes[%d].path_prefix", p, j)
			}
		}
		upstreams, err := fr.upstreams(fmt.Sprintf("routes[%d].upstream", i))
		if err != nil {
			return nil, err
		}
		routes = append(routes, Route{PathPrefix: p, Upstreams: upstreams, StripPrefix: fr.StripPrefix})
	}
	return routes, nil
}

// upstreams converts the upstream setting, one URL or a list of URLs.
func (fr *fileRoute) upstreams(setting string) ([]Upstream, error) {
	n := &fr.Upstream
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	var items []*yaml.Node
	switch {
	case n.Kind == 0 || settings.IsNull(n):
		return nil, settings.Errorf(setting, "is required: give a URL or a list of URLs")
	case n.Kind == yaml.ScalarNode:
		items = []*yaml.Node{n}
	case n.Kind == yaml.SequenceNode:
		if len(n.Content) == 0 {
			return nil, settings.Errorf(setting, "needs at least one upstream URL")
		}
		items = n.Content
	default:
		return nil, settings.Errorf(setting, "must be a URL or a list of URLs (line %d)", n.Line)
	}

	upstreams := make([]Upstream, 0, len(items))
	for i, item := range items {
		itemSetting := setting
		if n.Kind == yaml.SequenceNode {
			itemSetting = fmt.Sprintf("%s[%d]", setting, i)
		}
		if item.Kind == yaml.AliasNode {
			item = item.Alias
		}
		if item.Kind != yaml.ScalarNode || settings.IsNull(item) {
			return nil, settings.Errorf(itemSetting, "must be a URL (line %d)", item.Line)
		}
		u, err := parseUpstream(item.Value)
		if err != nil {
			return nil, settings.Errorf(itemSetting, "%w", err)
		}
		for _, prev := range upstreams {
			if prev.Addr == u.Addr && prev.TLS == u.TLS {
				return nil, settings.Errorf(itemSetting, "%q repeats upstream %q of the same route", u.URL, prev.URL)
			}
		}
		upstreams = append(upstreams, u)
	}
	return upstreams, nil
}

// upstreamRule: http or https, a host, an optional port, and nothing else
// (a path of "/" is tolerated).
var upstreamRule = settings.URLRule{NoQuery: true, NoPath: true, Example: "http://host[:port]"}

// parseUpstream parses an upstream URL, filling in the scheme's port.
func parseUpstream(s string) (Upstream, error) {
	u, err := upstreamRule.Check(s)
	if err != nil {
		return Upstream{}, err
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return Upstream{
		Addr: net.JoinHostPort(strings.ToLower(u.Hostname()), port),
		TLS:  u.Scheme == "https",
		URL:  s,
	}, nil
}

// tokenSchemes validates allow_token_schemes: tokens (RFC 9110 §11.1), each
// once, not Bearer (allow_tokens covers it), and only with allow_tokens.
func (f *fileConfig) tokenSchemes() ([]string, error) {
	if len(f.AllowTokenSchemes) > 0 && !f.AllowTokens {
		return nil, settings.Errorf("allow_token_schemes", "needs allow_tokens: true")
	}
	// Schemes are case-insensitive.
	return f.AllowTokenSchemes, settings.CheckList("allow_token_schemes", f.AllowTokenSchemes, strings.EqualFold, func(s string) error {
		if strings.EqualFold(s, "Bearer") {
			return fmt.Errorf("%q: Bearer passes with allow_tokens already; list other schemes only", s)
		}
		return settings.CheckToken(s)
	})
}

// startProcs is runtime.GOMAXPROCS(0) as the process started: the CPUs it
// may use, within its cgroup's CPU quota.
var startProcs = runtime.GOMAXPROCS(0)

// defaultWorkers is workers left out: one process (issue #14 measures the
// worker set against it).
const defaultWorkers = "1"

// parseWorkers reads workers: auto (runtime.GOMAXPROCS(0) as the process
// started, which follows a cgroup CPU limit; at most 64) or a number from
// 1 to 64.
func parseWorkers(s string) (int, error) {
	if s == "auto" {
		return min(startProcs, 64), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 64 {
		return 0, settings.Errorf("workers", "must be auto or a number from 1 to 64, got %q", s)
	}
	return n, nil
}

// defaultPark is timeouts.park left out for a proxy listening on listen:
// off where only NGINX or another reverse proxy on the host reaches it (a
// Unix socket or a loopback address, as settings.Loopback says), 1 s where
// browsers may reach it directly.
func defaultPark(listen string) time.Duration {
	if settings.Loopback(listen) {
		return 0
	}
	return time.Second
}

// defaultTrustedProxies is loopback: NGINX beside the proxy on the same host.
var defaultTrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// parseTrustedProxies parses trusted_proxies: IP addresses and CIDR
// prefixes, into the prefixes the proxy checks peers against without
// allocating. nil (left out) is loopback.
func parseTrustedProxies(list *[]string) ([]netip.Prefix, error) {
	if list == nil {
		return defaultTrustedProxies, nil
	}
	prefixes := make([]netip.Prefix, 0, len(*list))
	for i, s := range *list {
		setting := fmt.Sprintf("trusted_proxies[%d]", i)
		var p netip.Prefix
		if strings.Contains(s, "/") {
			var err error
			if p, err = netip.ParsePrefix(s); err != nil {
				return nil, settings.Errorf(setting, "%q is not an IP address or CIDR prefix (such as 10.0.0.5 or 10.0.0.0/24)", s)
			}
			if p != p.Masked() {
				return nil, settings.Errorf(setting, "%q has address bits beyond its prefix length: write %s", s, p.Masked())
			}
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, settings.Errorf(setting, "%q is not an IP address or CIDR prefix (such as 10.0.0.5 or 10.0.0.0/24)", s)
			}
			if a.Zone() != "" {
				return nil, settings.Errorf(setting, "%q must not have an IPv6 zone", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			// Peers are compared unmapped: such a prefix would never match.
			return nil, settings.Errorf(setting, "%q is an IPv4-mapped IPv6 address: write the IPv4 form", s)
		}
		prefixes = append(prefixes, p)
	}
	return prefixes, nil
}
