package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/browser"
)

// ambiguous reports whether a request must be refused before anything else
// looks at it, because two HTTP implementations could read it differently:
//
//   - an absolute-form request target (RFC 9112 §3.2.2): the proxy is no
//     forward proxy, NGINX and browsers send origin-form, and the URI's host
//     would silently replace Host;
//   - a field name that is not an RFC 9110 §5.1 token ("Bad Name: x"), or
//     a line without a colon (a folded line, RFC 9112 §5.2);
//   - a field name with '_', which some servers read as '-';
//   - Authorization twice: it holds one set of credentials (RFC 9110
//     §11.6.2), and which line counts would be up to each reader (NGINX
//     answers such a request 400 too);
//   - Transfer-Encoding beside Content-Length, or a Transfer-Encoding other
//     than exactly "chunked" (RFC 9112 §6.1, §6.3): the classic shapes of
//     request smuggling. fasthttp itself refuses duplicate Content-Length
//     headers and unknown codings, but lets Transfer-Encoding win over
//     Content-Length and ignores "identity".
//
// RFC 9112 §6.3 requires closing the connection after answering such a
// request. It reads the raw header bytes fasthttp keeps and allocates
// nothing.
func ambiguous(h *fasthttp.RequestHeader) bool {
	if uri := h.RequestURI(); len(uri) == 0 || uri[0] != '/' && !(len(uri) == 1 && uri[0] == '*') {
		return true
	}
	// The parsed header keeps no trace of "identity", and the server sets a
	// Content-Length of its own on bodiless requests: only the raw bytes
	// tell.
	var te, cl, auth bool
	for raw := h.RawHeaders(); len(raw) > 0; {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue // the end of the header section
		}
		// RFC 9110 §5.1: a field name is a token. fasthttp reads
		// "Bad Name: x" as a field and " x: y" or a folded line (RFC 9112
		// §5.2, obs-fold) as part of one; another server would read them
		// otherwise, so none is let through.
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok || !validToken(name) {
			return true
		}
		// '_' is a tchar, but CGI-style servers (WSGI, Rack, PHP) read it
		// as '-': "X_Forwarded_For" would reach such an API as the
		// X-Forwarded-For the proxy writes. NGINX drops these names by
		// default (underscores_in_headers off); the rendered configuration
		// passes them on for the proxy to refuse, in both modes.
		if bytes.IndexByte(name, '_') >= 0 {
			return true
		}
		switch {
		case len(name) == len("Transfer-Encoding") && (name[0]|0x20) == 't' && bytes.EqualFold(name, strTransferEncoding):
			if te || !bytes.EqualFold(browser.TrimOWS(value), strChunked) {
				return true
			}
			te = true
		case len(name) == len("Content-Length") && (name[0]|0x20) == 'c' && bytes.EqualFold(name, strContentLength):
			cl = true
		case len(name) == len("Authorization") && (name[0]|0x20) == 'a' && bytes.EqualFold(name, fieldAuthorization):
			if auth {
				return true
			}
			auth = true
		}
	}
	return te && cl
}

var (
	strTransferEncoding = []byte(fasthttp.HeaderTransferEncoding)
	strContentLength    = []byte(fasthttp.HeaderContentLength)
	strChunked          = []byte("chunked")
)

// validToken reports whether b is an RFC 9110 §5.6.2 token: one or more
// tchar, the syntax of a field name (§5.1).
func validToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

// tchar is RFC 9110 §5.6.2's tchar: "!" / "#" / "$" / "%" / "&" / "'" /
// "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
