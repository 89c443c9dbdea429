package proxy

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/daemon"
	"github.com/tokenhandler/tokenhandler/proxy/proxytest"
	"github.com/tokenhandler/tokenhandler/session"
)

// TestLogsHoldNoSecrets logs every request at debug level, and upstream
// failures at warn, and looks for tokens, cookie values and CSRF values.
func TestLogsHoldNoSecrets(t *testing.T) {
	h := startProxy(t, "log: {level: debug}\nauth_endpoint: true")
	atCookie := h.seal(session.AccessToken, token)
	csrfCookie := h.seal(session.CSRF, "csrf-token-value")
	for _, r := range []request{
		{method: "GET", path: "/api/things?access_token=" + token, headers: [][2]string{trusted(), cookie("example-at=" + atCookie)}},
		{method: "POST", path: "/api/things", headers: [][2]string{trusted(), cookie("example-at=" + atCookie + "; example-csrf=" + csrfCookie), header("x-example-csrf", "csrf-token-value")}},
		{method: "POST", path: "/api/things", headers: [][2]string{trusted(), cookie("example-at=" + atCookie + "; example-csrf=" + csrfCookie), header("x-example-csrf", "wrong-csrf-value")}},
		{method: "GET", path: "/_oauth-proxy/auth", headers: [][2]string{trusted(), cookie("example-at=" + atCookie[:50])}},
		{method: "GET", path: "/api/things", headers: [][2]string{trusted(), header("Authorization", "Bearer "+token)}},
	} {
		h.do(r)
	}
	h.up.srv.Close()
	h.do(request{method: "GET", path: "/api/down", headers: [][2]string{trusted(), cookie("example-at=" + atCookie)}})

	logs := h.logs.String()
	if !strings.Contains(logs, `"message":"request"`) || !strings.Contains(logs, `"message":"upstream request failed"`) {
		t.Fatalf("expected request and upstream-failure lines, got:\n%s", logs)
	}
	for _, secret := range []string{token, token[:20], atCookie[:20], csrfCookie[:20], "csrf-token-value", "wrong-csrf-value"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain %q:\n%s", secret, logs)
		}
	}
}

// TestDenialLogged: at info, each refused request is one line with its
// reason, method, path without the query, request ID and client address,
// and no cookie, CSRF value or token; through the auth endpoint it names
// the request NGINX asks about.
func TestDenialLogged(t *testing.T) {
	h := startProxy(t, "log: {level: info}\nauth_endpoint: true")
	atCookie := h.seal(session.AccessToken, token)
	csrfCookie := h.seal(session.CSRF, "csrf-token-value")
	for _, tc := range []struct {
		name   string
		req    request
		reason string
		method string
		path   string
	}{
		{"origin", request{method: "GET", path: "/api/things?access_token=" + token, headers: [][2]string{origin("https://evil.example"), cookie("example-at=" + atCookie), header("X-Request-Id", "req-origin")}},
			"origin", "GET", "/api/things"},
		{"csrf header", request{method: "POST", path: "/api/things", headers: [][2]string{trusted(), cookie("example-at=" + atCookie + "; example-csrf=" + csrfCookie), header("x-example-csrf", "wrong-csrf-value"), header("X-Request-Id", "req-csrf")}},
			"csrf_header_mismatch", "POST", "/api/things"},
		{"garbage cookie", request{method: "GET", path: "/api/things", headers: [][2]string{trusted(), cookie("example-at=" + atCookie[:50]), header("X-Request-Id", "req-garbage")}},
			"access_token_cookie_invalid", "GET", "/api/things"},
		{"auth endpoint", request{method: "GET", path: "/_oauth-proxy/auth", headers: [][2]string{trusted(), header("X-Original-Method", "DELETE"), header("X-Original-URI", "/api/things/7?code=secret-code"), cookie("example-at=" + atCookie), header("X-Request-Id", "req-auth")}},
			"csrf_cookie_missing", "DELETE", "/api/things/7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mark := len(h.logs.String())
			if r := h.do(tc.req); r.status != 401 {
				t.Fatalf("status %d, want 401", r.status)
			}
			logs := h.logs.String()[mark:]
			lines := bintest.LogLines(t, logs, "request denied")
			if len(lines) != 1 {
				t.Fatalf("%d 'request denied' lines, want 1:\n%s", len(lines), logs)
			}
			l := lines[0]
			want := map[string]any{"level": "info", "reason": tc.reason, "status": 401.0, "method": tc.method, "path": tc.path,
				"request_id": tc.req.headers[len(tc.req.headers)-1][1], "client": "127.0.0.1"}
			for k, v := range want {
				if l[k] != v {
					t.Errorf("%s = %v, want %v (line %v)", k, l[k], v, l)
				}
			}
			for _, secret := range []string{token[:20], atCookie[:20], csrfCookie[:20], "csrf-token-value", "wrong-csrf-value", "secret-code"} {
				if strings.Contains(logs, secret) {
					t.Errorf("the logs contain %q:\n%s", secret, logs)
				}
			}
			if w := bintest.LogLines(t, logs, daemon.KeyMismatchMessage); len(w) != 0 {
				t.Errorf("a key-mismatch warning for a cookie that is not well-formed:\n%s", logs)
			}
		})
	}
	// At warn, the default of a quiet deployment, denials are not logged.
	q := startProxy(t, "log: {level: warn}")
	q.do(request{method: "GET", path: "/api/things", headers: [][2]string{origin("https://evil.example")}})
	if strings.Contains(q.logs.String(), "denied") {
		t.Errorf("at warn a denial was logged:\n%s", q.logs.String())
	}
}

// TestDenialClient: behind a trusted proxy the client is the last
// X-Forwarded-For entry, what that proxy saw; from anyone else, the peer.
func TestDenialClient(t *testing.T) {
	for _, tc := range []struct {
		name, trust, xff, want string
	}{
		{"trusted peer", "", "10.9.9.9, 192.0.2.7", "192.0.2.7"},
		{"trusted peer, not an address", "", "10.9.9.9, <script>", "127.0.0.1"},
		{"untrusted peer", "\ntrusted_proxies: []", "10.9.9.9, 192.0.2.7", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startProxy(t, "log: {level: info}"+tc.trust)
			h.do(request{method: "GET", path: "/api/things", headers: [][2]string{origin("https://evil.example"), header("X-Forwarded-For", tc.xff)}})
			lines := bintest.LogLines(t, h.logs.String(), "request denied")
			if len(lines) != 1 || lines[0]["client"] != tc.want {
				t.Errorf("got %v, want one line with client %s", lines, tc.want)
			}
		})
	}
}

// denyingProxy is a Proxy at info level logging JSON to a buffer, whose
// clock tests move, and a request it refuses for its Origin.
func denyingProxy(t *testing.T) (*Proxy, *bintest.Buffer, *time.Time) {
	t.Helper()
	key := crypto.GenerateKey()
	cfg, err := ParseConfig([]byte(fmt.Sprintf("encryption_keys: [%q]\ntrusted_web_origins: [%q]\nlog: {level: info}\n", key.AppendHex(nil), trustedOrigin)), nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bintest.Buffer{}
	p, err := New(cfg, metrics.NewSet(), zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	p.now = func() time.Time { return now }
	return p, logs, &now
}

// serveRaw runs one request through p's handler, in process.
func serveRaw(t *testing.T, p *Proxy, raw string) int {
	t.Helper()
	var req fasthttp.Request
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(203, 0, 113, 5), Port: 4444}, nil)
	p.Handler(&ctx)
	return ctx.Response.StatusCode()
}

const untrustedGET = "GET /api/things HTTP/1.1\r\nHost: api\r\nOrigin: https://evil.example\r\n\r\n"

// TestDenialBurst: 1,000 denials of one reason within a second give
// daemon.DeniedLinesPerSecond (10) lines, and the first denial of the next second
// says how many were suppressed (990) before its own line.
func TestDenialBurst(t *testing.T) {
	p, logs, now := denyingProxy(t)
	for range 1000 {
		if status := serveRaw(t, p, untrustedGET); status != 401 {
			t.Fatalf("status %d, want 401", status)
		}
	}
	if n := len(bintest.LogLines(t, logs.String(), "request denied")); n != daemon.DeniedLinesPerSecond {
		t.Fatalf("1,000 denials in one second: %d lines, want %d", n, daemon.DeniedLinesPerSecond)
	}
	if n := strings.Count(logs.String(), "\n"); n != daemon.DeniedLinesPerSecond {
		t.Fatalf("%d lines in all, want %d:\n%s", n, daemon.DeniedLinesPerSecond, logs.String())
	}
	mark := len(logs.String())
	*now = now.Add(time.Second)
	serveRaw(t, p, untrustedGET)
	next := logs.String()[mark:]
	summary := bintest.LogLines(t, next, "suppressed similar denials")
	if len(summary) != 1 || summary[0]["suppressed"] != 990.0 || summary[0]["reason"] != "origin" {
		t.Fatalf("the next second's summary: %v, want one line, origin, suppressed 990:\n%s", summary, next)
	}
	if n := len(bintest.LogLines(t, next, "request denied")); n != 1 {
		t.Fatalf("the next second: %d denial lines, want 1", n)
	}
}

// TestKeyMismatchWarned: a well-formed access-token or CSRF cookie sealed
// with a key the proxy does not have gives one warning per minute, however
// many requests carry it; a damaged or garbage cookie gives none.
func TestKeyMismatchWarned(t *testing.T) {
	p, logs, now := denyingProxy(t)
	foreignRing, _ := crypto.NewKeyring(crypto.GenerateKey())
	foreign, _ := session.NewCodec(foreignRing, crypto.FormatV2)
	env := proxytest.NewSession(*now)
	at, _ := foreign.Seal(nil, session.AccessToken, 0, &env, []byte(token))
	csrf, _ := foreign.Seal(nil, session.CSRF, 0, &env, []byte("csrf-token-value"))
	get := func(cookie string) string {
		return "GET /api/things HTTP/1.1\r\nHost: api\r\nOrigin: " + trustedOrigin + "\r\nCookie: " + cookie + "\r\n\r\n"
	}
	for _, garbage := range []string{"example-at=garbage", "example-at=" + string(at[:60]), "example-at=" + string(at) + "=="} {
		serveRaw(t, p, get(garbage))
	}
	if w := bintest.LogLines(t, logs.String(), daemon.KeyMismatchMessage); len(w) != 0 {
		t.Fatalf("garbage cookies gave a key-mismatch warning:\n%s", logs.String())
	}
	for range 100 {
		serveRaw(t, p, get("example-at="+string(at)))
	}
	w := bintest.LogLines(t, logs.String(), daemon.KeyMismatchMessage)
	if len(w) != 1 || w[0]["level"] != "warn" || w[0]["cookie"] != "example-at" || w[0]["keys"] != 1.0 {
		t.Fatalf("100 requests with a foreign key: %v, want one warn line naming example-at and 1 key:\n%s", w, logs.String())
	}
	if strings.Contains(logs.String(), string(at[:20])) {
		t.Errorf("the logs hold the cookie")
	}
	// A minute later a POST whose CSRF cookie is foreign warns again.
	mark := len(logs.String())
	*now = now.Add(time.Minute)
	serveRaw(t, p, "POST /api/things HTTP/1.1\r\nHost: api\r\nOrigin: "+trustedOrigin+"\r\nx-example-csrf: csrf-token-value\r\nContent-Length: 0\r\nCookie: example-csrf="+string(csrf)+"\r\n\r\n")
	later := logs.String()[mark:]
	w = bintest.LogLines(t, later, daemon.KeyMismatchMessage)
	if len(w) != 1 || w[0]["cookie"] != "example-csrf" || w[0]["suppressed"] != 99.0 {
		t.Fatalf("a minute later, a foreign CSRF cookie: %v, want one warn line naming example-csrf, 99 suppressed:\n%s", w, later)
	}
}
