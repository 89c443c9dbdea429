package agent

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// TestHostileClients sends malformed, oversized and cross-origin requests to
// the agent's real server (NewServer: its buffer sizes, limits and error
// handler) over raw TCP, and checks the status, the JSON code and that the
// Authorization Server was not called. Requests that could reach the AS
// carry a valid session, so that only the check under test stops them.
func TestHostileClients(t *testing.T) {
	a := startAgent(t, nil)
	as := a.as
	b := a.spa()
	a.login(b)
	session := fmt.Sprintf("Cookie: example-at=%s; example-csrf=%s\r\nCookie: example-auth=%s\r\nx-example-csrf: %s\r\n",
		b.Cookie("example-at").Value, b.Cookie("example-csrf").Value, b.Cookie("example-auth").Value, b.CSRF)

	cfg := testConfig(as)
	cfg.Listen = "127.0.0.1:0"
	cfg.Timeouts.Read = 500 * time.Millisecond
	cfg.Keys = a.cfg.Keys // the session's cookies open here too
	srv, err := NewServer(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	bintest.Serve(t, srv.Serve, srv.Shutdown)
	bintest.Eventually(t, 5*time.Second, "the agent to become ready", srv.Agent.Ready)
	post := func(path, headers string) string {
		return "POST /oauth-agent" + path + " HTTP/1.1\r\nHost: api\r\n" + headers + "Content-Length: 0\r\n\r\n"
	}
	trustedRefresh := func(origin string) string { return post("/refresh", "Origin: "+origin+"\r\n"+session) }
	tests := []struct {
		name   string
		raw    string
		status int
		code   string
	}{
		{"64 KiB cookie", post("/refresh", "Origin: "+spaOrigin+"\r\n"+session+"Cookie: big="+strings.Repeat("a", 64<<10)+"\r\n"), 431, "invalid_request"},
		{"headers over the buffer", post("/refresh", "Origin: "+spaOrigin+"\r\n"+session+strings.Repeat("X-Filler: "+strings.Repeat("f", 100)+"\r\n", 170)), 431, "invalid_request"},
		{"two different Content-Length", "POST /oauth-agent/refresh HTTP/1.1\r\nHost: api\r\nOrigin: " + spaOrigin + "\r\n" + session + "Content-Length: 0\r\nContent-Length: 2\r\n\r\n{}", 400, "invalid_request"},
		{"Transfer-Encoding: chunked, identity", "POST /oauth-agent/refresh HTTP/1.1\r\nHost: api\r\nOrigin: " + spaOrigin + "\r\n" + session + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400, "invalid_request"},
		{"CR in a cookie value", post("/refresh", "Origin: "+spaOrigin+"\r\nCookie: a=b\rexample-auth=x\r\n"), 400, "invalid_request"},
		{"invalid UTF-8 in the refresh cookie", post("/refresh", "Origin: "+spaOrigin+"\r\nCookie: example-auth=\xff\xfe"+b.Cookie("example-auth").Value+"; example-csrf="+b.Cookie("example-csrf").Value+"\r\nx-example-csrf: "+b.CSRF+"\r\n"), 401, "unauthorized_request"},
		{"invalid UTF-8 in the CSRF header", post("/refresh", "Origin: "+spaOrigin+"\r\n"+strings.Replace(session, "x-example-csrf: ", "x-example-csrf: \xff", 1)), 401, "unauthorized_request"},
		{"Origin: null", trustedRefresh("null"), 401, "unauthorized_request"},
		{"no Origin", post("/refresh", session), 401, "unauthorized_request"},
		{"Origin in upper case", trustedRefresh(strings.ToUpper(spaOrigin)), 401, "unauthorized_request"},
		{"Origin with another port", trustedRefresh("http://www.example.localhost:3001"), 401, "unauthorized_request"},
		{"Origin without its port", trustedRefresh("http://www.example.localhost"), 401, "unauthorized_request"},
		{"Origin with https", trustedRefresh("https://www.example.localhost:3000"), 401, "unauthorized_request"},
		{"Origin with a trailing slash", trustedRefresh(spaOrigin + "/"), 401, "unauthorized_request"},
		{"Origin as a suffix", trustedRefresh("http://evil" + strings.TrimPrefix(spaOrigin, "http://")), 401, "unauthorized_request"},
		{"Sec-Fetch-Site: cross-site", post("/refresh", "Origin: "+spaOrigin+"\r\nSec-Fetch-Site: cross-site\r\n"+session), 401, "unauthorized_request"},
		{"login/end with Origin: null", post("/login/end", "Origin: null\r\n"), 401, "unauthorized_request"},
		{"encoded dot segments", post("/%2e%2e/oauth-agent/refresh", "Origin: "+spaOrigin+"\r\n"+session), 404, "not_found"},
		{"encoded slash", "POST /oauth-agent%2frefresh HTTP/1.1\r\nHost: api\r\nOrigin: " + spaOrigin + "\r\n" + session + "Content-Length: 0\r\n\r\n", 404, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := as.Count("token:refresh_token")
			status, body, err := sendRaw(srv.Addr().String(), tc.raw)
			var got struct{ Code string }
			json.Unmarshal([]byte(body), &got)
			if err != nil || status != tc.status || got.Code != tc.code {
				t.Errorf("status %d body %.100q (%v), want %d %s", status, body, err, tc.status, tc.code)
			}
			if n := as.Count("token:refresh_token") - before; n != 0 {
				t.Errorf("the AS received %d refresh grants", n)
			}
		})
	}
	// The valid request, for contrast: it does reach the AS.
	if status, body, _ := sendRaw(srv.Addr().String(), trustedRefresh(spaOrigin)); status != 204 {
		t.Errorf("the valid refresh: %d %s", status, body)
	}

	t.Run("slowloris", func(t *testing.T) {
		start := time.Now()
		conn, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		closed := make(chan time.Duration, 1)
		go func() { io.Copy(io.Discard, conn); closed <- time.Since(start) }()
		req := trustedRefresh(spaOrigin)
		for i := 0; i < len(req); i++ {
			select {
			case d := <-closed:
				if d < cfg.Timeouts.Read*8/10 || d > cfg.Timeouts.Read+time.Second {
					t.Errorf("the connection closed after %v, want about timeouts.read (%v)", d, cfg.Timeouts.Read)
				}
				return
			case <-time.After(20 * time.Millisecond):
			}
			conn.Write([]byte{req[i]})
		}
		t.Fatal("the agent read the whole slow request without closing")
	})
}

// sendRaw writes raw on a new connection to addr and reads one answer.
func sendRaw(addr, raw string) (int, string, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
