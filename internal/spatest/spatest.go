// Package spatest plays the browser side of a Single Page App in tests: a
// cookie jar that scopes cookies by Path as browsers do (RFC 6265 §5.1.4,
// §5.3), requests that carry Origin like the SPA's fetch, and the CSRF
// header on POSTs once the agent has handed it out.
package spatest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// Browser is one browser profile. It is not safe for concurrent use; give
// each concurrent tab its own (Clone).
type Browser struct {
	T      testing.TB
	Origin string // sent as Origin; "" sends none
	CSRF   string // sent as CSRFHeader on every method but GET, HEAD and OPTIONS, when set
	// CSRFHeader is the CSRF request header, "x-example-csrf" by default.
	CSRFHeader string
	// Host, when set, is sent as the Host header instead of the URL's host
	// (an agent serving several applications picks one by it).
	Host string
	// Cookies by name + "|" + path.
	Cookies map[string]*http.Cookie
	// Client sends the requests; nil is one with a 15 s timeout that
	// follows no redirects. Give one that dials *.localhost names at
	// loopback, as browsers do, to reach applications chosen by Host.
	Client *http.Client
}

// New returns an empty browser sending origin.
func New(t testing.TB, origin string) *Browser {
	return &Browser{T: t, Origin: origin, CSRFHeader: "x-example-csrf", Cookies: map[string]*http.Cookie{}}
}

// Clone returns a browser with copies of b's cookies and settings: another
// tab of the same profile.
func (b *Browser) Clone() *Browser {
	c := *b
	c.Cookies = map[string]*http.Cookie{}
	for k, v := range b.Cookies {
		cp := *v
		c.Cookies[k] = &cp
	}
	return &c
}

// Answer is one response, read whole.
type Answer struct {
	Status     int
	Header     http.Header
	Body       []byte
	SetCookies []*http.Cookie
}

// JSON decodes the body as a JSON object.
func (r Answer) JSON() map[string]any {
	var m map[string]any
	json.Unmarshal(r.Body, &m)
	return m
}

// Code returns the "code" of a JSON error body.
func (r Answer) Code() string {
	var m struct{ Code string }
	json.Unmarshal(r.Body, &m)
	return m.Code
}

// Leak returns the first of secrets found in r's body or in any of its
// header values, or "". Secrets shorter than 8 bytes are skipped: they
// would match by chance.
func (r Answer) Leak(secrets []string) string {
	var all strings.Builder
	all.Write(r.Body)
	for k, vs := range r.Header {
		all.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	for _, s := range secrets {
		if len(s) >= 8 && strings.Contains(all.String(), s) {
			return s
		}
	}
	return ""
}

var client = &http.Client{
	Timeout:       15 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Call sends a request to rawURL with the cookies in scope; body is nil, a
// string, or a value sent as JSON; extra are header name/value pairs.
func (b *Browser) Call(method, rawURL string, body any, extra ...string) Answer {
	b.T.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	default:
		data, _ := json.Marshal(v)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		b.T.Fatal(err)
	}
	if b.Host != "" {
		req.Host = b.Host
	}
	if b.Origin != "" {
		req.Header.Set("Origin", b.Origin)
	}
	if b.CSRF != "" && method != "GET" && method != "HEAD" && method != "OPTIONS" {
		req.Header.Set(b.CSRFHeader, b.CSRF)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	var pairs []string
	for _, c := range b.InScope(req.URL.Path) {
		pairs = append(pairs, c.Name+"="+c.Value)
	}
	if len(pairs) > 0 {
		req.Header.Set("Cookie", strings.Join(pairs, "; "))
	}
	c := b.Client
	if c == nil {
		c = client
	}
	resp, data := bintest.Do(b.T, c, req)
	for _, c := range resp.Cookies() {
		key := c.Name + "|" + c.Path
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.Cookies, key) // only the cookie of the same name and path
		} else {
			b.Cookies[key] = c
		}
	}
	return Answer{resp.StatusCode, resp.Header, data, resp.Cookies()}
}

// InScope returns the cookies a browser sends to path.
func (b *Browser) InScope(path string) []*http.Cookie {
	var out []*http.Cookie
	for _, c := range b.Cookies {
		p := c.Path
		if p == "" || p == "/" || path == p || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/") {
			out = append(out, c)
		}
	}
	return out
}

// Cookie returns the cookie named name (any path), or nil.
func (b *Browser) Cookie(name string) *http.Cookie {
	for _, c := range b.Cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Query returns the query of a URL.
func Query(t testing.TB, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}
