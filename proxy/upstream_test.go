package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/session"
)

func TestPreflight(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		hdrs  [][2]string
		want  map[string]string // header → value; "" means absent
	}{
		{"trusted, requested headers echoed", "", [][2]string{trusted(), header("Access-Control-Request-Method", "POST"), header("Access-Control-Request-Headers", "x-example-csrf, content-type")},
			map[string]string{
				"Access-Control-Allow-Origin":      trustedOrigin,
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods":     "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
				"Access-Control-Allow-Headers":     "x-example-csrf, content-type",
				"Access-Control-Max-Age":           "86400",
				"Access-Control-Expose-Headers":    "",
				"Vary":                             "Origin",
			}},
		{"trusted, configured lists", `cors: {allow_methods: [GET, POST], allow_headers: [x-example-csrf], expose_headers: [x-total-count, etag], max_age: 600}`,
			[][2]string{trusted(), header("Access-Control-Request-Headers", "x-something-else")},
			map[string]string{
				"Access-Control-Allow-Origin":   trustedOrigin,
				"Access-Control-Allow-Methods":  "GET, POST",
				"Access-Control-Allow-Headers":  "x-example-csrf",
				"Access-Control-Expose-Headers": "x-total-count, etag",
				"Access-Control-Max-Age":        "600",
			}},
		{"untrusted", "", [][2]string{origin("https://evil.example"), header("Access-Control-Request-Headers", "x-example-csrf")},
			map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": "", "Access-Control-Allow-Credentials": "", "Vary": "Origin"}},
		{"no Origin", "", nil, map[string]string{"Access-Control-Allow-Origin": "", "Vary": "Origin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startProxy(t, tt.extra)
			resp := h.do(request{method: "OPTIONS", path: "/api/things", headers: tt.hdrs})
			if resp.status != http.StatusNoContent || resp.body != "" {
				t.Fatalf("status %d body %q, want 204 and no body", resp.status, resp.body)
			}
			for k, v := range tt.want {
				if got := resp.header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if r, _ := h.up.Received(); r != nil {
				t.Error("a preflight reached the API")
			}
		})
	}
	t.Run("CORS off: OPTIONS goes to the API untouched", func(t *testing.T) {
		h := startProxy(t, "cors: {enabled: false}")
		resp := h.do(request{method: "OPTIONS", path: "/api/things", headers: [][2]string{trusted(), header("Access-Control-Request-Method", "PUT")}})
		r, _ := h.up.Received()
		if resp.status != 200 || resp.header.Get("Access-Control-Allow-Origin") != "" || r == nil || r.Method != "OPTIONS" || r.Header.Get("Authorization") != "" {
			t.Fatalf("status %d, ACAO %q, API saw %v; want the preflight forwarded without a token", resp.status, resp.header.Get("Access-Control-Allow-Origin"), r)
		}
		resp = h.do(request{method: "OPTIONS", path: "/api/things", headers: [][2]string{cookie("a=1; " + at(h))}})
		if r, _ := h.up.Received(); resp.status != 200 || r == nil || r.Method != "OPTIONS" || r.Header.Get("Cookie") != "a=1" {
			t.Fatalf("status %d, want OPTIONS forwarded, the token-handler cookies removed", resp.status)
		}
	})
}

func TestForwarding(t *testing.T) {
	h := startProxy(t, "cors: {expose_headers: [x-upstream]}")
	auth := [][2]string{trusted(), cookie(at(h))}

	t.Run("hop-by-hop headers removed, X-Forwarded set, request id passed on", func(t *testing.T) {
		resp := h.do(request{method: "GET", path: "/api/things?q=1&r=%2F", headers: append(auth,
			header("Connection", "X-Hop"), header("X-Hop", "1"), header("Keep-Alive", "timeout=5"), header("TE", "trailers"),
			header("Proxy-Authorization", "Basic eDp5"), header("Upgrade", "websocket"), header("X-Request-Id", "req-42"),
			header("X-Forwarded-For", "203.0.113.7"), header("Host", "api.example.localhost"))})
		r, _ := h.up.Received()
		if resp.status != 200 || r == nil {
			t.Fatalf("status %d", resp.status)
		}
		for _, hop := range []string{"X-Hop", "Keep-Alive", "Te", "Proxy-Authorization", "Upgrade"} {
			if v := r.Header.Get(hop); v != "" {
				t.Errorf("%s reached the API: %q", hop, v)
			}
		}
		if c := r.Header.Get("Connection"); strings.Contains(c, "X-Hop") {
			t.Errorf("Connection reached the API: %q", c)
		}
		for k, want := range map[string]string{
			"X-Forwarded-For":   "203.0.113.7, 127.0.0.1",
			"X-Forwarded-Proto": "http",
			"X-Forwarded-Host":  "api.example.localhost",
			"X-Request-Id":      "req-42",
		} {
			if got := r.Header.Get(k); got != want {
				t.Errorf("the API received %s %q, want %q", k, got, want)
			}
		}
		if r.Host != "api.example.localhost" || r.URL.RequestURI() != "/api/things?q=1&r=%2F" {
			t.Errorf("the API received Host %q and URI %q", r.Host, r.URL.RequestURI())
		}
		if resp.header.Get("X-Request-Id") != "req-42" || resp.header.Get("X-Upstream") != "yes" || resp.header.Get("Access-Control-Expose-Headers") != "x-upstream" {
			t.Errorf("response headers %v", resp.header)
		}
		if resp.body != `{"path":"/api/things"}` {
			t.Errorf("body %q", resp.body)
		}
	})

	t.Run("the API's own CORS headers do not reach the browser", func(t *testing.T) {
		h.up.handle("/api/cors", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Access-Control-Allow-Origin", "*")
			w.Header().Set("Access-Control-Allow-Methods", "DELETE")
		})
		resp := h.do(request{method: "GET", path: "/api/cors", headers: auth})
		if resp.header.Get("Access-Control-Allow-Origin") != trustedOrigin || resp.header.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("CORS headers %v", resp.header)
		}
	})

	t.Run("a forged request id is replaced", func(t *testing.T) {
		resp := h.do(request{method: "GET", path: "/api/things", headers: append(auth, header("X-Request-Id", "bad id\twith spaces"))})
		r, _ := h.up.Received()
		if id := resp.header.Get("X-Request-Id"); id == "" || strings.Contains(id, " ") || r.Header.Get("X-Request-Id") != id {
			t.Errorf("request id %q, API saw %q", id, r.Header.Get("X-Request-Id"))
		}
	})

	t.Run("longest prefix wins and strip_prefix", func(t *testing.T) {
		h.do(request{method: "GET", path: "/api/v2/users/7", headers: auth})
		r, _ := h.up.Received()
		if r == nil || r.URL.Path != "/users/7" {
			t.Fatalf("the API received %v, want /users/7", r)
		}
	})

	t.Run("unknown route", func(t *testing.T) {
		resp := h.do(request{method: "GET", path: "/other", headers: auth})
		if resp.status != 404 || resp.body != `{"code":"not_found","message":"No API route matches this path"}` || resp.header.Get("Access-Control-Allow-Origin") != trustedOrigin {
			t.Fatalf("status %d body %q", resp.status, resp.body)
		}
	})

	t.Run("dot segments cannot escape the route", func(t *testing.T) {
		resp := h.do(request{method: "GET", path: "/api/../admin", headers: auth})
		if resp.status != 404 {
			t.Fatalf("status %d, want 404 for /admin", resp.status)
		}
	})

	t.Run("body over the limit", func(t *testing.T) {
		hl := startProxy(t, "limits: {max_body_bytes: 1000}")
		body := strings.Repeat("x", 1001)
		resp := hl.do(request{method: "POST", path: "/api/upload", body: strings.NewReader(body), length: int64(len(body)),
			headers: append(csrfPair(hl), trusted(), cookie(at(hl)))})
		if resp.status != 413 || !strings.Contains(resp.body, `"code":"request_too_large"`) {
			t.Fatalf("status %d body %q", resp.status, resp.body)
		}
	})

	t.Run("headers over the limit", func(t *testing.T) {
		resp := h.do(request{method: "GET", path: "/api/things", headers: append(auth, header("X-Big", strings.Repeat("b", 17000)))})
		if resp.status != 431 || !strings.Contains(resp.body, `"code":"request_headers_too_large"`) {
			t.Fatalf("status %d body %q", resp.status, resp.body)
		}
	})

	t.Run("a 12 KiB cookie fits the default header buffer", func(t *testing.T) {
		big := strings.Repeat("a", 9000)
		resp := h.do(request{method: "GET", path: "/api/things", headers: [][2]string{trusted(), cookie(h.chunked("example-at", session.AccessToken, 3, big))}})
		r, _ := h.up.Received()
		if resp.status != 200 || r.Header.Get("Authorization") != "Bearer "+big {
			t.Fatalf("status %d", resp.status)
		}
	})
}

func TestUpstreamFailures(t *testing.T) {
	h := startProxy(t, "")
	auth := [][2]string{trusted(), cookie(at(h))}
	h.up.handle("/api/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	h.up.handle("/api/reset", func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	})

	resp := h.do(request{method: "GET", path: "/api/slow", headers: auth})
	if resp.status != 504 || resp.body != `{"code":"upstream_timeout","message":"The API did not answer in time"}` || resp.header.Get("Access-Control-Allow-Origin") != trustedOrigin {
		t.Errorf("slow upstream: %d %q %v", resp.status, resp.body, resp.header)
	}
	resp = h.do(request{method: "GET", path: "/api/reset", headers: auth})
	if resp.status != 502 || resp.body != `{"code":"upstream_unavailable","message":"The API could not be reached"}` {
		t.Errorf("reset by upstream: %d %q", resp.status, resp.body)
	}
	h.up.srv.Close()
	resp = h.do(request{method: "GET", path: "/api/things", headers: auth})
	if resp.status != 502 || resp.header.Get("Access-Control-Allow-Origin") != trustedOrigin || resp.header.Get("X-Request-Id") == "" {
		t.Errorf("upstream down: %d %q %v", resp.status, resp.body, resp.header)
	}
}

// TestStreaming moves 10 MiB each way and proves neither direction is
// buffered whole: the far side holds back the second half until the near
// side has seen the first, which deadlocks (and times out) if the proxy
// waits for the whole body.
func TestStreaming(t *testing.T) {
	const size, half = 10 << 20, 5 << 20
	h := startProxy(t, "timeouts: {upstream: 5s}")
	auth := [][2]string{trusted(), cookie(at(h))}

	t.Run("download", func(t *testing.T) {
		firstHalfSeen := make(chan struct{})
		h.up.handle("/api/download", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(size))
			w.Write(bytes.Repeat([]byte{'d'}, half))
			w.(http.Flusher).Flush()
			select {
			case <-firstHalfSeen:
			case <-time.After(5 * time.Second):
				return // the test fails on a short body
			}
			w.Write(bytes.Repeat([]byte{'d'}, size-half))
		})
		req, _ := http.NewRequest("GET", h.url+"/api/download", nil)
		for _, kv := range auth {
			req.Header.Add(kv[0], kv[1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if _, err := io.CopyN(io.Discard, resp.Body, half); err != nil {
			t.Fatalf("first half: %v", err)
		}
		close(firstHalfSeen)
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || n != size-half {
			t.Fatalf("second half: %d bytes, %v", n, err)
		}
	})

	t.Run("upload", func(t *testing.T) {
		firstHalfSeen := make(chan struct{})
		sums := make(chan [32]byte, 1)
		h.up.handle("/api/upload", func(w http.ResponseWriter, r *http.Request) {
			sum := sha256.New()
			if _, err := io.CopyN(sum, r.Body, half); err != nil {
				w.WriteHeader(500)
				return
			}
			close(firstHalfSeen)
			io.Copy(sum, r.Body)
			sums <- [32]byte(sum.Sum(nil))
			w.WriteHeader(201)
		})
		body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		pr, pw := io.Pipe()
		go func() {
			pw.Write(body[:half])
			select {
			case <-firstHalfSeen:
				pw.Write(body[half:])
				pw.Close()
			case <-time.After(5 * time.Second):
				pw.CloseWithError(fmt.Errorf("the upstream did not see the first half: the proxy buffers uploads"))
			}
		}()
		req, _ := http.NewRequest("POST", h.url+"/api/upload", pr)
		req.ContentLength = size
		for _, kv := range append(csrfPair(h), auth...) {
			req.Header.Add(kv[0], kv[1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if got := <-sums; got != sha256.Sum256(body) {
			t.Fatal("the upstream received different bytes")
		}
	})
}

// TestHTTP10AndClose: a client that asks to close gets its connection
// closed, and the proxy stays usable.
func TestConnectionClose(t *testing.T) {
	h := startProxy(t, "")
	conn, err := net.Dial("tcp", h.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/things HTTP/1.1\r\nHost: api\r\nOrigin: %s\r\nCookie: %s\r\nConnection: close\r\n\r\n", trustedOrigin, at(h))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("status %d, close %v", resp.StatusCode, resp.Close)
	}
}
