package settings

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"
	"unicode"

	"github.com/rs/zerolog"
)

// Log is the log section of a configuration file as written, for a struct
// that Decode fills: {level: debug|info|warn|error, format: json|console}.
// It may be copied.
type Log struct {
	Level  *string `yaml:"level"`
	Format *string `yaml:"format"`
}

// LogSettings are the checked settings of a [Log] section: both daemons'
// Config.Log. It may be copied.
type LogSettings struct {
	Level  zerolog.Level // debug, info (default), warn or error
	Format string        // "json" (default) or "console"
}

// Parse returns the level (default info) and format (default json); setting
// is the section's path, as "log".
func (l Log) Parse(setting string) (LogSettings, error) {
	var s LogSettings
	switch level := ValueOr(l.Level, "info"); level {
	case "debug", "info", "warn", "error":
		s.Level, _ = zerolog.ParseLevel(level)
	default:
		return s, Errorf(setting+".level", "must be debug, info, warn or error, got %q", level)
	}
	switch s.Format = ValueOr(l.Format, "json"); s.Format {
	case "json", "console":
		return s, nil
	default:
		return s, Errorf(setting+".format", "must be json or console, got %q", s.Format)
	}
}

// CheckListeners checks the settings listen and metrics_listen (optional:
// "" means no metrics listener) with CheckListenAddr, and that they differ.
func CheckListeners(listen, metricsListen, exampleSocket string) error {
	if err := CheckListenAddr("listen", listen, exampleSocket); err != nil {
		return err
	}
	if metricsListen == "" {
		return nil
	}
	if err := CheckListenAddr("metrics_listen", metricsListen, exampleSocket); err != nil {
		return err
	}
	// Two listeners on port 0 get different ports, so only refuse a real clash.
	if metricsListen == listen && !strings.HasSuffix(listen, ":0") {
		return Errorf("metrics_listen", "must differ from listen (both are %q)", listen)
	}
	return nil
}

// CheckListenAddr accepts "unix:" followed by an absolute path, or host:port
// with a numeric port (0 picks a free port). exampleSocket is the socket path
// the message suggests, as "/run/tokenhandler/proxy.sock".
func CheckListenAddr(setting, addr, exampleSocket string) error {
	if HasSpaceOrControl(addr) {
		return Errorf(setting, "%q must not contain whitespace or control characters", addr)
	}
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		if !path.IsAbs(p) || strings.HasSuffix(p, "/") {
			return Errorf(setting, "%q must name a socket by its absolute path, as unix:%s", addr, exampleSocket)
		}
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Errorf(setting, "%q must be host:port or unix:/absolute/path", addr)
	}
	if _, ok := ParsePort(port); !ok {
		return Errorf(setting, "%q must have a port from 0 to 65535", addr)
	}
	return nil
}

// ParsePort parses a decimal port number from 0 to 65535.
func ParsePort(s string) (int, bool) {
	n, err := strconv.ParseUint(s, 10, 16) // digits only: no sign, no "_"
	return int(n), err == nil && len(s) <= 5
}

// CheckWebOrigins requires at least one origin, no repeats, and each origin
// written exactly as a browser sends it in the Origin header (RFC 6454
// §6.1), since both binaries compare origins byte for byte.
func CheckWebOrigins(setting string, origins []string) error {
	if len(origins) == 0 {
		return Errorf(setting, "at least one origin is required, as http://www.example.localhost:3000")
	}
	return CheckList(setting, origins, Same, func(o string) error {
		_, err := originRule.Check(o)
		return err
	})
}

// CheckList checks each item of the list setting with check, naming it by
// its index, and refuses an item that is the same as an earlier one, as
// same tells (nil: repeats are allowed). Pass [Same], or strings.EqualFold
// for names compared case-insensitively.
func CheckList(setting string, list []string, same func(a, b string) bool, check func(string) error) error {
	for i, s := range list {
		item := fmt.Sprintf("%s[%d]", setting, i)
		if err := check(s); err != nil {
			return Errorf(item, "%w", err)
		}
		for j := range i {
			if same != nil && same(list[j], s) {
				return Errorf(item, "%q repeats %s[%d]", s, setting, j)
			}
		}
	}
	return nil
}

// Same reports whether a and b are the same, byte for byte: for [CheckList].
func Same(a, b string) bool { return a == b }

// PathRule is what a path setting may hold besides an absolute path ("/"
// first) without a query, fragment, whitespace or control characters. It
// may be copied.
type PathRule struct {
	Slash    int  // +1: must end with "/" (a prefix); -1: must not; 0: either
	NoDotDot bool // no "..", which a client could send to climb out
	Cookie   bool // also a cookie's Path (contract §4): no ';' or ','
	MaxLen   int  // 0: no limit
}

// Check checks the path setting p against the rule; setting is its path,
// for the message.
func (r PathRule) Check(setting, p string) error {
	switch {
	case r.Slash > 0 && !(strings.HasPrefix(p, "/") && strings.HasSuffix(p, "/")):
		return Errorf(setting, "%q must start and end with \"/\"", p)
	case !strings.HasPrefix(p, "/"):
		return Errorf(setting, "%q must start with \"/\"", p)
	case r.Slash < 0 && strings.HasSuffix(p, "/"):
		return Errorf(setting, "%q must not end with \"/\"", p)
	case r.MaxLen > 0 && len(p) > r.MaxLen:
		return Errorf(setting, "must be at most %d characters, got %d", r.MaxLen, len(p))
	case strings.ContainsAny(p, "?#"):
		return Errorf(setting, "%q must not contain a query or fragment", p)
	case HasSpaceOrControl(p):
		return Errorf(setting, "%q must not contain whitespace or control characters", p)
	case r.Cookie && strings.ContainsAny(p, ";,"):
		return Errorf(setting, "%q must not contain ';' or ','", p)
	case r.NoDotDot && strings.Contains(p, ".."):
		return Errorf(setting, "%q must not contain \"..\"", p)
	}
	return nil
}

// originRule is a web origin exactly as a browser sends it in the Origin
// header (RFC 6454 §6.1).
var originRule = URLRule{Origin: true, Example: "http://www.example.localhost:3000"}

// URLRule is what a URL setting may hold. Every URL setting is an absolute
// http or https URL with a host, a port from 1 to 65535 if any, and no user
// information (a password must never reach a message or a log) or fragment
// (RFC 6749 §3.1.2 for redirect URIs); a rule narrows that. It may be
// copied.
type URLRule struct {
	NoQuery bool // no query, not even an empty "?"
	NoPath  bool // no path but "/"
	// Origin is a web origin as a browser sends it, compared byte for
	// byte: scheme://host[:port], lower case, no path (not even "/"), no
	// query, no default port, and not "*" or "null".
	Origin bool
	// HTTPSUnlessLoopback allows plain http only to this machine
	// (localhost, *.localhost, a loopback address: [LoopbackURLs]).
	HTTPSUnlessLoopback bool
	// Example, when not "", is what the messages about a URL that does
	// not parse or has a wrong scheme suggest, as "http://127.0.0.1:9100".
	Example string
	// OrElse, when not "", is what the message about plain http to
	// another machine offers besides https, as "store: redis".
	OrElse string
}

// Check returns s parsed, or an error saying what s breaks of the rule.
// The error quotes s, but only once s is known to hold no "@" (user
// information), and names no setting: callers add it with [Errorf].
func (r URLRule) Check(s string) (*url.URL, error) {
	if strings.Contains(s, "@") {
		return nil, errors.New(`must not contain "@": user information is not allowed`)
	}
	noun := "URL"
	if r.Origin {
		noun = "origin"
	}
	switch {
	case r.Origin && (s == "*" || s == "null"):
		return nil, fmt.Errorf("%q is not allowed: list each trusted origin", s)
	case HasSpaceOrControl(s):
		return nil, fmt.Errorf("%q must not contain whitespace or control characters", s)
	case r.Origin && s != strings.ToLower(s):
		return nil, fmt.Errorf("%q must be lower case, as browsers send it", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		if r.Example != "" {
			noun += " (want " + r.Example + ")"
		}
		// Not *url.Error itself, which repeats the URL: the caller decides
		// what to quote, and the URL may hold a password.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("%q is not a valid %s: %w", s, noun, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		if r.Example != "" {
			return nil, fmt.Errorf("%q must start with http:// or https://, as %s", s, r.Example)
		}
		return nil, fmt.Errorf("%q must start with http:// or https://", s)
	case u.Opaque != "" || u.Hostname() == "":
		return nil, fmt.Errorf("%q has no host", s)
	case r.Origin && (u.Path != "" || u.RawPath != ""):
		return nil, fmt.Errorf("%q must not have a path, not even \"/\"", s)
	case r.NoPath && (u.Path != "" && u.Path != "/" || u.RawPath != ""):
		return nil, fmt.Errorf("%q must not have a path", s)
	case (r.NoQuery || r.Origin) && (u.RawQuery != "" || u.ForceQuery):
		return nil, fmt.Errorf("%q must not have a query", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return nil, fmt.Errorf("%q must not have a fragment", s)
	}
	if port := u.Port(); port != "" || strings.HasSuffix(u.Host, ":") {
		n, ok := ParsePort(port)
		switch {
		case port == "":
			return nil, fmt.Errorf("%q has an empty port", s)
		case !ok || n == 0:
			return nil, fmt.Errorf("%q has an invalid port", s)
		case r.Origin && (u.Scheme == "http" && n == 80 || u.Scheme == "https" && n == 443):
			return nil, fmt.Errorf("%q must leave out the default port, as browsers do", s)
		}
	}
	if r.HTTPSUnlessLoopback && u.Scheme != "https" && !LoopbackURLs(s) {
		or := ""
		if r.OrElse != "" {
			or = ", or " + r.OrElse
		}
		return nil, fmt.Errorf("%q must use https%s (plain http only to localhost, *.localhost or a loopback address)", s, or)
	}
	return u, nil
}

// CheckToken requires s, a header name, method or authorization scheme, to
// be a token (RFC 9110 §5.6.2, formerly RFC 7230 §3.2.6). Wildcards are
// refused: browsers do not honour "*" on requests with credentials, which
// are all the token handler serves.
func CheckToken(s string) error {
	if strings.Contains(s, "*") {
		return fmt.Errorf("%q: wildcards are not allowed with credentials; list each name", s)
	}
	// A token is a non-empty run of tchar.
	const tchar = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	if s == "" || strings.Trim(s, tchar) != "" {
		return fmt.Errorf("%q is not an RFC 7230 token", s)
	}
	return nil
}

// HasSpaceOrControl reports whether s holds whitespace or a control
// character.
func HasSpaceOrControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}
