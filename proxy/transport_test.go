package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// rawUpstream answers every request on a connection with the bytes answer
// returns for it, counting connections; it speaks just enough HTTP/1.1.
type rawUpstream struct {
	ln    net.Listener
	conns atomic.Int32
}

func newRawUpstream(t *testing.T, answer func(method, path string) (resp string, closeAfter bool)) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln}
	bintest.Accept(t, ln, func(c net.Conn) {
		u.conns.Add(1)
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			resp, closeAfter := answer(req.Method, req.URL.Path)
			if _, err := io.WriteString(c, resp); err != nil || closeAfter {
				return
			}
		}
	})
	return u
}

func TestTransport(t *testing.T) {
	big := strings.Repeat("z", 100_000)
	chunks := fmt.Sprintf("%x\r\n%s\r\n%x;ext=1\r\n%s\r\n0\r\nX-Trailer: t\r\n\r\n", 70_000, big[:70_000], 30_000, big[70_000:])
	up := newRawUpstream(t, func(method, path string) (string, bool) {
		switch path {
		case "/api/small-chunked":
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n", false
		case "/api/big-chunked":
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks, false
		case "/api/big-length":
			return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(big), big), false
		case "/api/until-close":
			return "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", true
		case "/api/no-content":
			return "HTTP/1.1 204 No Content\r\n\r\n", false
		case "/api/continue":
			return "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", false
		case "/api/head":
			return "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", false
		case "/api/bad-chunk":
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbroken", true
		case "/api/truncated":
			return "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nshort", true
		}
		return "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false
	})
	h := startProxyTo(t, nil, up.ln.Addr().String(), "")
	auth := [][2]string{trusted(), cookie(at(h))}

	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/api/small-chunked", 200, `{"a":1}`},
		{"GET", "/api/big-chunked", 200, big},
		{"GET", "/api/big-length", 200, big},
		{"GET", "/api/until-close", 200, "until the end"},
		{"GET", "/api/no-content", 204, ""},
		{"GET", "/api/continue", 201, "ok"},
		{"HEAD", "/api/head", 200, ""},
		{"GET", "/api/small-chunked", 200, `{"a":1}`},
	} {
		resp := h.do(request{method: tc.method, path: tc.path, headers: auth})
		if resp.status != tc.status || resp.body != tc.body {
			t.Errorf("%s %s: %d, %d bytes; want %d, %d bytes", tc.method, tc.path, resp.status, len(resp.body), tc.status, len(tc.body))
		}
	}
	// Keep-alive: the answers read to their end left their connection for
	// the next request; only "until-close" cost a new one.
	if n := up.conns.Load(); n != 2 {
		t.Errorf("the upstream saw %d connections, want 2", n)
	}

	// A broken body aborts the answer: the client sees an error, not a
	// silently short 200.
	for _, path := range []string{"/api/bad-chunk", "/api/truncated"} {
		req, _ := http.NewRequest("GET", h.url+path, nil)
		for _, kv := range auth {
			req.Header.Add(kv[0], kv[1])
		}
		resp, err := client.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Errorf("%s: the client got a complete answer from a broken upstream body", path)
		}
	}
	if resp := h.do(request{method: "GET", path: "/api/small-chunked", headers: auth}); resp.status != 200 {
		t.Errorf("after broken answers: %d", resp.status)
	}
}
