package devidp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ErrNotLoopback is returned, wrapped, by ListenLoopback for an address that
// is not on the loopback interface.
var ErrNotLoopback = errors.New("devidp: not a loopback address")

// ListenLoopback listens on TCP addr ("host:port") if host is on the
// loopback interface: an address in 127.0.0.0/8 or ::1, or the name
// localhost or a name under .localhost (RFC 6761 §6.3), which it listens on
// as 127.0.0.1 (browsers and curl resolve those names to loopback and fall
// back from ::1 to 127.0.0.1). Any other host, an empty one (":8443") and
// the unspecified addresses (0.0.0.0, ::) included, is refused with an error
// wrapping ErrNotLoopback, unless insecurePublic is true.
//
// The development stack signs anybody in without a password: insecurePublic
// (the -insecure-public flag) MUST NOT be set on a machine that people or
// programs you do not trust can reach.
func ListenLoopback(addr string, insecurePublic bool) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("devidp: listen address %q: %w", addr, err)
	}
	switch {
	case isLocalhostName(host):
		addr = net.JoinHostPort("127.0.0.1", port)
	case isLoopbackIP(host), insecurePublic:
	default:
		return nil, fmt.Errorf("%w: refusing to listen on %q; use 127.0.0.1, [::1], localhost or a *.localhost name (-insecure-public overrides this)",
			ErrNotLoopback, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	return ln, nil
}

func isLocalhostName(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

func isLoopbackIP(host string) bool {
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
