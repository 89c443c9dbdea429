package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/tokenhandler/tokenhandler/crypto"
)

// Config is the validated configuration of the oauth-proxy binary (SPEC §7).
// Build one with [LoadConfig] or [ParseConfig], which apply the defaults noted
// beside each field and refuse anything invalid, naming the setting.
//
// A Config is plain data and may be copied; copies share its slices and its
// Keyring. It is read-only after ParseConfig returns: nothing modifies it, or
// the slices it holds, afterwards, so one Config may be shared by any number of
// goroutines. Keys is safe for concurrent use.
type Config struct {
	Listen              string          // "host:port" or "unix:/abs/path.sock"; default "127.0.0.1:8081"
	MetricsListen       string          // same forms; "" (default) = no metrics/health listener
	CookieNamePrefix    string          // default "example"
	HostPrefix          bool            // YAML cookie.host_prefix; cookie names become __Host-<prefix>-...
	Keys                *crypto.Keyring // built from the one key source
	TrustedWebOrigins   []string
	CORS                CORS
	AllowTokens         bool
	RemoveCookieHeaders bool   // default true (YAML key present with false turns it off)
	AuthPath            string // default "/_oauth-proxy/auth"
	Routes              []Route
	Timeouts            Timeouts
	Limits              Limits
	Log                 Log
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

// Timeouts of a [Config]; all are greater than zero. It may be copied.
type Timeouts struct {
	Read     time.Duration // default 30s
	Write    time.Duration // default 30s
	Idle     time.Duration // default 120s
	Upstream time.Duration // default 30s
	Shutdown time.Duration // default 30s: how long SIGTERM waits for requests in flight
}

// Limits of a [Config]. It may be copied.
type Limits struct {
	MaxRequestHeaderBytes int // 4096 to 1 MiB, default 16384: large cookies must fit (SPEC §6)
	MaxBodyBytes          int // 1 to 1 GiB, default 10485760
}

// Log is the logging part of a [Config]. It may be copied.
type Log struct {
	Level  zerolog.Level // debug, info (default), warn or error
	Format string        // "json" (default) or "console"
}

// keysEnv is the environment variable that may hold the encryption keys,
// comma-separated, sealing key first (SPEC §7).
const keysEnv = "TH_ENCRYPTION_KEYS"

// LoadConfig reads the YAML file at path and returns the validated
// configuration, as [ParseConfig] does.
func LoadConfig(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("proxy: config: %w", err)
	}
	return ParseConfig(data, getenv)
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
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("proxy: config: the file is empty")
		}
		return nil, fmt.Errorf("proxy: config: %w", err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, errors.New("proxy: config: the file holds several YAML documents; it must hold one")
	}
	root := doc.Content[0]
	if isNullNode(root) {
		return nil, errors.New("proxy: config: the file is empty")
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("proxy: config: the file must be a YAML mapping of settings (line %d)", root.Line)
	}
	var f fileConfig
	if err := decodeMapping(root, "", reflect.ValueOf(&f).Elem()); err != nil {
		return nil, err
	}
	return f.config(getenv)
}

// fileConfig is the configuration file as written. Pointers tell a setting
// left out (nil: use the default) from one given, even as "" or false.
type fileConfig struct {
	Listen              *string      `yaml:"listen"`
	MetricsListen       string       `yaml:"metrics_listen"`
	CookieNamePrefix    *string      `yaml:"cookie_name_prefix"`
	Cookie              fileCookie   `yaml:"cookie"`
	EncryptionKeys      []string     `yaml:"encryption_keys"`
	EncryptionKeysFile  *string      `yaml:"encryption_keys_file"`
	TrustedWebOrigins   []string     `yaml:"trusted_web_origins"`
	CORS                fileCORS     `yaml:"cors"`
	AllowTokens         bool         `yaml:"allow_tokens"`
	RemoveCookieHeaders *bool        `yaml:"remove_cookie_headers"`
	AuthPath            *string      `yaml:"auth_path"`
	Routes              []fileRoute  `yaml:"routes"`
	Timeouts            fileTimeouts `yaml:"timeouts"`
	Limits              fileLimits   `yaml:"limits"`
	Log                 fileLog      `yaml:"log"`
}

type fileCookie struct {
	HostPrefix bool `yaml:"host_prefix"`
}

type fileCORS struct {
	Enabled       *bool    `yaml:"enabled"`
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
	Read     *string `yaml:"read"`
	Write    *string `yaml:"write"`
	Idle     *string `yaml:"idle"`
	Upstream *string `yaml:"upstream"`
	Shutdown *string `yaml:"shutdown"`
}

type fileLimits struct {
	MaxRequestHeaderBytes *int `yaml:"max_request_header_bytes"`
	MaxBodyBytes          *int `yaml:"max_body_bytes"`
}

type fileLog struct {
	Level  *string `yaml:"level"`
	Format *string `yaml:"format"`
}

// configErrorf returns an error naming the setting by its YAML path.
func configErrorf(setting, format string, args ...any) error {
	return fmt.Errorf("proxy: config: %s: %w", setting, fmt.Errorf(format, args...))
}

// valueOr returns *p, or def when the setting was left out.
func valueOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// config validates f and converts it, applying defaults.
func (f *fileConfig) config(getenv func(string) string) (*Config, error) {
	c := &Config{
		Listen:              valueOr(f.Listen, "127.0.0.1:8081"),
		MetricsListen:       f.MetricsListen,
		CookieNamePrefix:    valueOr(f.CookieNamePrefix, "example"),
		HostPrefix:          f.Cookie.HostPrefix,
		TrustedWebOrigins:   f.TrustedWebOrigins,
		AllowTokens:         f.AllowTokens,
		RemoveCookieHeaders: valueOr(f.RemoveCookieHeaders, true),
		AuthPath:            valueOr(f.AuthPath, "/_oauth-proxy/auth"),
		CORS: CORS{
			Enabled:       valueOr(f.CORS.Enabled, true),
			AllowMethods:  f.CORS.AllowMethods,
			AllowHeaders:  f.CORS.AllowHeaders,
			ExposeHeaders: f.CORS.ExposeHeaders,
			MaxAge:        valueOr(f.CORS.MaxAge, 86400),
		},
	}

	if err := checkListenAddr("listen", c.Listen); err != nil {
		return nil, err
	}
	if c.MetricsListen != "" {
		if err := checkListenAddr("metrics_listen", c.MetricsListen); err != nil {
			return nil, err
		}
		// Two listeners on port 0 get different ports, so only refuse a real clash.
		if c.MetricsListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			return nil, configErrorf("metrics_listen", "must differ from listen (both are %q)", c.Listen)
		}
	}

	if err := checkCookieNamePrefix(c.CookieNamePrefix); err != nil {
		return nil, err
	}

	keys, err := f.keyring(getenv)
	if err != nil {
		return nil, err
	}
	c.Keys = keys

	if err := checkTrustedWebOrigins(c.TrustedWebOrigins); err != nil {
		return nil, err
	}

	for _, l := range []struct {
		setting string
		list    []string
	}{
		{"cors.allow_methods", c.CORS.AllowMethods},
		{"cors.allow_headers", c.CORS.AllowHeaders},
		{"cors.expose_headers", c.CORS.ExposeHeaders},
	} {
		if err := checkTokenList(l.setting, l.list); err != nil {
			return nil, err
		}
	}
	if c.CORS.MaxAge < 0 {
		return nil, configErrorf("cors.max_age", "must not be negative, got %d", c.CORS.MaxAge)
	}

	if err := checkAuthPath(c.AuthPath); err != nil {
		return nil, err
	}

	if c.Routes, err = f.routes(c.AuthPath); err != nil {
		return nil, err
	}

	for _, t := range []struct {
		setting string
		value   *string
		def     time.Duration
		dst     *time.Duration
	}{
		{"timeouts.read", f.Timeouts.Read, 30 * time.Second, &c.Timeouts.Read},
		{"timeouts.write", f.Timeouts.Write, 30 * time.Second, &c.Timeouts.Write},
		{"timeouts.idle", f.Timeouts.Idle, 120 * time.Second, &c.Timeouts.Idle},
		{"timeouts.upstream", f.Timeouts.Upstream, 30 * time.Second, &c.Timeouts.Upstream},
		{"timeouts.shutdown", f.Timeouts.Shutdown, 30 * time.Second, &c.Timeouts.Shutdown},
	} {
		if t.value == nil {
			*t.dst = t.def
			continue
		}
		d, err := time.ParseDuration(*t.value)
		if err != nil {
			return nil, configErrorf(t.setting, "invalid duration %q (write a Go duration such as 30s)", *t.value)
		}
		if d <= 0 {
			return nil, configErrorf(t.setting, "must be greater than zero, got %q", *t.value)
		}
		*t.dst = d
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
		n := valueOr(l.value, l.def)
		if n < l.min || n > l.max {
			return nil, configErrorf(l.setting, "must be between %d and %d, got %d", l.min, l.max, n)
		}
		*l.dst = n
	}

	switch level := valueOr(f.Log.Level, "info"); level {
	case "debug":
		c.Log.Level = zerolog.DebugLevel
	case "info":
		c.Log.Level = zerolog.InfoLevel
	case "warn":
		c.Log.Level = zerolog.WarnLevel
	case "error":
		c.Log.Level = zerolog.ErrorLevel
	default:
		return nil, configErrorf("log.level", "must be debug, info, warn or error, got %q", level)
	}
	switch c.Log.Format = valueOr(f.Log.Format, "json"); c.Log.Format {
	case "json", "console":
	default:
		return nil, configErrorf("log.format", "must be json or console, got %q", c.Log.Format)
	}

	return c, nil
}

// keyring builds the key ring from the one key source given. Its errors name
// the source and, through crypto, the key's position, never key material.
func (f *fileConfig) keyring(getenv func(string) string) (*crypto.Keyring, error) {
	var env string
	if getenv != nil {
		env = getenv(keysEnv)
	}
	var sources []string
	if f.EncryptionKeys != nil {
		sources = append(sources, "encryption_keys")
	}
	if f.EncryptionKeysFile != nil {
		sources = append(sources, "encryption_keys_file")
	}
	if env != "" {
		sources = append(sources, keysEnv)
	}
	switch len(sources) {
	case 0:
		return nil, configErrorf("encryption_keys", "no cookie encryption keys: set encryption_keys, encryption_keys_file or the environment variable %s", keysEnv)
	case 1:
	default:
		return nil, configErrorf("encryption_keys", "keys given by both %s: use exactly one source", strings.Join(sources, " and "))
	}

	var hexKeys []string
	switch sources[0] {
	case "encryption_keys":
		hexKeys = f.EncryptionKeys
	case "encryption_keys_file":
		if *f.EncryptionKeysFile == "" {
			return nil, configErrorf("encryption_keys_file", "must be a file path")
		}
		data, err := os.ReadFile(*f.EncryptionKeysFile)
		if err != nil {
			return nil, configErrorf("encryption_keys_file", "%w", err)
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line != "" && !strings.HasPrefix(line, "#") {
				hexKeys = append(hexKeys, line)
			}
		}
	default:
		for k := range strings.SplitSeq(env, ",") {
			hexKeys = append(hexKeys, strings.TrimSpace(k))
		}
	}
	keys, err := crypto.ParseKeyring(hexKeys...)
	if err != nil {
		return nil, configErrorf(sources[0], "%w", err)
	}
	return keys, nil
}

// routes validates and converts the routes. No route may take the requests
// meant for the auth endpoint.
func (f *fileConfig) routes(authPath string) ([]Route, error) {
	var routes []Route
	for i, fr := range f.Routes {
		setting := fmt.Sprintf("routes[%d].path_prefix", i)
		p := fr.PathPrefix
		switch {
		case p == "":
			return nil, configErrorf(setting, "is required")
		case !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/"):
			return nil, configErrorf(setting, "%q must start and end with \"/\"", p)
		case strings.ContainsAny(p, "?#"):
			return nil, configErrorf(setting, "%q must not contain a query or fragment", p)
		case hasSpaceOrControl(p):
			return nil, configErrorf(setting, "%q must not contain whitespace or control characters", p)
		case strings.Contains(p, ".."):
			return nil, configErrorf(setting, "%q must not contain \"..\"", p)
		case strings.HasPrefix(authPath, p):
			return nil, configErrorf(setting, "%q overlaps the auth endpoint auth_path %q", p, authPath)
		}
		for j, r := range routes {
			if r.PathPrefix == p {
				return nil, configErrorf(setting, "duplicate or overlapping routes: %q is also routes[%d].path_prefix", p, j)
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
	case n.Kind == 0 || isNullNode(n):
		return nil, configErrorf(setting, "is required: give a URL or a list of URLs")
	case n.Kind == yaml.ScalarNode:
		items = []*yaml.Node{n}
	case n.Kind == yaml.SequenceNode:
		if len(n.Content) == 0 {
			return nil, configErrorf(setting, "needs at least one upstream URL")
		}
		items = n.Content
	default:
		return nil, configErrorf(setting, "must be a URL or a list of URLs (line %d)", n.Line)
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
		if item.Kind != yaml.ScalarNode || isNullNode(item) {
			return nil, configErrorf(itemSetting, "must be a URL (line %d)", item.Line)
		}
		u, err := parseUpstream(item.Value)
		if err != nil {
			return nil, configErrorf(itemSetting, "%w", err)
		}
		for _, prev := range upstreams {
			if prev.Addr == u.Addr && prev.TLS == u.TLS {
				return nil, configErrorf(itemSetting, "%q repeats upstream %q of the same route", u.URL, prev.URL)
			}
		}
		upstreams = append(upstreams, u)
	}
	return upstreams, nil
}

// parseUpstream parses an upstream URL: http or https, a host, an optional
// port, and nothing else (a path of "/" is tolerated).
func parseUpstream(s string) (Upstream, error) {
	// Check for '@' first, before any message quotes s: it would come with a
	// password. Nowhere else in an upstream URL may '@' appear.
	if strings.Contains(s, "@") {
		return Upstream{}, errors.New(`must not contain "@": user information is not allowed`)
	}
	if hasSpaceOrControl(s) {
		return Upstream{}, fmt.Errorf("%q must not contain whitespace or control characters", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return Upstream{}, fmt.Errorf("%q is not a valid URL (want http://host[:port]): %w", s, urlErrorReason(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return Upstream{}, fmt.Errorf("%q must be an absolute http or https URL", s)
	case u.Opaque != "" || u.Hostname() == "":
		return Upstream{}, fmt.Errorf("%q has no host", s)
	case u.RawQuery != "" || u.ForceQuery:
		return Upstream{}, fmt.Errorf("%q must not have a query", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return Upstream{}, fmt.Errorf("%q must not have a fragment", s)
	case u.Path != "" && u.Path != "/" || u.RawPath != "":
		return Upstream{}, fmt.Errorf("%q must not have a path", s)
	}
	port := u.Port()
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return Upstream{}, fmt.Errorf("%q has an empty port", s)
		}
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	} else if n, ok := parsePort(port); !ok || n == 0 {
		return Upstream{}, fmt.Errorf("%q has an invalid port", s)
	}
	return Upstream{
		Addr: net.JoinHostPort(strings.ToLower(u.Hostname()), port),
		TLS:  u.Scheme == "https",
		URL:  s,
	}, nil
}

// checkListenAddr accepts "unix:" followed by an absolute path, or host:port
// with a numeric port (0 picks a free port).
func checkListenAddr(setting, addr string) error {
	if hasSpaceOrControl(addr) {
		return configErrorf(setting, "%q must not contain whitespace or control characters", addr)
	}
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		if !path.IsAbs(p) || strings.HasSuffix(p, "/") {
			return configErrorf(setting, "%q must name a socket by its absolute path, as unix:/run/tokenhandler/proxy.sock", addr)
		}
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return configErrorf(setting, "%q must be host:port or unix:/absolute/path", addr)
	}
	if _, ok := parsePort(port); !ok {
		return configErrorf(setting, "%q must have a port from 0 to 65535", addr)
	}
	return nil
}

// parsePort parses a decimal port number from 0 to 65535.
func parsePort(s string) (int, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= 65535
}

// checkCookieNamePrefix keeps the prefix usable both in cookie names and in
// the CSRF header name x-<prefix>-csrf.
func checkCookieNamePrefix(p string) error {
	if len(p) < 1 || len(p) > 64 {
		return configErrorf("cookie_name_prefix", "must be 1 to 64 characters long, got %d", len(p))
	}
	for _, c := range []byte(p) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return configErrorf("cookie_name_prefix", "%q may hold only ASCII letters, digits, '-' and '_'", p)
		}
	}
	return nil
}

// checkTrustedWebOrigins requires each origin written exactly as a browser
// sends it in the Origin header (RFC 6454 §6.1), since the proxy compares
// them byte for byte.
func checkTrustedWebOrigins(origins []string) error {
	if len(origins) == 0 {
		return configErrorf("trusted_web_origins", "at least one origin is required, as http://www.example.localhost:3000")
	}
	for i, o := range origins {
		setting := fmt.Sprintf("trusted_web_origins[%d]", i)
		if err := checkWebOrigin(o); err != nil {
			return configErrorf(setting, "%w", err)
		}
		for j := range i {
			if origins[j] == o {
				return configErrorf(setting, "%q repeats trusted_web_origins[%d]", o, j)
			}
		}
	}
	return nil
}

// checkWebOrigin accepts only scheme://host[:port] with scheme http or https.
func checkWebOrigin(o string) error {
	// '@' can only come from user information here; refuse it before any
	// message quotes o.
	if strings.Contains(o, "@") {
		return errors.New(`must not contain "@": user information is not allowed`)
	}
	switch {
	case o == "*" || o == "null":
		return fmt.Errorf("%q is not allowed: list each trusted origin", o)
	case hasSpaceOrControl(o):
		return fmt.Errorf("%q must not contain whitespace or control characters", o)
	case o != strings.ToLower(o):
		return fmt.Errorf("%q must be lower case, as browsers send it", o)
	}
	u, err := url.Parse(o)
	if err != nil {
		return fmt.Errorf("%q is not a valid origin: %w", o, urlErrorReason(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q must start with http:// or https://", o)
	case u.Opaque != "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host", o)
	case u.Path != "" || u.RawPath != "":
		return fmt.Errorf("%q must not have a path, not even \"/\"", o)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("%q must not have a query", o)
	case u.Fragment != "" || strings.Contains(o, "#"):
		return fmt.Errorf("%q must not have a fragment", o)
	}
	if port := u.Port(); port != "" || strings.HasSuffix(u.Host, ":") {
		n, ok := parsePort(port)
		switch {
		case !ok || n == 0:
			return fmt.Errorf("%q has an invalid port", o)
		case u.Scheme == "http" && n == 80, u.Scheme == "https" && n == 443:
			return fmt.Errorf("%q must leave out the default port, as browsers do", o)
		}
	}
	return nil
}

// urlErrorReason drops the URL that *url.Error repeats, so that the caller
// decides what to quote.
func urlErrorReason(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

// checkTokenList requires every header name or method to be a token (RFC 9110
// §5.6.2, formerly RFC 7230 §3.2.6). Wildcards are refused: browsers do not
// honour "*" on requests with credentials, which are all the proxy serves.
func checkTokenList(setting string, list []string) error {
	for i, s := range list {
		itemSetting := fmt.Sprintf("%s[%d]", setting, i)
		if strings.Contains(s, "*") {
			return configErrorf(itemSetting, "%q: wildcards are not allowed with credentials; list each name", s)
		}
		if !isHTTPToken(s) {
			return configErrorf(itemSetting, "%q is not an RFC 7230 token", s)
		}
	}
	return nil
}

// isHTTPToken reports whether s is a non-empty run of tchar (RFC 9110 §5.6.2).
func isHTTPToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// checkAuthPath checks the path NGINX auth_request calls.
func checkAuthPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return configErrorf("auth_path", "%q must start with \"/\"", p)
	case len(p) > 256:
		return configErrorf("auth_path", "must be at most 256 characters, got %d", len(p))
	case strings.ContainsAny(p, "?#"):
		return configErrorf("auth_path", "%q must not contain a query or fragment", p)
	case hasSpaceOrControl(p):
		return configErrorf("auth_path", "%q must not contain whitespace or control characters", p)
	}
	return nil
}

// hasSpaceOrControl reports whether s holds whitespace or a control character.
func hasSpaceOrControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

// isNullNode reports whether n is YAML null, as a key written with no value.
func isNullNode(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

var yamlNodeType = reflect.TypeFor[yaml.Node]()

// decodeMapping decodes the mapping n into the struct out, one key at a time,
// matching keys to the fields' yaml tags; path is the YAML path of n ("" for
// the top level).
//
// Decoding by hand, rather than with yaml.Decoder.KnownFields, lets every
// error name the setting by its full path, and keeps values out of messages:
// yaml's own type errors quote the first characters of the value, which could
// be part of a key.
func decodeMapping(n *yaml.Node, path string, out reflect.Value) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if isNullNode(n) {
		return nil // a section with no settings keeps its defaults
	}
	if n.Kind != yaml.MappingNode {
		return configErrorf(path, "must be a mapping of settings (line %d)", n.Line)
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		setting := k.Value
		if path != "" {
			setting = path + "." + k.Value
		}
		field, ok := fieldByYAMLName(out.Type(), k.Value)
		if !ok || k.Kind != yaml.ScalarNode {
			return fmt.Errorf("proxy: config: unknown setting %q (line %d)", setting, k.Line)
		}
		if line, dup := seen[k.Value]; dup {
			return configErrorf(setting, "set twice (lines %d and %d)", line, k.Line)
		}
		seen[k.Value] = k.Line
		if err := decodeSetting(v, setting, out.FieldByIndex(field.Index)); err != nil {
			return err
		}
	}
	return nil
}

// decodeSetting decodes the value of one setting into out.
func decodeSetting(n *yaml.Node, setting string, out reflect.Value) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	t := out.Type()
	switch {
	case t.Kind() == reflect.Struct && t != yamlNodeType:
		return decodeMapping(n, setting, out)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		if isNullNode(n) {
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return configErrorf(setting, "must be a list (line %d)", n.Line)
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
		return configErrorf(setting, "must be %s (line %d)", describeSettingType(t), n.Line)
	}
	return nil
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

// fieldByYAMLName finds the field of struct type t whose yaml tag is name.
func fieldByYAMLName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
