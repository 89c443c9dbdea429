// Package browser is the contract between the token handler and the browser
// that both the OAuth Agent and the OAuth Proxy enforce: cookie names and
// chunked cookies (contract §4), the Origin allow-list, the CSRF header and the
// CORS response headers (contract §5, §6).
//
// It works on bytes and on two tiny interfaces that fasthttp's headers
// satisfy, so that it imports neither the agent nor the proxy, and its checks
// allocate nothing.
package browser

import (
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"
)

// MaxPrefix is the longest cookie.prefix allowed.
const MaxPrefix = 64

// DefaultPrefix is cookie.prefix when left out: the cookies are example-at,
// ... and the CSRF header x-example-csrf.
const DefaultPrefix = "example"

// MaxChunks is the most chunks one cookie value may be split into; with at
// most 4 KiB per Set-Cookie that is far more than any request header buffer
// holds.
const MaxChunks = 8

// MaxSetCookie is the size budget of one Set-Cookie header value (name,
// value and attributes): browsers keep cookies up to 4096 bytes.
const MaxSetCookie = 4096

// Cookie names one token-handler cookie and its chunks.
//
// A Cookie is immutable after NewNames and may be copied and shared.
type Cookie struct {
	// Name is the cookie name, for example "example-at".
	Name   string
	chunks [MaxChunks]string // Name.0 … Name.7
	slot   int               // index into Found
}

// Index returns the cookie's place in the order login (0), at, auth, id,
// csrf (4): package session numbers its purposes Index()+1.
func (c *Cookie) Index() int { return c.slot }

// Chunk returns the name of chunk i (0 ≤ i < MaxChunks), for example
// "example-at.0".
func (c *Cookie) Chunk(i int) string { return c.chunks[i] }

// Cookies reads request cookies by name; *fasthttp.RequestHeader is one.
// The returned slice is nil when the cookie is absent and need only stay valid
// until the next call.
type Cookies interface {
	Cookie(name string) []byte
}

// AppendValue appends the cookie's value to dst: the cookie Name when the
// request has it, otherwise chunks Name.0, Name.1, … concatenated up to the
// first missing one. ok is false when neither Name nor Name.0 is present.
// A present but empty value counts as present.
func (c *Cookie) AppendValue(dst []byte, req Cookies) (out []byte, ok bool) {
	if v := req.Cookie(c.Name); v != nil {
		return append(dst, v...), true
	}
	for i := range c.chunks {
		v := req.Cookie(c.chunks[i])
		if v == nil {
			return dst, i > 0
		}
		dst = append(dst, v...)
	}
	return dst, true
}

// Split returns the number of chunks needed to store a value of n bytes when
// one chunk may hold at most per bytes, and whether it fits in MaxChunks.
// One chunk means no chunking: the value goes under Name itself.
func Split(n, per int) (chunks int, ok bool) {
	if per <= 0 {
		return 0, false
	}
	chunks = max(1, (n+per-1)/per)
	return chunks, chunks <= MaxChunks
}

// NamePrefix is the cookie-name prefix the browser enforces on the token
// handler's cookies (the setting cookie.name_prefix). The zero value is
// NamePrefixNone. It is a plain value and may be copied.
type NamePrefix int

const (
	// NamePrefixNone names the cookies P-at, ...: the browser adds no
	// guarantee, and a sibling subdomain can plant a cookie of the same name.
	NamePrefixNone NamePrefix = iota
	// NamePrefixHost names them __Host-P-at, ...: the browser accepts such
	// a cookie only with Secure, Path=/ and no Domain (RFC 6265bis
	// §4.1.3.2), so no other host can set or shadow it.
	NamePrefixHost
	// NamePrefixHostHTTP names them __Host-Http-P-at, ...: what __Host-
	// guarantees, and that the cookie was set by a Set-Cookie header with
	// HttpOnly, never by script (the prefix RFC 10017 recommends for
	// cookies only HTTP may set). A browser that does not know __Host-Http-
	// still sees a name starting with __Host- and enforces that much
	// (docs/agent.md lists which browsers know it).
	NamePrefixHostHTTP
)

// namePrefixes are the settings' spellings and the name prefixes, indexed by
// NamePrefix.
var namePrefixes = [...]struct{ setting, name string }{
	NamePrefixNone:     {"none", ""},
	NamePrefixHost:     {"host", "__Host-"},
	NamePrefixHostHTTP: {"host-http", "__Host-Http-"},
}

// ParseNamePrefix parses the setting cookie.name_prefix: none, host or
// host-http. Its error names no setting, for the caller to put the name of
// its own in front (cookie.name_prefix, -name-prefix).
func ParseNamePrefix(s string) (NamePrefix, error) {
	for p, v := range namePrefixes {
		if v.setting == s {
			return NamePrefix(p), nil
		}
	}
	return 0, fmt.Errorf("must be none, host or host-http, got %q", s)
}

// String returns the setting's spelling: none, host or host-http.
func (p NamePrefix) String() string {
	if p.valid() {
		return namePrefixes[p].setting
	}
	return "NamePrefix(" + strconv.Itoa(int(p)) + ")"
}

// Host reports whether the names carry __Host- (host and host-http): the
// cookies must then be Secure, have Path=/ and no Domain, or the browser
// drops them.
func (p NamePrefix) Host() bool { return p == NamePrefixHost || p == NamePrefixHostHTTP }

func (p NamePrefix) valid() bool { return p >= 0 && int(p) < len(namePrefixes) }

// Names is the set of cookie and header names for one cookie.prefix.
// It is the one place the names are computed: the agent, the proxy and the
// NGINX renderer all take them from here.
//
// Names is immutable after NewNames and may be copied and shared.
type Names struct {
	Login        Cookie // P-login: temporary login state
	AccessToken  Cookie // P-at
	RefreshToken Cookie // P-auth
	IDToken      Cookie // P-id
	CSRF         Cookie // P-csrf
	// CSRFHeader is the request header that must repeat the CSRF token,
	// "x-P-csrf" (never prefixed: a prefix is a cookie matter).
	CSRFHeader string
	all        []string
	prefix     string // "P-", "__Host-P-" or "__Host-Http-P-"
}

// NewNames derives every name from prefix P: P-login, P-at, P-auth, P-id,
// P-csrf and x-P-csrf, the cookie names led by the name prefix of mode
// ("__Host-" or "__Host-Http-"). The prefix is checked by CheckPrefix.
func NewNames(prefix string, mode NamePrefix) (Names, error) {
	if err := CheckPrefix(prefix); err != nil {
		return Names{}, fmt.Errorf("browser: cookie name prefix: %w", err)
	}
	if !mode.valid() {
		return Names{}, fmt.Errorf("browser: unknown cookie name prefix mode %d", int(mode))
	}
	cookiePrefix := namePrefixes[mode].name + prefix + "-"
	n := Names{CSRFHeader: "x-" + prefix + "-csrf", prefix: cookiePrefix}
	for slot, c := range []struct {
		dst    *Cookie
		suffix string
	}{
		{&n.Login, "login"}, {&n.AccessToken, "at"}, {&n.RefreshToken, "auth"}, {&n.IDToken, "id"}, {&n.CSRF, "csrf"},
	} {
		c.dst.Name = cookiePrefix + c.suffix
		c.dst.slot = slot
		n.all = append(n.all, c.dst.Name)
		for i := range c.dst.chunks {
			c.dst.chunks[i] = c.dst.Name + "." + strconv.Itoa(i)
			n.all = append(n.all, c.dst.chunks[i])
		}
	}
	n.all = append(n.all, "")
	return n, nil
}

// All returns every cookie name the token handler may set, chunks included,
// and the empty name of a nameless cookie: the names a proxy strips before
// forwarding. The slice is shared; do not modify it.
func (n *Names) All() []string { return n.all }

// Cookies returns the five cookies in slot order: login, at, auth, id, csrf.
func (n *Names) Cookies() [slotCount]*Cookie {
	return [slotCount]*Cookie{&n.Login, &n.AccessToken, &n.RefreshToken, &n.IDToken, &n.CSRF}
}

// CheckPrefix is the one rule for cookie.prefix: 1 to MaxPrefix ASCII
// letters, digits, '-' or '_', so that the prefix is usable in cookie names
// (RFC 6265 §4.1.1 cookie-name is a token), in the header name x-P-csrf
// (an RFC 9110 §5.6.2 token) and in NGINX variable names and regular
// expressions without quoting; and not one that makes the cookie names
// start with a prefix browsers give rules of their own (__Host-, __Secure-,
// __Http-, in any case: RFC 6265bis §4.1.3), which they would apply to
// cookies set without them and so drop them. Its errors name no setting,
// for the caller to put the name of its own in front (cookie.prefix,
// -cookie-prefix).
func CheckPrefix(p string) error {
	if p == "" || len(p) > MaxPrefix {
		return fmt.Errorf("must be 1 to %d characters long, got %d", MaxPrefix, len(p))
	}
	for i := range len(p) {
		c := p[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%q may hold only ASCII letters, digits, '-' and '_'", p)
		}
	}
	for _, reserved := range []string{"__host-", "__secure-", "__http-"} {
		if strings.HasPrefix(strings.ToLower(p+"-"), reserved) {
			return fmt.Errorf("%q would start the cookie names with %s: browsers apply that prefix's rules to them and drop the cookies; for __Host- names set name_prefix instead", p, p[:len(reserved)-1]+"-")
		}
	}
	return nil
}

// Origins is an exact-match allow-list of web origins
// ("https://www.example.com", no trailing slash).
//
// Origins is immutable after NewOrigins and safe for concurrent use.
type Origins struct {
	set map[string]struct{}
}

// NewOrigins returns the allow-list of the given origins, compared byte for
// byte: no wildcard, no normalisation.
func NewOrigins(origins []string) Origins {
	o := Origins{set: make(map[string]struct{}, len(origins))}
	for _, s := range origins {
		o.set[s] = struct{}{}
	}
	return o
}

// Trusted reports whether origin is on the list. A missing (nil or empty)
// Origin is never trusted.
func (o Origins) Trusted(origin []byte) bool {
	if len(origin) == 0 {
		return false
	}
	_, ok := o.set[string(origin)] // the compiler does not allocate for this conversion
	return ok
}

// CSRFMatches reports in constant time whether the CSRF header equals the
// token from the decrypted CSRF cookie. An empty token never matches.
func CSRFMatches(header, token []byte) bool {
	return len(token) > 0 && subtle.ConstantTimeCompare(header, token) == 1
}

// CrossSite reports whether a Sec-Fetch-Site request header says the request
// came from another site; such a request is refused before anything else.
func CrossSite(secFetchSite []byte) bool { return string(secFetchSite) == "cross-site" }

// NeedsCSRF reports whether a request with this method needs the CSRF check:
// every method except GET, HEAD and OPTIONS, the methods RFC 9110 §9.2.1
// defines as safe that a browser sends (TRACE is never sent by fetch). An
// unknown or extension method (PROPFIND, a lower-case "post", which RFC 9110
// §9.1 makes a different method) may change data, so it needs the check too.
// The agent and the proxy both call it, so that the rule lives here once.
func NeedsCSRF(method []byte) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS":
		return false
	}
	return true
}

// token68Chars are the bytes of a token68 before its padding. The proxy
// checks every decrypted access token, about 1 KiB, on every request: a
// table lookup per byte costs less than the comparisons it replaces.
var token68Chars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", byte(c)) >= 0
	}
	return t
}()

// ValidToken68 reports whether tok is a non-empty RFC 6750 §2.1 b64token
// ("token68"): 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// Anything else could smuggle header syntax into Authorization.
func ValidToken68(tok []byte) bool {
	i := 0
	for ; i+8 <= len(tok); i += 8 {
		t := tok[i : i+8 : i+8]
		if !(token68Chars[t[0]] && token68Chars[t[1]] && token68Chars[t[2]] && token68Chars[t[3]] &&
			token68Chars[t[4]] && token68Chars[t[5]] && token68Chars[t[6]] && token68Chars[t[7]]) {
			break
		}
	}
	for i < len(tok) && token68Chars[tok[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(tok); i++ {
		if tok[i] != '=' {
			return false
		}
	}
	return true
}
