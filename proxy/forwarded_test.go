package proxy

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// TestHeadersReplaced (issue #12): every header the proxy sets replaces
// every copy the client sent, the forwarding headers are kept only from
// trusted_proxies, and what the proxy removes moves no other line: two
// lines of one name reach the API in their order (RFC 9110 §5.3; fasthttp's
// Del alone would swap the last line into a removed one's place).
func TestHeadersReplaced(t *testing.T) {
	sent := [][2]string{
		trusted(),
		header("Authorization", "Basic dTpw"),
		header("X-Forwarded-For", "203.0.113.1"), header("Accept", "text/a"),
		header("Forwarded", "for=203.0.113.3;proto=https"),
		header("X-Forwarded-For", "203.0.113.2"),
		header("X-Forwarded-Proto", "https"),
		header("X-Request-Id", "client-id-1"), header("X-Request-Id", "client-id-2"),
		header("X-Forwarded-Host", "evil.example"),
		header("Accept", "text/b"),
	}
	for _, tc := range []struct {
		name, extra string
		xff         []string
		proto, host []string
		forwarded   []string
	}{
		{"untrusted peer", "trusted_proxies: []", []string{"127.0.0.1"}, []string{"http"}, nil, nil},
		{"peer outside trusted_proxies", "trusted_proxies: [10.0.0.0/8]", []string{"127.0.0.1"}, []string{"http"}, nil, nil},
		{"trusted peer (the loopback default)", "", []string{"203.0.113.1, 203.0.113.2, 127.0.0.1"}, []string{"https"}, []string{"evil.example"}, []string{"for=203.0.113.3;proto=https"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startProxy(t, tc.extra)
			resp := h.do(request{method: "GET", path: "/api/things", headers: append(slices.Clone(sent), cookie(at(h)))})
			r, _ := h.up.Received()
			if resp.status != 200 || r == nil {
				t.Fatalf("status %d, API reached: %v", resp.status, r != nil)
			}
			host := tc.host
			if host == nil {
				host = []string{r.Host}
			}
			for _, c := range []struct {
				name string
				want []string
			}{
				{"Authorization", []string{"Bearer " + token}},
				{"X-Forwarded-For", tc.xff},
				{"X-Forwarded-Proto", tc.proto},
				{"X-Forwarded-Host", host},
				{"Forwarded", tc.forwarded},
				{"X-Request-Id", []string{"client-id-1"}},
				{"Accept", []string{"text/a", "text/b"}},
			} {
				if got := r.Header.Values(c.name); !slices.Equal(got, c.want) {
					t.Errorf("the API received %s %q, want %q", c.name, got, c.want)
				}
			}
		})
	}
}

// TestAnswerHopByHop (RFC 9110 §7.6.1): what an API answer's Connection
// names, and the standard hop-by-hop fields, do not reach the browser, and
// the API's X-Request-Id copies give way to the proxy's one.
func TestAnswerHopByHop(t *testing.T) {
	h := startProxy(t, "")
	h.up.handle("/api/hop", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Connection"] = []string{"X-Internal, x-other", "X-Third"}
		w.Header().Set("X-Internal", "secret")
		w.Header().Set("X-Other", "secret")
		w.Header().Set("X-Third", "secret")
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header()["X-Request-Id"] = []string{"api-1", "api-2"}
		w.Header().Set("X-Kept", "yes")
		// Go writes fields sorted by name: these come last, where
		// fasthttp's Del takes the line it moves into a removed one's place.
		w.Header()["Z-Multi"] = []string{"1", "2", "3"}
		w.Write([]byte(`{}`))
	})
	resp := h.do(request{method: "GET", path: "/api/hop", headers: [][2]string{trusted(), cookie(at(h)), header("X-Request-Id", "mine")}})
	if resp.status != 200 || resp.header.Get("X-Kept") != "yes" {
		t.Fatalf("status %d, X-Kept %q", resp.status, resp.header.Get("X-Kept"))
	}
	for _, name := range []string{"X-Internal", "X-Other", "X-Third", "Proxy-Authenticate", "Connection"} {
		if v := resp.header.Values(name); len(v) > 0 {
			t.Errorf("the browser received %s %q", name, v)
		}
	}
	if got := resp.header.Values("X-Request-Id"); !slices.Equal(got, []string{"mine"}) {
		t.Errorf("X-Request-Id %q, want only the proxy's", got)
	}
	if got := resp.header.Values("Z-Multi"); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("Z-Multi %q, want its lines in the API's order", got)
	}
}

// TestUnderscoreNames: a field name with '_' is refused with 400, in both
// modes: a CGI-style API would read X_Forwarded_For as the X-Forwarded-For
// the proxy writes.
func TestUnderscoreNames(t *testing.T) {
	h := startProxy(t, "auth_endpoint: true")
	for _, path := range []string{"/api/things", "/_oauth-proxy/auth"} {
		for _, name := range []string{"X_Forwarded_For", "x_real_ip", "_"} {
			resp := h.do(request{method: "GET", path: path, headers: [][2]string{trusted(), cookie(at(h)), header(name, "6.6.6.6")}})
			if resp.status != 400 {
				t.Errorf("%s with %s: status %d, want 400", path, name, resp.status)
			}
		}
	}
	if r, _ := h.up.Received(); r != nil {
		t.Errorf("the API was reached with %q", r.Header)
	}
}

// TestTwoAuthorizations: a request with two Authorization lines is refused
// with 400, in both modes, as NGINX refuses it: which line counts would be
// each reader's guess, and a second one must never reach the API beside
// the token.
func TestTwoAuthorizations(t *testing.T) {
	h := startProxy(t, "allow_tokens: true\nauth_endpoint: true")
	for _, path := range []string{"/api/things", "/_oauth-proxy/auth"} {
		for _, auth := range [][2][2]string{
			{header("Authorization", "Basic dTpw"), header("Authorization", "Basic dTpx")},
			{header("Authorization", "Bearer mine"), header("authorization", "Bearer other")},
		} {
			resp := h.do(request{method: "GET", path: path, headers: [][2]string{trusted(), cookie(at(h)), auth[0], auth[1]}})
			if resp.status != 400 {
				t.Errorf("%s with %q: status %d, want 400", path, auth, resp.status)
			}
		}
	}
	if r, _ := h.up.Received(); r != nil {
		t.Errorf("the API was reached with %q", r.Header.Values("Authorization"))
	}
}

// TestOwnTokens: allow_tokens matches the Bearer scheme case-insensitively
// (RFC 9110 §11.1), and allow_token_schemes lets the listed schemes pass
// untouched, in both modes.
func TestOwnTokens(t *testing.T) {
	h := startProxy(t, "allow_tokens: true\nallow_token_schemes: [DPoP]\nauth_endpoint: true")
	for _, tc := range []struct {
		auth string
		pass bool
	}{
		{"Bearer abc", true}, {"bearer abc", true}, {"BEARER abc", true},
		{"DPoP abc", true}, {"dpop abc", true},
		{"Basic dTpw", false}, {"DPoPx abc", false}, {"Bearer", false}, {"Bearer ", false}, {"MAC abc", false},
	} {
		resp := h.do(request{method: "POST", path: "/api/things", headers: [][2]string{header("Authorization", tc.auth), header("DPoP", "proof")}})
		r, _ := h.up.Received()
		switch {
		case tc.pass && (resp.status != 200 || r == nil || r.Header.Get("Authorization") != tc.auth || r.Header.Get("DPoP") != "proof"):
			t.Errorf("%q: status %d, want it passed untouched", tc.auth, resp.status)
		case !tc.pass && (resp.status != 401 || r != nil):
			t.Errorf("%q: status %d, want 401", tc.auth, resp.status)
		}
		resp = h.do(request{method: "GET", path: "/_oauth-proxy/auth", headers: [][2]string{header("X-Original-Method", "POST"), header("Authorization", tc.auth)}})
		if tc.pass != (resp.status == 200) || tc.pass && resp.header.Get("Authorization") != tc.auth {
			t.Errorf("%q: auth endpoint %d %q", tc.auth, resp.status, resp.header.Get("Authorization"))
		}
	}
}

// TestOptionsCORSOff: with CORS off the auth endpoint lets an OPTIONS
// through without cookies and without a token, for the API to answer.
func TestOptionsCORSOff(t *testing.T) {
	h := startProxyNoRoutes(t, "cors: {enabled: false}")
	resp := h.do(request{method: "GET", path: "/_oauth-proxy/auth", headers: [][2]string{header("X-Original-Method", "OPTIONS"), trusted()}})
	if resp.status != 200 || resp.header.Get("Authorization") != "" {
		t.Fatalf("status %d, Authorization %q; want 200 without a token", resp.status, resp.header.Get("Authorization"))
	}
	resp = h.do(request{method: "GET", path: "/_oauth-proxy/auth", headers: [][2]string{header("X-Original-Method", "GET"), trusted()}})
	if resp.status != 401 {
		t.Fatalf("GET without a cookie: status %d, want 401", resp.status)
	}
	// A client's own Authorization is not the token handler's word: the
	// auth endpoint does not hand it to NGINX, and upstream mode does not
	// forward it, unless allow_tokens accepts it.
	for _, extra := range []string{"cors: {enabled: false}", "cors: {enabled: false}\nallow_tokens: true"} {
		own := strings.Contains(extra, "allow_tokens")
		h := startProxyNoRoutes(t, extra)
		resp := h.do(request{method: "GET", path: "/_oauth-proxy/auth", headers: [][2]string{
			header("X-Original-Method", "OPTIONS"), trusted(), header("Authorization", "Bearer chosen")}})
		if got := resp.header.Get("Authorization"); resp.status != 200 || (got != "") == !own {
			t.Errorf("%s: auth endpoint %d, Authorization %q", extra, resp.status, got)
		}
		u := startProxy(t, extra)
		resp = u.do(request{method: "OPTIONS", path: "/api/things", headers: [][2]string{trusted(), header("Authorization", "Bearer chosen")}})
		r, _ := u.up.Received()
		if resp.status != 200 || r == nil {
			t.Fatalf("%s: OPTIONS status %d, API reached %v", extra, resp.status, r != nil)
		}
		if got := r.Header.Get("Authorization"); (got != "") == !own {
			t.Errorf("%s: the API received Authorization %q", extra, got)
		}
	}
}

// TestUnixPeerTrusted: a peer on the Unix socket is a trusted proxy even
// when trusted_proxies trusts no TCP peer: only local processes the
// socket's mode admits (NGINX on the same host) can connect, and they have
// no IP address to list.
func TestUnixPeerTrusted(t *testing.T) {
	sock := filepath.Join(bintest.SocketDir(t), "p.sock")
	up := newUpstream(t)
	h := startProxyWith(t, func(addr, newKey, oldKey, extra string) string {
		return strings.Replace(testConfig(addr, newKey, oldKey, extra), "listen: 127.0.0.1:0", "listen: unix:"+sock, 1)
	}, up, up.addr, "trusted_proxies: []")

	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/things HTTP/1.1\r\nHost: api\r\nOrigin: %s\r\nCookie: %s\r\n"+
		"X-Forwarded-For: 203.0.113.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: spa.example\r\n"+
		"Forwarded: for=203.0.113.1;proto=https\r\nConnection: close\r\n\r\n", trustedOrigin, at(h))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r, _ := up.Received()
	if resp.StatusCode != 200 || r == nil {
		t.Fatalf("status %d, API reached: %v", resp.StatusCode, r != nil)
	}
	for name, want := range map[string]string{
		"X-Forwarded-For":   "203.0.113.1", // a Unix peer has no address to append
		"X-Forwarded-Proto": "https",
		"X-Forwarded-Host":  "spa.example",
		"Forwarded":         "for=203.0.113.1;proto=https",
	} {
		if got := r.Header.Values(name); !slices.Equal(got, []string{want}) {
			t.Errorf("the API received %s %q, want %q kept from the Unix-socket peer", name, got, want)
		}
	}
}
