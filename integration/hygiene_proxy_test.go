package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/spatest"
	"github.com/tokenhandler/tokenhandler/nginx"
)

// TestHygieneProxy is issue #12's proxy behaviour against the built
// oauth-proxy, sent to it directly (the upstream-mode proxy, and the
// auth_request-mode proxy's auth endpoint as NGINX calls it) and through
// real NGINX in both modes, in raw bytes over TCP so that duplicate fields
// and broken field names reach the wire as written:
//
//  1. every header the proxy sets (Authorization, X-Request-Id,
//     X-Forwarded-For) replaces every copy the client sent;
//  2. trusted_proxies decides whether the client's X-Forwarded-* and
//     Forwarded are kept (loopback by default);
//  3. an API answer's hop-by-hop fields and those its Connection names do
//     not reach the browser (RFC 9110 §7.6.1);
//  4. a field name that is not a token, a line starting with a space and a
//     folded line are 400;
//  5. CSRF on every method but GET, HEAD and OPTIONS;
//  6. with cors.enabled false, OPTIONS goes to the API untouched;
//  7. allow_tokens matches Bearer case-insensitively, allow_token_schemes
//     lets DPoP through;
//  8. cors.max_age 0 leaves Access-Control-Max-Age out.
//
// Where NGINX answers or rewrites a request before the proxy sees it, the
// row asserts what NGINX does and says why it is still what the issue asks.
func TestHygieneProxy(t *testing.T) {
	fx := newFixture(t)

	// The stacks, each started in its own subtest with the rows that use
	// it: a proxy that refuses a stack's settings fails those rows alone.
	stacks := []struct {
		name, proxyYAML string
		params          func(*nginx.Params)
	}{
		// Settings a proxy from before issue #12 also reads: the loopback
		// peers trusted, own bearer tokens allowed, no Max-Age.
		{"default", "allow_tokens: true\ncors: {enabled: true, max_age: 0}\n", nil},
		// NGINX (which connects from 127.0.0.1) trusted and a client
		// calling from 127.0.0.2 not; DPoP tokens allowed.
		{"issue12", "trusted_proxies: [127.0.0.1]\nallow_tokens: true\nallow_token_schemes: [DPoP]\n", nil},
		// NGINX rendered for a proxy with CORS off (CORSDisabled): OPTIONS
		// goes through auth_request like any method.
		{"cors off", "cors: {enabled: false}\n", func(p *nginx.Params) { p.CORSDisabled = true }},
	}

	// Each row runs once per way in: "direct" is the upstream-mode proxy,
	// "auth" the auth_request-mode proxy's auth endpoint (called as NGINX
	// calls it, the browser's method and target in X-Original-Method and
	// X-Original-URI), "upstream" and "auth_request" NGINX in each mode.
	all := []string{"direct", "auth", "upstream", "auth_request"}
	tests := []struct {
		name  string
		stack string
		via   []string
		run   func(t *testing.T, s *proxyStack, via string)
	}{
		// 1. Headers the proxy sets replace every copy.
		{"1 duplicate Authorization beside the cookie", "default", all, func(t *testing.T, s *proxyStack, via string) {
			mark := s.api.mark()
			a := s.send(t, via, "", "GET", "/api/dup", s.origin(), s.cookies(), "Authorization: Basic dTpw", "Authorization: Basic dTpx")
			// Two Authorization lines are refused with 400 everywhere:
			// NGINX does it itself ("client sent duplicate header line",
			// ngx_http_process_unique_header_line), the proxy and its auth
			// endpoint in step 0, as a request two parsers could read
			// differently. None reaches the API.
			if n := len(s.api.requests(mark)); a.status != 400 || n != 0 {
				t.Fatalf("status %d, the API saw %d requests; want 400 and none", a.status, n)
			}
			if got := a.header.Values("Authorization"); len(got) > 0 {
				t.Errorf("the answer carries Authorization %q", redact(got))
			}
		}},
		{"1 duplicate X-Request-Id and X-Forwarded-For", "default", []string{"direct", "upstream", "auth_request"}, func(t *testing.T, s *proxyStack, via string) {
			a := s.send(t, via, "", "GET", "/api/dup", s.origin(), s.cookies(),
				"X-Request-Id: client-1", "X-Request-Id: client-2",
				"X-Forwarded-For: 203.0.113.1", "X-Forwarded-For: 203.0.113.2")
			if a.status != 200 {
				t.Fatalf("status %d %s", a.status, a.body)
			}
			r := s.one(t, a)
			if got := r.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != a.header.Get("X-Request-Id") {
				t.Errorf("the API received X-Request-Id %q, the browser %q; want one, the same", got, a.header.Values("X-Request-Id"))
			}
			// Directly the proxy trusts the loopback client and joins its
			// lines; NGINX's $proxy_add_x_forwarded_for joins them too
			// (before the proxy, trusting NGINX, appends NGINX's
			// address). Either way one line, the client's lines in the
			// order sent (RFC 9110 §5.3: a proxy must not reorder field
			// lines of one name), the real peers last.
			if got := r.Header.Values("X-Forwarded-For"); len(got) != 1 || !strings.HasPrefix(got[0], "203.0.113.1, 203.0.113.2, 127.0.0.1") {
				t.Errorf("the API received X-Forwarded-For %q, want one line, the client's in order, then the peers", got)
			}
		}},

		// 2. trusted_proxies.
		{"2 forwarding headers from a trusted peer (loopback default) are kept", "default", []string{"direct"}, func(t *testing.T, s *proxyStack, via string) {
			r := s.one(t, s.send(t, via, "127.0.0.1", "GET", "/api/fwd", append([]string{s.origin(), s.cookies()}, forwardingLines...)...))
			want := map[string][]string{"X-Forwarded-For": {"203.0.113.1, 127.0.0.1"}, "X-Forwarded-Proto": {"https"},
				"X-Forwarded-Host": {"spa.attacker.example"}, "Forwarded": {"for=203.0.113.3;proto=https"}}
			checkHeaders(t, r, want)
		}},
		{"2 forwarding headers from an untrusted peer are replaced", "issue12", []string{"direct", "upstream", "auth_request"}, func(t *testing.T, s *proxyStack, via string) {
			// The client calls from 127.0.0.2, which trusted_proxies
			// leaves out; NGINX calls the proxy from 127.0.0.1.
			a := s.send(t, via, "127.0.0.2", "GET", "/api/fwd", append([]string{s.origin(), s.cookies()}, forwardingLines...)...)
			r := s.one(t, a)
			want := map[string][]string{"X-Forwarded-For": {"127.0.0.2"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Host": {s.host(via)}, "Forwarded": nil}
			if via != "direct" {
				want["X-Forwarded-Host"] = []string{"127.0.0.1"} // NGINX's $host has no port
				// NGINX is the client's peer: its proxy_set_header lines
				// replace -Proto and -Host, and $proxy_add_x_forwarded_for
				// appends the address it saw to the client's list (the
				// documented meaning of X-Forwarded-For: only the entries
				// a trusted hop appended are the client's), which the
				// proxy, trusting NGINX, extends with NGINX's own.
				want["X-Forwarded-For"] = []string{"203.0.113.1, 127.0.0.2"}
				if via == "upstream" {
					want["X-Forwarded-For"] = []string{"203.0.113.1, 127.0.0.2, 127.0.0.1"}
				}
			}
			checkHeaders(t, r, want)
		}},

		// 3. Hop-by-hop fields of an answer. The auth endpoint forwards no
		// answer, so it has no row.
		{"3 an answer's Connection-named and hop-by-hop fields", "default", []string{"direct", "upstream", "auth_request"}, func(t *testing.T, s *proxyStack, via string) {
			a := s.send(t, via, "", "GET", "/api/hop?h=Connection:X-Internal&h=X-Internal:secret&h=Proxy-Authenticate:Basic&h=X-Kept:yes",
				s.origin(), s.cookies())
			s.one(t, a)
			if a.status != 200 || a.header.Get("X-Kept") != "yes" {
				t.Fatalf("status %d, X-Kept %q", a.status, a.header.Get("X-Kept"))
			}
			dropped := []string{"X-Internal", "Proxy-Authenticate"}
			if via == "auth_request" {
				// In auth_request mode NGINX carries the answer, and
				// proxy_hide_header takes fixed names only: it drops
				// Proxy-Authenticate but cannot drop what Connection
				// names. docs/proxy.md states this limit of the mode.
				dropped = []string{"Proxy-Authenticate"}
				if a.header.Get("X-Internal") != "secret" {
					t.Errorf("X-Internal %q: NGINX dropped it after all; update docs/proxy.md and this row", a.header.Get("X-Internal"))
				}
			}
			for _, name := range dropped {
				if v := a.header.Values(name); len(v) > 0 {
					t.Errorf("the browser received %s %q", name, v)
				}
			}
			if v := a.header.Get("Connection"); strings.Contains(strings.ToLower(v), "x-internal") {
				t.Errorf("the browser received Connection %q", v)
			}
		}},

		// 4. Field names that are not tokens, and folded lines.
		{"4 a space in a field name", "default", all, func(t *testing.T, s *proxyStack, via string) {
			// NGINX refuses a space in a name itself, with its own 400
			// page (ngx_http_parse_header_line): no JSON code there.
			s.refused(t, via, via != "upstream" && via != "auth_request", "Bad Name: x")
		}},
		{"4 a separator in a field name", "default", all, func(t *testing.T, s *proxyStack, via string) {
			// NGINX passes "Bad/Name" on (ignore_invalid_headers off) and
			// the proxy refuses it, in auth_request mode through the auth
			// request, which carries every header.
			s.refused(t, via, true, "Bad/Name: x")
		}},
		{"4 a line starting with a space", "default", all, func(t *testing.T, s *proxyStack, via string) {
			s.refused(t, via, via != "upstream" && via != "auth_request", " X-A: b")
		}},
		{"4 a folded line", "default", all, func(t *testing.T, s *proxyStack, via string) {
			s.refused(t, via, via != "upstream" && via != "auth_request", "X-A: b\r\n c")
		}},

		// 5. CSRF by method.
		{"5 CSRF on every method but GET, HEAD and OPTIONS", "default", all, func(t *testing.T, s *proxyStack, via string) {
			for _, method := range []string{"POST", "PUT", "DELETE", "PROPFIND", "QUERY", "MKCOL"} {
				mark := s.api.mark()
				a := s.send(t, via, "", method, "/api/csrf", s.origin(), s.cookies())
				if a.status != 401 || a.code() != "unauthorized" || len(s.api.requests(mark)) != 0 {
					t.Errorf("%s without CSRF: %d %s, the API saw %d requests", method, a.status, a.body, len(s.api.requests(mark)))
				}
				// The same request with the header passes: the refusal
				// above is the header's.
				a = s.send(t, via, "", method, "/api/csrf", s.origin(), s.cookies(), s.csrf())
				if a.status != 200 {
					t.Errorf("%s with CSRF: %d %s", method, a.status, a.body)
				}
			}
		}},
		{"5 CSRF on a lower-case method", "default", []string{"direct", "auth", "upstream", "auth_request"}, func(t *testing.T, s *proxyStack, via string) {
			mark := s.api.mark()
			a := s.send(t, via, "", "post", "/api/csrf", s.origin(), s.cookies())
			if n := len(s.api.requests(mark)); n != 0 {
				t.Fatalf("a lower-case post without CSRF reached the API (%d requests): %d", n, a.status)
			}
			switch via {
			case "upstream", "auth_request":
				// NGINX refuses a method that is not upper case
				// itself (ngx_http_parse_request_line).
				if a.status != 400 {
					t.Errorf("status %d, want NGINX's 400", a.status)
				}
			default:
				if a.status != 401 || a.code() != "unauthorized" {
					t.Errorf("status %d %s, want 401 unauthorized", a.status, a.body)
				}
			}
		}},

		// 6. OPTIONS with CORS off.
		{"6 OPTIONS with cors.enabled false goes to the API untouched", "cors off", all, func(t *testing.T, s *proxyStack, via string) {
			// A preflight: no cookies, no CSRF header (Fetch §3.2.2).
			a := s.send(t, via, "", "OPTIONS", "/api/things", s.origin(), "Access-Control-Request-Method: PUT")
			if a.status != 200 {
				t.Fatalf("status %d %s, want the API's 200", a.status, a.body)
			}
			if via == "auth" {
				if v := a.header.Values("Authorization"); len(v) != 0 {
					t.Fatalf("the auth endpoint answered Authorization for a preflight")
				}
				return
			}
			r := s.one(t, a)
			if r.Method != "OPTIONS" || r.Header.Get("Authorization") != "" || r.Header.Get("Access-Control-Request-Method") != "PUT" {
				t.Errorf("the API received %s, Authorization %q, ACRM %q", r.Method, redact(r.Header.Values("Authorization")), r.Header.Get("Access-Control-Request-Method"))
			}
			if v := a.header.Get("Access-Control-Allow-Origin"); v != "" {
				t.Errorf("the proxy answered CORS (ACAO %q) with cors.enabled false", v)
			}
		}},

		// 7. Own tokens.
		{"7 allow_tokens: a lower-case bearer passes untouched", "default", all, func(t *testing.T, s *proxyStack, via string) {
			s.ownToken(t, via, "bearer own-token-1", true)
			s.ownToken(t, via, "BEARER own-token-2", true)
			s.ownToken(t, via, "Basic dTpw", false)
		}},
		{"7 allow_token_schemes: DPoP passes untouched", "issue12", all, func(t *testing.T, s *proxyStack, via string) {
			s.ownToken(t, via, "DPoP own-token-3", true)
			s.ownToken(t, via, "dpop own-token-4", true)
			s.ownToken(t, via, "DPoPx own-token-5", false)
		}},

		// 8. Access-Control-Max-Age with max_age 0. A preflight in
		// auth_request mode goes to the proxy itself, as the auth
		// endpoint answers no preflight.
		{"8 Access-Control-Max-Age left out when max_age is 0", "default", []string{"direct", "auth", "upstream", "auth_request"}, func(t *testing.T, s *proxyStack, via string) {
			if via == "auth" {
				via = "auth proxy"
			}
			a := s.send(t, via, "", "OPTIONS", "/api/things", s.origin(), "Access-Control-Request-Method: PUT", "Access-Control-Request-Headers: x-example-csrf")
			if a.status != 204 || a.header.Get("Access-Control-Allow-Origin") != spaOrigin {
				t.Fatalf("preflight: %d, ACAO %q", a.status, a.header.Get("Access-Control-Allow-Origin"))
			}
			if v, ok := a.header["Access-Control-Max-Age"]; ok {
				t.Errorf("Access-Control-Max-Age %q, want none", v)
			}
		}},
	}
	rows := 0
	for _, st := range stacks {
		t.Run(st.name, func(t *testing.T) {
			s := newProxyStack(t, fx.stack(t, stackOptions{proxyYAML: st.proxyYAML, params: st.params}))
			for _, tc := range tests {
				if tc.stack != st.name {
					continue
				}
				for _, via := range tc.via {
					rows++
					t.Run(tc.name+", "+via, func(t *testing.T) { tc.run(t, s, via) })
				}
			}
		})
	}
	t.Logf("%d rows", rows)
}

// forwardingLines are forwarding headers a client made up.
var forwardingLines = []string{
	"X-Forwarded-For: 203.0.113.1",
	"X-Forwarded-Proto: https",
	"X-Forwarded-Host: spa.attacker.example",
	"Forwarded: for=203.0.113.3;proto=https",
}

// proxyStack is a binStack with a logged-in browser.
type proxyStack struct {
	*binStack
	b *spatest.Browser
}

func newProxyStack(t *testing.T, s *binStack) *proxyStack {
	t.Helper()
	return &proxyStack{binStack: s, b: s.login(t, "alice")}
}

func (s *proxyStack) origin() string { return "Origin: " + spaOrigin }

// cookies is the Cookie line of the logged-in browser: every cookie it
// holds.
func (s *proxyStack) cookies() string {
	var pairs []string
	for _, c := range s.b.Cookies {
		pairs = append(pairs, c.Name+"="+c.Value)
	}
	slices.Sort(pairs)
	return "Cookie: " + strings.Join(pairs, "; ")
}

func (s *proxyStack) csrf() string { return s.b.CSRFHeader + ": " + s.b.CSRF }

// base returns the URL of a way in.
func (s *proxyStack) base(via string) string {
	switch via {
	case "direct":
		return s.proxyURL
	case "auth", "auth proxy":
		return strings.TrimSuffix(s.authURL, "/_oauth-proxy/auth")
	case "upstream":
		return s.upstream
	case "auth_request":
		return s.authReq
	}
	panic("integration: internal error: no way in " + via)
}

// host is the host:port a request through via is addressed to.
func (s *proxyStack) host(via string) string {
	return strings.TrimPrefix(s.base(via), "http://")
}

// rawAnswer is one answer read whole.
type rawAnswer struct {
	status int
	header http.Header
	body   string
	mark   int // the API's mark before the request
}

func (a rawAnswer) code() string { return spatest.Answer{Body: []byte(a.body)}.Code() }

// send writes a request in raw bytes through via, from the local address
// from ("" for the default), with lines as its header lines after Host,
// and reads the answer. Through "auth" it is the auth request NGINX would
// make for it: GET auth_path with X-Original-Method and X-Original-URI.
func (s *proxyStack) send(t *testing.T, via, from, method, target string, lines ...string) rawAnswer {
	t.Helper()
	host := s.host(via)
	if via == "auth" {
		lines = append(slices.Clone(lines), "X-Original-Method: "+method, "X-Original-URI: "+target)
		method, target = "GET", "/_oauth-proxy/auth"
	}
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host)
	for _, l := range lines {
		req.WriteString(l + "\r\n")
	}
	if method != "GET" && method != "HEAD" && method != "OPTIONS" {
		req.WriteString("Content-Length: 0\r\n")
	}
	req.WriteString("Connection: close\r\n\r\n")
	mark := s.api.mark()

	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	conn, err := d.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s via %s: %v", method, target, via, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return rawAnswer{resp.StatusCode, resp.Header, string(body), mark}
}

// one returns the one request the API received for the answer a, by its
// X-Request-Id, and fails t unless there is exactly one.
func (s *proxyStack) one(t *testing.T, a rawAnswer) apiRequest {
	t.Helper()
	id := a.header.Get("X-Request-Id")
	var got []apiRequest
	for _, r := range s.api.requests(a.mark) {
		if id != "" && r.Header.Get("X-Request-Id") == id {
			got = append(got, r)
		}
	}
	if len(got) != 1 {
		t.Fatalf("the API received %d requests with X-Request-Id %q (answer %d %s)", len(got), id, a.status, a.body)
	}
	return got[0]
}

// refused sends a GET with line among its header lines and fails t unless
// it is answered 400 (with the proxy's bad_request code when proxyAnswers)
// and the API never sees it.
func (s *proxyStack) refused(t *testing.T, via string, proxyAnswers bool, line string) {
	t.Helper()
	mark := s.api.mark()
	a := s.send(t, via, "", "GET", "/api/bad", s.origin(), line, s.cookies())
	if n := len(s.api.requests(mark)); n != 0 {
		t.Fatalf("%q reached the API (%d requests), answer %d", line, n, a.status)
	}
	if a.status != 400 || proxyAnswers && a.code() != "bad_request" {
		t.Fatalf("%q: %d %s, want 400%s", line, a.status, a.body, map[bool]string{true: " bad_request"}[proxyAnswers])
	}
}

// ownToken sends a POST carrying auth and a DPoP proof, no cookies and no
// CSRF header, and fails t unless the API received both untouched (pass)
// or the proxy refused it (401).
func (s *proxyStack) ownToken(t *testing.T, via, auth string, pass bool) {
	t.Helper()
	mark := s.api.mark()
	a := s.send(t, via, "", "POST", "/api/own", s.origin(), "Authorization: "+auth, "DPoP: proof")
	if !pass {
		if a.status != 401 || len(s.api.requests(mark)) != 0 {
			t.Errorf("%q: %d, the API saw %d requests; want 401", auth, a.status, len(s.api.requests(mark)))
		}
		return
	}
	if a.status != 200 {
		t.Errorf("%q: %d %s, want it passed", auth, a.status, a.body)
		return
	}
	if via == "auth" {
		if got := a.header.Values("Authorization"); !slices.Equal(got, []string{auth}) {
			t.Errorf("%q: the auth endpoint answered Authorization %q", auth, got)
		}
		return
	}
	r := s.one(t, a)
	if got := r.Header.Values("Authorization"); !slices.Equal(got, []string{auth}) || r.Header.Get("DPoP") != "proof" {
		t.Errorf("%q: the API received Authorization %q, DPoP %q", auth, got, r.Header.Get("DPoP"))
	}
}

// checkHeaders fails t unless r carries each header with exactly the values
// of want (nil: none).
func checkHeaders(t *testing.T, r apiRequest, want map[string][]string) {
	t.Helper()
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	}) {
		if got := r.Header.Values(name); !slices.Equal(got, want[name]) {
			t.Errorf("the API received %s %q, want %q", name, got, want[name])
		}
	}
}

// redact keeps the scheme of Authorization values: a test log holds no
// token.
func redact(values []string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		scheme, _, _ := strings.Cut(v, " ")
		out[i] = scheme + " …"
	}
	return out
}
