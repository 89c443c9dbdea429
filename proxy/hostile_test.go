package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/session"
)

// sendRaw writes raw as is on a new connection to the proxy and reads one
// answer.
func sendRaw(t *testing.T, h *harness, raw string) bintest.RawAnswer {
	t.Helper()
	return bintest.Raw(t, h.srv.Addr().String(), raw)
}

// TestHostileClients sends malformed, oversized and ambiguous requests over
// raw TCP, byte for byte, and checks the status line and that the API saw
// nothing. Requests that could be forwarded carry valid credentials, so
// that only the check under test stands between them and the API.
func TestHostileClients(t *testing.T) {
	h := startProxy(t, "")
	atCookie := at(h)
	csrfCookie := "example-csrf=" + h.seal(session.CSRF, "csrf-token-value")
	auth := fmt.Sprintf("Origin: %s\r\nCookie: %s; %s\r\nx-example-csrf: csrf-token-value\r\n", trustedOrigin, atCookie, csrfCookie)

	manyCookies := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "c%d=v; ", i)
		}
		return b.String()
	}
	tests := []struct {
		name   string
		raw    string
		status int
		code   string // the JSON code of the answer
		// forwarded is the path the API must receive; "" means the API
		// must see nothing.
		forwarded string
	}{
		{"64 KiB cookie", "GET /api/x HTTP/1.1\r\nHost: api\r\n" + auth + "Cookie: big=" + strings.Repeat("a", 64<<10) + "\r\n\r\n", 431, "request_headers_too_large", ""},
		{"headers over the limit in many lines", "GET /api/x HTTP/1.1\r\nHost: api\r\n" + auth + strings.Repeat("X-Filler: "+strings.Repeat("f", 100)+"\r\n", 170) + "\r\n", 431, "request_headers_too_large", ""},
		{"thousands of cookies, no token", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: " + trustedOrigin + "\r\nCookie: " + manyCookies(1500) + "example-at=\r\n\r\n", 401, "unauthorized", ""},
		{"invalid UTF-8 in a header", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: " + trustedOrigin + "\r\nX-Name: \xff\xfe\xc3\x28\r\n\r\n", 401, "unauthorized", ""},
		{"invalid UTF-8 in the token cookie", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: " + trustedOrigin + "\r\nCookie: example-at=\xff\xfe" + atCookie[len("example-at="):] + "\r\n\r\n", 401, "unauthorized", ""},
		{"invalid UTF-8 in the Origin", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: " + trustedOrigin + "\xff\r\nCookie: " + atCookie + "\r\n\r\n", 401, "unauthorized", ""},
		{"Content-Length and Transfer-Encoding", "POST /api/x HTTP/1.1\r\nHost: api\r\n" + auth + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "bad_request", ""},
		{"Transfer-Encoding and Content-Length", "POST /api/x HTTP/1.1\r\nHost: api\r\n" + auth + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400, "bad_request", ""},
		{"two different Content-Length", "POST /api/x HTTP/1.1\r\nHost: api\r\n" + auth + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, "bad_request", ""},
		{"Content-Length list", "POST /api/x HTTP/1.1\r\nHost: api\r\n" + auth + "Content-Length: 5, 6\r\n\r\nhello!", 400, "bad_request", ""},
		{"Transfer-Encoding: chunked, identity", "POST /api/x HTTP/1.1\r\nHost: api\r\n" + auth + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400, "bad_request", ""},
		{"Transfer-Encoding: identity", "POST /api/x HTTP/1.1\r\nHost: api\r\n" + auth + "Transfer-Encoding: identity\r\n\r\n", 400, "bad_request", ""},
		{"absolute-form URI", "GET http://evil.example/api/x HTTP/1.1\r\nHost: api\r\n" + auth + "\r\n", 400, "bad_request", ""},
		{"encoded dot segments", "GET /api/%2e%2e/admin HTTP/1.1\r\nHost: api\r\n" + auth + "\r\n", 404, "not_found", ""},
		{"encoded dot segments, upper case", "GET /api/%2E%2E/%2E%2E/admin HTTP/1.1\r\nHost: api\r\n" + auth + "\r\n", 404, "not_found", ""},
		{"encoded slashes and dots", "GET /api%2f..%2fadmin HTTP/1.1\r\nHost: api\r\n" + auth + "\r\n", 404, "not_found", ""},
		{"encoded dots in a stripped route", "GET /api/v2/%2e%2e/%2e%2e/admin HTTP/1.1\r\nHost: api\r\n" + auth + "\r\n", 404, "not_found", ""},
		// The path is matched and forwarded in its decoded, normalised
		// form (docs/proxy.md): the API receives the path the route was
		// chosen by, never a form that means something else to it.
		{"encoded slash: matched as forwarded", "GET /api%2fadmin HTTP/1.1\r\nHost: api\r\n" + auth + "\r\n", 200, "", "/api/admin"},
		{"dot segments inside the route", "GET /api/v2/../things HTTP/1.1\r\nHost: api\r\n" + auth + "\r\n", 200, "", "/api/things"},
		{"a backslash is no separator", "GET /api/..\\admin HTTP/1.1\r\nHost: api\r\n" + auth + "\r\n", 200, "", "/api/..\\admin"},
		{"CR in a cookie value", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: " + trustedOrigin + "\r\nCookie: a=b\rexample-at=x\r\n\r\n", 400, "bad_request", ""},
		// RFC 9112 §5.2: obsolete line folding may be refused with 400, and
		// is (fasthttp would join it, another server might not).
		{"folded line in a cookie value", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: " + trustedOrigin + "\r\nCookie: a=b\r\n " + atCookie + "\r\n\r\n", 400, "bad_request", ""},
		// RFC 9110 §5.1: a field name is a token.
		{"space in a field name", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: " + trustedOrigin + "\r\nBad Name: x\r\nCookie: " + atCookie + "\r\n\r\n", 400, "bad_request", ""},
		{"space in a field name, auth endpoint", "GET /_oauth-proxy/auth HTTP/1.1\r\nHost: api\r\nOrigin: " + trustedOrigin + "\r\nBad Name: x\r\nCookie: " + atCookie + "\r\n\r\n", 400, "bad_request", ""},
		{"line starting with a space", "GET /api/x HTTP/1.1\r\nHost: api\r\n X-A: b\r\nCookie: " + atCookie + "\r\n\r\n", 400, "bad_request", ""},
		{"LF alone in a cookie value", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: " + trustedOrigin + "\r\nCookie: a=b\n" + atCookie + "\r\n\r\n", 400, "bad_request", ""},
		{"encoded CRLF in a cookie value", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: " + trustedOrigin + "\r\nCookie: example-at=%0d%0aX-Injected:%201\r\n\r\n", 401, "unauthorized", ""},
		{"Origin: null", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: null\r\nCookie: " + atCookie + "\r\n\r\n", 401, "unauthorized", ""},
		{"Origin: null, POST", "POST /api/x HTTP/1.1\r\nHost: api\r\nOrigin: null\r\nCookie: " + atCookie + "; " + csrfCookie + "\r\nx-example-csrf: csrf-token-value\r\nContent-Length: 0\r\n\r\n", 401, "unauthorized", ""},
		{"Origin in upper case", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: " + strings.ToUpper(trustedOrigin) + "\r\nCookie: " + atCookie + "\r\n\r\n", 401, "unauthorized", ""},
		{"Origin host in upper case", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: http://WWW.example.localhost:3000\r\nCookie: " + atCookie + "\r\n\r\n", 401, "unauthorized", ""},
		{"Origin with another port", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: http://www.example.localhost:3001\r\nCookie: " + atCookie + "\r\n\r\n", 401, "unauthorized", ""},
		{"Origin without its port", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: http://www.example.localhost\r\nCookie: " + atCookie + "\r\n\r\n", 401, "unauthorized", ""},
		{"Origin with https", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: https://www.example.localhost:3000\r\nCookie: " + atCookie + "\r\n\r\n", 401, "unauthorized", ""},
		{"Origin with a trailing slash", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: " + trustedOrigin + "/\r\nCookie: " + atCookie + "\r\n\r\n", 401, "unauthorized", ""},
		{"Origin with a trailing dot", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: http://www.example.localhost.:3000\r\nCookie: " + atCookie + "\r\n\r\n", 401, "unauthorized", ""},
		{"Origin as a suffix", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: http://evil" + strings.TrimPrefix(trustedOrigin, "http://") + "\r\nCookie: " + atCookie + "\r\n\r\n", 401, "unauthorized", ""},
		{"two Origin headers", "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: https://evil.example\r\nOrigin: " + trustedOrigin + "\r\nCookie: " + atCookie + "\r\n\r\n", 401, "unauthorized", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.up.Received()
			got := sendRaw(t, h, tc.raw)
			if got.Err != nil || got.Status != tc.status || tc.code != "" && !strings.Contains(got.Body, `"code":"`+tc.code+`"`) {
				t.Errorf("status %d body %.100q (%v), want %d %s", got.Status, got.Body, got.Err, tc.status, tc.code)
			}
			// RFC 9112 §6.3: the connection of a request whose framing
			// cannot be trusted is closed after the answer.
			if tc.status == 400 && !got.Closed {
				t.Error("the connection stays open after a 400")
			}
			r, _ := h.up.Received()
			switch {
			case tc.forwarded == "" && r != nil:
				t.Errorf("the API received %s %s", r.Method, r.URL.RequestURI())
			case tc.forwarded != "" && (r == nil || r.URL.Path != tc.forwarded):
				t.Errorf("the API received %v, want %s", r, tc.forwarded)
			}
		})
	}
}

// TestSmuggledRequestNotServed: the bytes after a request with both
// Content-Length and Transfer-Encoding are never read as a second request.
func TestSmuggledRequestNotServed(t *testing.T) {
	h := startProxy(t, "")
	auth := fmt.Sprintf("Origin: %s\r\nCookie: %s; example-csrf=%s\r\nx-example-csrf: csrf-token-value\r\n", trustedOrigin, at(h), h.seal(session.CSRF, "csrf-token-value"))
	smuggled := "GET /api/smuggled HTTP/1.1\r\nHost: api\r\n" + auth + "\r\n"
	conn, err := net.Dial("tcp", h.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "POST /api/x HTTP/1.1\r\nHost: api\r\n%sContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%s", auth, len("0\r\n\r\n")+len(smuggled), smuggled)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 400 {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
	if _, err := http.ReadResponse(br, nil); err == nil {
		t.Error("a second answer came on the same connection")
	}
	if r, _ := h.up.Received(); r != nil {
		t.Errorf("the API received %s %s", r.Method, r.URL.Path)
	}
}

// TestManyCookies: a Cookie header of 1,500 cookies within the header
// limit is read in bounded time, and the token among them still counts.
func TestManyCookies(t *testing.T) {
	h := startProxy(t, "")
	var b strings.Builder
	for i := range 1500 {
		fmt.Fprintf(&b, "c%d=v; ", i)
	}
	others := strings.TrimSuffix(b.String(), "; ")
	start := time.Now()
	for range 20 {
		resp := h.do(request{method: "GET", path: "/api/x", headers: [][2]string{trusted(), cookie(others + "; " + at(h) + "; last=1")}})
		r, _ := h.up.Received()
		if resp.status != 200 || r == nil || r.Header.Get("Cookie") != others+"; last=1" {
			t.Fatalf("status %d, the API received %v", resp.status, r)
		}
		resp = h.do(request{method: "GET", path: "/api/x", headers: [][2]string{trusted(), cookie(others)}})
		if r, _ := h.up.Received(); resp.status != 401 || r != nil {
			t.Fatalf("without the token: status %d, the API received %v", resp.status, r)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("40 requests with 1,500 cookies took %v", d)
	}
}

// TestSlowloris: a client that sends its headers a byte at a time loses its
// connection once timeouts.read has passed, and nothing reaches the API.
func TestSlowloris(t *testing.T) {
	const read = 500 * time.Millisecond
	h := startProxy(t, "timeouts: {read: 500ms, upstream: 2s}")
	start := time.Now()
	conn, err := net.Dial("tcp", h.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := make(chan time.Duration, 1)
	go func() {
		// Whatever comes back (an error answer or nothing), the proxy
		// ends the connection.
		io.Copy(io.Discard, conn)
		closed <- time.Since(start)
	}()
	req := "GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: " + trustedOrigin + "\r\nCookie: " + at(h) + "\r\nX-Slow: " + strings.Repeat("s", 100)
	var d time.Duration
	func() {
		for i := 0; i < len(req); i++ {
			select {
			case d = <-closed:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := conn.Write([]byte{req[i]}); err != nil {
				d = <-closed
				return
			}
		}
		t.Fatal("the proxy read the whole slow request without closing")
	}()
	// The deadline starts at accept, a moment before start.
	if d < read*8/10 || d > read+time.Second {
		t.Errorf("the connection closed after %v, want about timeouts.read (%v)", d, read)
	}
	if r, _ := h.up.Received(); r != nil {
		t.Errorf("the API received %s %s", r.Method, r.URL.Path)
	}
}
