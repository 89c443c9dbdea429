package settings

import (
	"fmt"
	"net/netip"
	"strings"
)

// HostTable finds the application a request is for by its Host header
// (issue #15): an exact match on the host name, lower case and without its
// port, prepared when the configuration loads. Looking up allocates
// nothing, so the proxy's hot path can afford it on every request.
//
// A table built with [NewHostTable] from no host names at all answers every
// host with its one value: a file without apps is one application, on
// whatever host the request names.
//
// A HostTable is read-only once built and safe for concurrent use.
type HostTable[T any] struct {
	byHost map[string]T
	any    T
	anyOK  bool
}

// MaxHostLen is the longest host name a [HostTable] holds or looks up
// (RFC 1035 §2.3.4: 253 characters, without the trailing dot).
const MaxHostLen = 253

// NewHostTable returns a table that answers every host with v.
func NewHostTable[T any](v T) *HostTable[T] {
	return &HostTable[T]{any: v, anyOK: true}
}

// NewHostTableOf returns a table of the given host names, each already
// checked with [CheckHost]. The table keeps hosts: the caller must not
// change it afterwards.
func NewHostTableOf[T any](hosts map[string]T) *HostTable[T] {
	return &HostTable[T]{byHost: hosts}
}

// Lookup returns the value for the Host header value host ("Api.Example.com",
// "api.example.com:8443", "[::1]:8081"): its host name lowered, its port and
// one trailing dot dropped, then matched exactly. ok is false for a host the
// table does not hold, an empty one, or one longer than [MaxHostLen].
func (t *HostTable[T]) Lookup(host []byte) (v T, ok bool) {
	if t.anyOK {
		return t.any, true
	}
	name := hostName(host)
	if len(name) == 0 || len(name) > MaxHostLen {
		return v, false
	}
	// The conversion in a map index allocates nothing. Browsers send
	// the host lower case: copy only a name that is not.
	lower := true
	for _, c := range name {
		lower = lower && !('A' <= c && c <= 'Z')
	}
	if lower {
		v, ok = t.byHost[string(name)]
		return v, ok
	}
	var buf [MaxHostLen]byte
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	v, ok = t.byHost[string(buf[:len(name)])]
	return v, ok
}

// hostName cuts the port off a Host header value, and one trailing dot.
func hostName(host []byte) []byte {
	if len(host) > 0 && host[0] == '[' {
		for i, c := range host {
			if c == ']' {
				return host[:i+1]
			}
		}
		return nil
	}
	for i := len(host) - 1; i >= 0; i-- {
		if host[i] == ':' {
			host = host[:i]
			break
		}
	}
	if n := len(host); n > 1 && host[n-1] == '.' {
		host = host[:n-1]
	}
	return host
}

// CheckHost checks one of an application's host names (apps[i].hosts): a
// DNS name or an IP address as a Host header names it, lower case, without
// scheme, port, path or wildcard, and returns it lowered.
func CheckHost(setting, h string) (string, error) {
	lower := strings.ToLower(h)
	switch {
	case h == "":
		return "", Errorf(setting, "must not be empty")
	case strings.Contains(h, "://") || strings.ContainsAny(h, "/?#@"):
		return "", Errorf(setting, "%q must be a bare host name, without scheme or path", h)
	case strings.Contains(h, "*"):
		return "", Errorf(setting, "%q: wildcards are not supported; list each host", h)
	case strings.HasPrefix(h, "["):
		a, err := netip.ParseAddr(strings.TrimSuffix(h[1:], "]"))
		if !strings.HasSuffix(h, "]") || err != nil || !a.Is6() || a.Zone() != "" {
			return "", Errorf(setting, "%q must be a bare IPv6 address in brackets, without a port", h)
		}
		return lower, nil
	case strings.Contains(h, ":"):
		return "", Errorf(setting, "%q must be a host name without a port (write IPv6 addresses in brackets)", h)
	case len(strings.TrimSuffix(h, ".")) > MaxHostLen:
		return "", Errorf(setting, "must be at most %d characters, got %d", MaxHostLen, len(h))
	}
	lower = strings.TrimSuffix(lower, ".")
	for label := range strings.SplitSeq(lower, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", Errorf(setting, "%q is not a valid host name", h)
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", Errorf(setting, "%q is not a valid host name", h)
			}
		}
	}
	return lower, nil
}

// CheckAppName checks an application's name (apps[i].name): 1 to 32 lower
// case letters, digits and '-', starting with a letter. It is a metrics
// label value, a log field and part of every v2 cookie's associated data.
func CheckAppName(setting, name string) error {
	if name == "" {
		return Errorf(setting, "is required: every application has a name, as shop")
	}
	ok := len(name) <= 32 && 'a' <= name[0] && name[0] <= 'z' && name[len(name)-1] != '-'
	for _, c := range []byte(name) {
		ok = ok && ('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-')
	}
	if !ok {
		return Errorf(setting, "%q must be 1 to 32 lower case letters, digits and '-', starting with a letter and not ending with '-'", name)
	}
	return nil
}

// hostKey is how a host is reported in messages.
func hostKey(i, j int) string { return fmt.Sprintf("apps[%d].hosts[%d]", i, j) }
