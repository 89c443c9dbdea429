package proxy

import (
	"net"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/session"
)

// TestErrorsEchoNoSecrets complements TestLogsHoldNoSecrets with the
// proxy's error answers: requests that carry a token cookie, a CSRF cookie
// and header, and a browser Authorization, refused for every reason the
// proxy has (400, 401, 404, 413, 431, 502, 504, and a request fasthttp
// cannot parse), at debug log level. Neither the answers nor the logs may
// hold the token, a cookie value or the CSRF value.
func TestErrorsEchoNoSecrets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hang := ln.Addr().String() // accepts (the kernel does) and never answers
	t.Cleanup(func() { ln.Close() })
	h := startProxyTo(t, nil, hang, "log: {level: debug}\ntimeouts: {upstream: 300ms}\nlimits: {max_body_bytes: 10}")
	down := startProxyTo(t, nil, "127.0.0.1:1", "log: {level: debug}")
	// Both proxies open the same cookies.
	down.Keys = h.Keys
	down.srv.Proxy.apps.Load().byName[""].codec = h.srv.Proxy.apps.Load().byName[""].codec
	atCookie := h.seal(session.AccessToken, token)
	csrfCookie := h.seal(session.CSRF, "csrf-token-value")
	cookies := "Cookie: example-at=" + atCookie + "; example-csrf=" + csrfCookie + "\r\n"
	creds := "Origin: " + trustedOrigin + "\r\n" + cookies + "x-example-csrf: csrf-token-value\r\nAuthorization: Bearer browser-sent-secret\r\n"
	for _, tc := range []struct {
		h      *harness
		raw    string
		status int
	}{
		{h, "POST /api/x HTTP/1.1\r\nHost: api\r\n" + creds + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{h, "GET /api/x?token=" + token + " HTTP/1.1\r\nHost: api\r\n" + creds + "Bad Header Line\r\n\r\n", 400},
		{h, "GET /api/x HTTP/1.1\r\nHost: api\r\nCookie example-at=" + atCookie + "\r\n\r\n", 400},
		{h, "GET /api/x HTTP/1.1\r\nHost: api\r\nCookie: example-at=" + atCookie + "\x00\r\n\r\n", 400},
		{h, "DELETE /api/x HTTP/1.1\r\nHost: api\r\nOrigin: " + trustedOrigin + "\r\n" + cookies + "x-example-csrf: csrf-wrong-value\r\n\r\n", 401},
		{h, "GET /elsewhere HTTP/1.1\r\nHost: api\r\n" + creds + "\r\n", 404},
		{h, "POST /api/x HTTP/1.1\r\nHost: api\r\n" + creds + "Content-Length: 11\r\n\r\nhello world", 413},
		{h, "GET /api/x HTTP/1.1\r\nHost: api\r\n" + creds + "X-Big: " + strings.Repeat("b", 20<<10) + "\r\n\r\n", 431},
		{h, "GET /api/x HTTP/1.1\r\nHost: api\r\n" + creds + "\r\n", 504},
		{down, "GET /api/x HTTP/1.1\r\nHost: api\r\n" + creds + "\r\n", 502},
	} {
		got := sendRaw(t, tc.h, tc.raw)
		if got.Status != tc.status {
			t.Errorf("%.40q: status %d (%v), want %d", tc.raw, got.Status, got.Err, tc.status)
		}
		for _, secret := range []string{token, atCookie, csrfCookie, atCookie[60:80], csrfCookie[40:60], "csrf-token-value", "csrf-wrong-value", "browser-sent-secret"} {
			if strings.Contains(got.Body, secret) {
				t.Errorf("%.40q: the answer holds %q: %s", tc.raw, secret, got.Body)
			}
		}
	}
	logs := h.logs.String() + down.logs.String()
	if !strings.Contains(logs, `"status":504`) || !strings.Contains(logs, `"message":"upstream request failed"`) || !strings.Contains(logs, `"component":"fasthttp"`) {
		t.Fatalf("expected request lines, upstream failures and fasthttp's own messages; got:\n%s", logs)
	}
	for _, secret := range []string{token, token[:20], atCookie[:20], atCookie[60:80], csrfCookie[:20], "csrf-token-value", "csrf-wrong-value", "browser-sent-secret"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold %q:\n%s", secret, logs)
		}
	}
}
