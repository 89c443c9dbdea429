package agent

import (
	"bufio"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/daemon"
)

// TestDenialLogged: at info, a refused request is one line with its
// endpoint, code, reason, method, path without the query, request ID and
// client address, and none of the session's cookie values, CSRF token or
// tokens.
func TestDenialLogged(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.Log.Level = zerolog.InfoLevel })
	b := a.spa()
	a.login(b)
	var secrets []string
	for _, c := range b.Cookies {
		secrets = append(secrets, c.Value[:20])
	}
	secrets = append(secrets, b.CSRF, a.open(b, "example-at"))
	evil := b.Clone()
	evil.Origin = "https://evil.example"
	wrongCSRF := b.Clone()
	wrongCSRF.CSRF = "not-the-csrf-token-0123456789"
	for _, tc := range []struct {
		name                 string
		do                   func() int
		reason, code, method string
		path                 string
	}{
		{"origin", func() int {
			return a.call(evil, "GET", "/oauth-agent/userInfo?x=secret-query", nil, "X-Request-Id", "req-1").Status
		}, "origin", "unauthorized_request", "GET", "/oauth-agent/userInfo"},
		{"csrf", func() int {
			return a.call(wrongCSRF, "POST", "/oauth-agent/refresh", nil, "X-Request-Id", "req-1").Status
		},
			"csrf_header_mismatch", "unauthorized_request", "POST", "/oauth-agent/refresh"},
		{"no cookie", func() int {
			return a.call(a.spa(), "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": spaOrigin + "/?code=secret-code&state=s"}, "X-Request-Id", "req-1").Status
		}, "cookie_missing_or_invalid", "invalid_request", "POST", "/oauth-agent/login/end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mark := len(a.logs.String())
			status := tc.do()
			logs := a.logs.String()[mark:]
			lines := bintest.LogLines(t, logs, "request denied")
			if len(lines) != 1 {
				t.Fatalf("status %d: %d 'request denied' lines, want 1:\n%s", status, len(lines), logs)
			}
			want := map[string]any{"level": "info", "reason": tc.reason, "code": tc.code, "status": float64(status),
				"method": tc.method, "path": tc.path, "request_id": "req-1", "client": "127.0.0.1"}
			for k, v := range want {
				if lines[0][k] != v {
					t.Errorf("%s = %v, want %v (line %v)", k, lines[0][k], v, lines[0])
				}
			}
			for _, s := range append(secrets, "secret-query", "secret-code") {
				if strings.Contains(logs, s) {
					t.Errorf("the log holds %q:\n%s", s, logs)
				}
			}
		})
	}
	// A request ID that is not one is left out.
	mark := len(a.logs.String())
	a.call(evil, "GET", "/oauth-agent/userInfo", nil, "X-Request-Id", "<script>")
	if l := bintest.LogLines(t, a.logs.String()[mark:], "request denied"); len(l) != 1 || l[0]["request_id"] != "" {
		t.Errorf("a request ID of '<script>': %v, want one line with an empty request_id", l)
	}
}

// TestDenialBurst: 1,000 refusals of one reason within a second give
// daemon.DeniedLinesPerSecond (10) lines; the first of the next second is preceded
// by one saying 990 were suppressed.
func TestDenialBurst(t *testing.T) {
	var now atomic.Int64 // Unix seconds
	now.Store(1_700_000_000)
	a := startAgent(t, func(c *Config) {
		c.Log.Level = zerolog.InfoLevel
		c.Now = func() time.Time { return time.Unix(now.Load(), 0) }
	})
	serve := func() {
		var req fasthttp.Request
		raw := "GET /oauth-agent/userInfo HTTP/1.1\r\nHost: api\r\nOrigin: https://evil.example\r\n\r\n"
		if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			t.Fatal(err)
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(203, 0, 113, 5), Port: 4444}, nil)
		a.agent.Handler(&ctx)
		if ctx.Response.StatusCode() != 401 {
			t.Fatalf("status %d, want 401", ctx.Response.StatusCode())
		}
	}
	mark := len(a.logs.String())
	for range 1000 {
		serve()
	}
	logs := a.logs.String()[mark:]
	if n := len(bintest.LogLines(t, logs, "request denied")); n != daemon.DeniedLinesPerSecond || strings.Count(logs, "\n") != n {
		t.Fatalf("1,000 refusals in one second: %d denial lines, %d lines in all; want %d:\n%s", n, strings.Count(logs, "\n"), daemon.DeniedLinesPerSecond, logs)
	}
	now.Add(1)
	mark = len(a.logs.String())
	serve()
	logs = a.logs.String()[mark:]
	summary := bintest.LogLines(t, logs, "suppressed similar denials")
	if len(summary) != 1 || summary[0]["suppressed"] != 990.0 || summary[0]["reason"] != "origin" || len(bintest.LogLines(t, logs, "request denied")) != 1 {
		t.Fatalf("the next second: want a summary of 990 origin denials and one denial line:\n%s", logs)
	}
}

// TestKeyMismatchWarned: cookies sealed by an agent with other keys are
// refused with one warning per minute, however many requests carry them;
// a damaged cookie gives none.
func TestKeyMismatchWarned(t *testing.T) {
	first := startAgent(t, nil)
	b := first.spa()
	first.login(b)
	a := startAgentWith(t, first.as, func(c *Config) { c.Log.Level = zerolog.InfoLevel })
	if first.cfg.Keys.Len() != 1 || a.cfg.Keys == first.cfg.Keys {
		t.Fatal("the two agents share their keys")
	}
	damaged := b.Clone()
	for _, c := range damaged.Cookies {
		c.Value = c.Value[:40]
	}
	if st := a.call(damaged, "GET", "/oauth-agent/userInfo", nil).Status; st != 401 {
		t.Fatalf("damaged cookies: status %d, want 401", st)
	}
	if w := bintest.LogLines(t, a.logs.String(), daemon.KeyMismatchMessage); len(w) != 0 {
		t.Fatalf("damaged cookies gave a key-mismatch warning:\n%s", a.logs.String())
	}
	for range 20 {
		if st := a.call(b, "GET", "/oauth-agent/userInfo", nil).Status; st != 401 {
			t.Fatalf("cookies of another key: status %d, want 401", st)
		}
	}
	w := bintest.LogLines(t, a.logs.String(), daemon.KeyMismatchMessage)
	if len(w) != 1 || w[0]["level"] != "warn" || !strings.HasPrefix(w[0]["cookie"].(string), "example-") || w[0]["keys"] != 1.0 {
		t.Fatalf("20 requests with cookies of another key: %v, want one warn line naming the cookie:\n%s", w, a.logs.String())
	}
	for _, c := range b.Cookies {
		if strings.Contains(a.logs.String(), c.Value[:20]) {
			t.Errorf("the log holds cookie %s", c.Name)
		}
	}
}
