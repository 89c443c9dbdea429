package proxy

// Cookie confusion and session binding (issue #11), over real sockets: a
// cookie value in another cookie's slot, cookies of two sessions in one
// request, a cookie name that comes twice, chunking, the session's lifetime,
// and who may reach the auth endpoint.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/proxy/proxytest"
	"github.com/tokenhandler/tokenhandler/session"
)

// secretOf returns a token68 value unique to purpose p: an answer that
// holds it shows which cookie leaked, and it would pass the token68 check,
// so only the purpose can stop it.
func secretOf(p session.Purpose) string { return "leak." + p.String() + ".c2VjcmV0LXZhbHVl" }

// otherPurposes are the purposes a value in the P-at slot must not have.
var otherPurposes = []session.Purpose{session.Login, session.RefreshToken, session.IDToken, session.CSRF}

// denials returns how many requests of h's application the proxy has
// refused for reason d.
func (h *harness) denials(d deny) uint64 { return h.srv.Proxy.metrics.denials(h.cfg.Name)[d].Get() }

// checkNoLeak fails when an answer's headers or body hold any of secrets.
func checkNoLeak(t *testing.T, what string, header http.Header, body string, secrets ...string) {
	t.Helper()
	for _, secret := range secrets {
		if strings.Contains(body, secret) {
			t.Errorf("%s: the body holds %q", what, secret)
		}
		for k, vs := range header {
			for _, v := range vs {
				if strings.Contains(v, secret) {
					t.Errorf("%s: header %s holds %q", what, k, secret)
				}
			}
		}
	}
}

// authHeaders are hdrs as NGINX's auth subrequest for method sends them.
func authHeaders(method string, hdrs [][2]string) [][2]string {
	return append([][2]string{header("X-Original-Method", method), header("X-Original-URI", "/api/things")}, hdrs...)
}

// refused sends method with hdrs in upstream mode and, as NGINX's
// subrequest, to the auth endpoint (h needs routes and auth_endpoint: true).
// Both must answer the 401 and count reason why; the API must see nothing
// and no answer may hold any of secrets.
func refused(t *testing.T, h *harness, method string, hdrs [][2]string, why deny, secrets ...string) {
	t.Helper()
	before := h.denials(why)
	h.up.Received()
	resp := h.do(request{method: method, path: "/api/things", headers: hdrs})
	if resp.status != 401 || resp.body != unauthorizedBody {
		t.Errorf("upstream mode: %d %q, want 401 %s", resp.status, resp.body, unauthorizedBody)
	}
	if r, _ := h.up.Received(); r != nil {
		t.Errorf("upstream mode: the API received Authorization %q", r.Header.Get("Authorization"))
	}
	checkNoLeak(t, "upstream mode", resp.header, resp.body, secrets...)

	resp = h.do(request{method: "GET", path: "/_oauth-proxy/auth", headers: authHeaders(method, hdrs)})
	if resp.status != 401 || resp.body != unauthorizedBody || resp.header.Get("Authorization") != "" {
		t.Errorf("auth endpoint: %d %q, Authorization %q; want 401 and none", resp.status, resp.body, resp.header.Get("Authorization"))
	}
	checkNoLeak(t, "auth endpoint", resp.header, resp.body, secrets...)
	if n := h.denials(why) - before; n != 2 {
		t.Errorf("oauth_proxy_denied_total{reason=%q} rose by %d, want 2", denyReasons[why], n)
	}
}

// accepted is refused's opposite: both ways answer 200, and the API (or the
// auth endpoint's Authorization) gets "Bearer " + want.
func accepted(t *testing.T, h *harness, method string, hdrs [][2]string, want string) {
	t.Helper()
	h.up.Received()
	resp := h.do(request{method: method, path: "/api/things", headers: hdrs})
	r, _ := h.up.Received()
	if resp.status != 200 || r == nil || r.Header.Get("Authorization") != "Bearer "+want {
		t.Errorf("upstream mode: status %d (%q), the API received %v; want 200 and the token", resp.status, resp.body, r)
	}
	resp = h.do(request{method: "GET", path: "/_oauth-proxy/auth", headers: authHeaders(method, hdrs)})
	if resp.status != 200 || resp.header.Get("Authorization") != "Bearer "+want {
		t.Errorf("auth endpoint: status %d, Authorization %q; want 200 and the token", resp.status, resp.header.Get("Authorization"))
	}
}

// TestSlotSwapAccessToken: a value sealed for any other purpose, with the
// proxy's key and in the same session, never opens in the P-at slot: not as
// a GET, not as a POST with a valid CSRF pair, not chunked, and nothing of
// it comes back. The same value sealed for P-at passes, so the purpose is
// what refuses it.
func TestSlotSwapAccessToken(t *testing.T) {
	h := startProxy(t, "auth_endpoint: true")
	for _, p := range otherPurposes {
		t.Run(p.String(), func(t *testing.T) {
			h.t = t
			secret := secretOf(p)
			whole := h.seal(p, secret)
			chunked := h.chunked("example-at", p, 2, secret)
			for _, method := range []string{"GET", "POST"} {
				for _, c := range []string{"example-at=" + whole, chunked} {
					hdrs := [][2]string{trusted(), cookie(c)}
					if method == "POST" {
						hdrs = append(hdrs, csrfPair(h)...)
					}
					refused(t, h, method, hdrs, denyDecrypt, secret, whole)
				}
			}
			accepted(t, h, "GET", [][2]string{trusted(), cookie("example-at=" + h.seal(session.AccessToken, secret))}, secret)
		})
	}
}

// TestSlotSwapCSRF: on a POST, a value of any other purpose in the P-csrf
// slot, with a header that repeats its plaintext, is refused: the CSRF
// check does not open it.
func TestSlotSwapCSRF(t *testing.T) {
	h := startProxy(t, "auth_endpoint: true")
	for _, p := range []session.Purpose{session.Login, session.AccessToken, session.RefreshToken, session.IDToken} {
		t.Run(p.String(), func(t *testing.T) {
			h.t = t
			secret := secretOf(p)
			hdrs := [][2]string{trusted(), cookie(at(h) + "; example-csrf=" + h.seal(p, secret)), header("x-example-csrf", secret)}
			refused(t, h, "POST", hdrs, denyCSRFInvalid, secret)
		})
	}
	t.Run("control", func(t *testing.T) {
		h.t = t
		secret := secretOf(session.CSRF)
		accepted(t, h, "POST", [][2]string{trusted(), cookie(at(h) + "; example-csrf=" + h.seal(session.CSRF, secret)), header("x-example-csrf", secret)}, token)
	})
}

// TestSessionMismatch: P-at and P-csrf of two sessions never pass a request
// together, whichever is the attacker's: a data-changing one, and a GET that
// carries a P-csrf (browsers send it on every path).
func TestSessionMismatch(t *testing.T) {
	h := startProxy(t, "auth_endpoint: true")
	victim := proxytest.NewSession(time.Now())
	victimAT := "example-at=" + h.sealIn(&victim, session.AccessToken, 0, token)
	victimCSRF := h.sealIn(&victim, session.CSRF, 0, "victim-csrf-value")
	for _, tc := range []struct {
		name string
		hdrs [][2]string
	}{
		{"the victim's P-at, the attacker's CSRF pair", append(csrfPair(h), trusted(), cookie(victimAT))},
		{"the attacker's P-at, the victim's CSRF pair", [][2]string{trusted(), cookie(at(h) + "; example-csrf=" + victimCSRF), header("x-example-csrf", "victim-csrf-value")}},
		{"a CSRF pair planted before login", [][2]string{trusted(), cookie(victimAT + "; example-csrf=" + h.seal(session.CSRF, "planted")), header("x-example-csrf", "planted")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "GET"} {
				refused(t, h, m, tc.hdrs, denySessionMismatch)
			}
		})
	}
	t.Run("a GET with a P-csrf that does not open", func(t *testing.T) {
		h.t = t
		accepted(t, h, "GET", [][2]string{trusted(), cookie(victimAT + "; example-csrf=" + h.seal(session.AccessToken, "not-a-csrf"))}, token)
	})
	t.Run("one session", func(t *testing.T) {
		h.t = t
		accepted(t, h, "POST", [][2]string{trusted(), cookie(victimAT + "; example-csrf=" + victimCSRF), header("x-example-csrf", "victim-csrf-value")}, token)
	})
}

// TestAmbiguousCookies: a token-handler cookie name that comes twice, or a
// cookie both whole and chunked, or chunks with a gap, is refused, never
// resolved by order: whichever copy is the attacker's.
func TestAmbiguousCookies(t *testing.T) {
	h := startProxy(t, "auth_endpoint: true")
	attacker := proxytest.NewSession(time.Now())
	mine := h.seal(session.AccessToken, token)
	theirs := h.sealIn(&attacker, session.AccessToken, 0, "attacker.token")
	parts := splitValue(h.sealIn(&h.Env, session.AccessToken, 3, token), 3)
	csrf := h.seal(session.CSRF, "csrf-token-value")
	for _, tc := range []struct {
		name    string
		method  string
		cookies []string // one Cookie header each
	}{
		{"P-at twice, attacker's first", "GET", []string{"example-at=" + theirs + "; example-at=" + mine}},
		{"P-at twice, attacker's last", "GET", []string{"example-at=" + mine + "; example-at=" + theirs}},
		{"P-at in two Cookie headers", "GET", []string{"example-at=" + theirs, "example-at=" + mine}},
		{"P-at twice, the same value", "GET", []string{"example-at=" + mine + "; example-at=" + mine}},
		{"P-at twice, one empty", "GET", []string{"example-at=; example-at=" + mine}},
		{"P-at whole and chunked", "GET", []string{"example-at=" + mine + "; " + joinChunks("example-at", parts)}},
		{"P-at.0 alone beside P-at", "GET", []string{"example-at.0=" + parts[0] + "; example-at=" + mine}},
		{"a gap in the chunks", "GET", []string{"example-at.0=" + parts[0] + "; example-at.2=" + parts[2]}},
		{"no chunk 0", "GET", []string{"example-at.1=" + parts[1] + "; example-at.2=" + parts[2]}},
		{"a chunk twice", "GET", []string{joinChunks("example-at", parts) + "; example-at.1=" + parts[1]}},
		{"P-csrf twice", "POST", []string{"example-at=" + mine + "; example-csrf=" + csrf + "; example-csrf=" + csrf}},
		{"P-id twice", "GET", []string{"example-at=" + mine + "; example-id=a; example-id=b"}},
		{"P-auth twice", "GET", []string{"example-at=" + mine + "; example-auth=a", "example-auth=b"}},
		{"P-login twice", "GET", []string{"example-login=a; example-at=" + mine + "; example-login=a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			hdrs := [][2]string{trusted(), header("x-example-csrf", "csrf-token-value")}
			for _, c := range tc.cookies {
				hdrs = append(hdrs, cookie(c))
			}
			refused(t, h, tc.method, hdrs, denyAmbiguous, "attacker.token", token)
		})
	}
	t.Run("control", func(t *testing.T) {
		h.t = t
		accepted(t, h, "POST", [][2]string{trusted(), cookie("other=1; example-at=" + mine + "; other=2; example-csrf=" + csrf), header("x-example-csrf", "csrf-token-value")}, token)
		accepted(t, h, "GET", [][2]string{trusted(), cookie(joinChunks("example-at", parts))}, token)
	})
}

// TestChunkedV2: a v2 value opens only with the chunk count it was sealed
// for: split as the agent splits it, it passes; the same bytes sent in
// another number of pieces do not.
func TestChunkedV2(t *testing.T) {
	h := startProxy(t, "auth_endpoint: true")
	big := strings.Repeat("eyJhbGciOiJSUzI1NiJ9", 300) // 6 KiB
	for _, n := range []int{2, 3, 8} {
		t.Run(fmt.Sprintf("%d chunks", n), func(t *testing.T) {
			h.t = t
			accepted(t, h, "GET", [][2]string{trusted(), cookie(h.chunked("example-at", session.AccessToken, n, big))}, big)
		})
	}
	t.Run("chunked CSRF cookie", func(t *testing.T) {
		h.t = t
		accepted(t, h, "DELETE", [][2]string{trusted(), cookie(at(h) + "; " + h.chunked("example-csrf", session.CSRF, 2, "csrf-token-value")),
			header("x-example-csrf", "csrf-token-value")}, token)
	})
	whole := h.seal(session.AccessToken, big)
	three := h.sealIn(&h.Env, session.AccessToken, 3, big)
	for _, tc := range []struct {
		name, cookie string
	}{
		{"sealed whole, sent in 2 chunks", joinChunks("example-at", splitValue(whole, 2))},
		{"sealed for 3, sent in 2", joinChunks("example-at", splitValue(three, 2))},
		{"sealed for 3, sent in 4", joinChunks("example-at", splitValue(three, 4))},
		{"sealed for 3, sent whole", "example-at=" + three},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			refused(t, h, "GET", [][2]string{trusted(), cookie(tc.cookie)}, denyDecrypt, big[:40])
		})
	}
}

// TestSessionLifetime: the proxy refuses a v2 cookie from its own expiry
// on, and one whose session started session.max_lifetime ago or longer,
// whatever its own expiry says.
func TestSessionLifetime(t *testing.T) {
	now := time.Now()
	env := func(started, expires time.Duration) *session.Envelope {
		e := proxytest.NewSession(now)
		e.Started, e.Expires = now.Add(started).Unix(), now.Add(expires).Unix()
		return &e
	}
	for _, tc := range []struct {
		name    string
		extra   string
		at      *session.Envelope
		csrf    *session.Envelope // nil: a GET
		refused bool
	}{
		{"live", "", env(-time.Hour, time.Hour), nil, false},
		{"expired a second ago", "", env(-time.Hour, -time.Second), nil, true},
		{"expires now", "", env(-time.Hour, 0), nil, true},
		{"started 12h ago, still valid by its own expiry", "", env(-12*time.Hour-10*time.Second, time.Hour), nil, true},
		{"started almost 12h ago", "", env(-12*time.Hour+2*time.Minute, time.Hour), nil, false},
		{"max_lifetime 1h, started 2h ago", "session: {max_lifetime: 1h}", env(-2*time.Hour, time.Hour), nil, true},
		{"max_lifetime 1h, started 30m ago", "session: {max_lifetime: 1h}", env(-30*time.Minute, time.Hour), nil, false},
		{"POST, the CSRF cookie expired", "", env(-time.Hour, time.Hour), env(-time.Hour, -time.Second), true},
		{"POST, both live", "", env(-time.Hour, time.Hour), env(-time.Hour, 2*time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startProxy(t, "auth_endpoint: true\n"+tc.extra)
			method := "GET"
			hdrs := [][2]string{trusted()}
			c := "example-at=" + h.sealIn(tc.at, session.AccessToken, 0, token)
			if tc.csrf != nil {
				method = "POST"
				tc.csrf.ID = tc.at.ID
				c += "; example-csrf=" + h.sealIn(tc.csrf, session.CSRF, 0, "csrf-token-value")
				hdrs = append(hdrs, header("x-example-csrf", "csrf-token-value"))
			}
			hdrs = append(hdrs, cookie(c))
			if tc.refused {
				refused(t, h, method, hdrs, denySessionExpired, token)
			} else {
				accepted(t, h, method, hdrs, token)
			}
		})
	}
}

// TestLegacyFormatsKeepV2Checks: with cookie.format v1 the proxy still
// reads v2 cookies, and refuses what they tell against them (their purpose,
// session and age); a name twice is refused in every format.
func TestLegacyFormatsKeepV2Checks(t *testing.T) {
	h := startProxy(t, "auth_endpoint: true\ncookie: {format: v1}")
	old := proxytest.NewSession(time.Now().Add(-13 * time.Hour))
	refused(t, h, "GET", [][2]string{trusted(), cookie("example-at=" + h.seal(session.RefreshToken, secretOf(session.RefreshToken)))}, denyDecrypt, secretOf(session.RefreshToken))
	refused(t, h, "GET", [][2]string{trusted(), cookie("example-at=" + h.sealIn(&old, session.AccessToken, 0, token))}, denySessionExpired, token)
	refused(t, h, "GET", [][2]string{trusted(), cookie("example-at=" + h.sealLegacy(crypto.FormatV1, token) + "; example-at=" + h.sealLegacy(crypto.FormatV1, token))}, denyAmbiguous, token)
	// A v1 P-csrf beside a v2 P-at: no session to compare, refused.
	refused(t, h, "POST", [][2]string{trusted(), cookie(at(h) + "; example-csrf=" + h.sealLegacy(crypto.FormatV1, "csrf-token-value")), header("x-example-csrf", "csrf-token-value")}, denySessionMismatch, token)
}

// TestAuthEndpointSwitch: the auth endpoint answers only when there are no
// routes or auth_endpoint: true says so; otherwise auth_path is an ordinary
// path, and the token never comes back in a header.
func TestAuthEndpointSwitch(t *testing.T) {
	rootRoute := func(addr, newKey, oldKey, extra string) string {
		return noRoutesConfig(addr, newKey, oldKey, fmt.Sprintf("routes: [{path_prefix: /, upstream: \"http://%s\"}]\n%s", addr, extra))
	}
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) *harness
		want  int // 200: the auth endpoint answered; otherwise the status
		// forwarded: the request went to the API as an ordinary one.
		forwarded bool
	}{
		{"routes", func(t *testing.T) *harness { return startProxy(t, "") }, 404, false},
		{"routes, auth_endpoint: false", func(t *testing.T) *harness { return startProxy(t, "auth_endpoint: false") }, 404, false},
		{"routes, auth_endpoint: true", func(t *testing.T) *harness { return startProxy(t, "auth_endpoint: true") }, 200, false},
		{"no routes", func(t *testing.T) *harness { return startProxyNoRoutes(t, "") }, 200, false},
		{"no routes, auth_endpoint: false", func(t *testing.T) *harness { return startProxyNoRoutes(t, "auth_endpoint: false") }, 404, false},
		{"a route / over auth_path", func(t *testing.T) *harness {
			up := newUpstream(t)
			return startProxyWith(t, rootRoute, up, up.addr, "")
		}, 200, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.start(t)
			resp := h.do(request{method: "GET", path: "/_oauth-proxy/auth", headers: authHeaders("GET", [][2]string{trusted(), cookie(at(h))})})
			r, _ := h.up.Received()
			switch {
			case resp.status != tc.want:
				t.Fatalf("status %d (%q), want %d", resp.status, resp.body, tc.want)
			case tc.forwarded:
				if r == nil || r.URL.Path != "/_oauth-proxy/auth" || r.Header.Get("Authorization") != "Bearer "+token || resp.header.Get("Authorization") != "" {
					t.Errorf("the API received %v, the answer has Authorization %q; want the request forwarded and no token in the answer", r, resp.header.Get("Authorization"))
				}
			case r != nil:
				t.Errorf("the API received %s %s", r.Method, r.URL.Path)
			case tc.want == 200 && resp.header.Get("Authorization") != "Bearer "+token:
				t.Errorf("the auth endpoint answered Authorization %q", resp.header.Get("Authorization"))
			case tc.want != 200 && resp.header.Get("Authorization") != "":
				t.Errorf("status %d with Authorization %q", resp.status, resp.header.Get("Authorization"))
			}
		})
	}
}

// TestAuthEndpointRawPath: only a request target that is auth_path byte for
// byte (a query may follow) reaches the auth endpoint; paths that normalise
// to it do not, so no front end that passes such paths on can turn it into
// a token oracle for browsers.
func TestAuthEndpointRawPath(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) *harness
	}{
		{"no routes", func(t *testing.T) *harness { return startProxyNoRoutes(t, "") }},
		{"routes, auth_endpoint: true", func(t *testing.T) *harness { return startProxy(t, "auth_endpoint: true") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.start(t)
			creds := "Origin: " + trustedOrigin + "\r\nCookie: " + at(h) + "\r\nX-Original-Method: GET\r\n"
			for _, tc := range []struct {
				target string
				status int
			}{
				{"/_oauth-proxy/auth", 200},
				{"/_oauth-proxy/auth?x=1", 200},
				{"/api/../_oauth-proxy/auth", 404},
				{"/api/%2e%2e/_oauth-proxy/auth", 404},
				{"/x/..%2f_oauth-proxy/auth", 404},
				{"//_oauth-proxy/auth", 404},
				{"/_oauth-proxy//auth", 404},
				{"/_oauth-proxy/./auth", 404},
				{"/%5Foauth-proxy/auth", 404},
				{"/%5foauth-proxy/auth", 404},
				{"/_oauth-proxy/aut%68", 404},
				{"/_oauth-proxy/auth/", 404},
				{"/_oauth-proxy/auth%3Fx", 404},
			} {
				got := sendRaw(t, h, "GET "+tc.target+" HTTP/1.1\r\nHost: api\r\n"+creds+"\r\n")
				if got.Err != nil || got.Status != tc.status {
					t.Errorf("GET %s: status %d (%v), want %d", tc.target, got.Status, got.Err, tc.status)
				}
				want := ""
				if tc.status == 200 {
					want = "Bearer " + token
				}
				if a := got.Header.Get("Authorization"); a != want {
					t.Errorf("GET %s: Authorization %q, want %q", tc.target, a, want)
				}
				if tc.status != 200 {
					checkNoLeak(t, "GET "+tc.target, got.Header, got.Body, token[:20])
				}
				if r, _ := h.up.Received(); r != nil {
					t.Errorf("GET %s: the API received %s", tc.target, r.URL.Path)
				}
			}
		})
	}
}
