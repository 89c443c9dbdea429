package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// roundTrip checks that ln accepts a connection dialled at network, addr.
func roundTrip(t *testing.T, ln net.Listener, network, addr string) {
	t.Helper()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.Close()
	if err := <-accepted; err != nil {
		t.Fatalf("accept: %v", err)
	}
}

func TestListenTCP(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ln.Addr().Network() != "tcp" {
		t.Fatalf("network %q, want tcp", ln.Addr().Network())
	}
	roundTrip(t, ln, "tcp", ln.Addr().String())
}

func TestListenUnix(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, sock string)
		wantErr string // "" when Listen must succeed
		check   func(t *testing.T, sock string)
	}{
		{name: "no file yet", setup: func(*testing.T, string) {}},
		{
			name:  "stale socket is replaced",
			setup: func(t *testing.T, sock string) { bintest.StaleSocket(t, sock) },
		},
		{
			name: "regular file",
			setup: func(t *testing.T, sock string) {
				if err := os.WriteFile(sock, []byte("not a socket"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "exists and is not a socket",
			check: func(t *testing.T, sock string) {
				if b, err := os.ReadFile(sock); err != nil || string(b) != "not a socket" {
					t.Errorf("the regular file was changed: %q, %v", b, err)
				}
			},
		},
		{
			name: "socket in use",
			setup: func(t *testing.T, sock string) {
				ln, err := net.Listen("unix", sock)
				if err != nil {
					t.Fatal(err)
				}
				bintest.Accept(t, ln, func(c net.Conn) { c.Close() })
			},
			wantErr: "is in use by another process",
			check: func(t *testing.T, sock string) {
				c, err := net.Dial("unix", sock)
				if err != nil {
					t.Errorf("the running listener's socket was taken away: %v", err)
					return
				}
				c.Close()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(bintest.SocketDir(t), "d.sock")
			tt.setup(t, sock)
			ln, err := Listen("unix:" + sock)
			if tt.wantErr != "" {
				if err == nil {
					ln.Close()
					t.Fatalf("Listen succeeded, want an error containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), sock) {
					t.Errorf("error %q, want it to name %s and contain %q", err, sock, tt.wantErr)
				}
				tt.check(t, sock)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			bintest.WantSocket(t, sock, 0o660)
			roundTrip(t, ln, "unix", sock)

			// Closing leaves the file; RemoveSocket removes it.
			ln.Close()
			if _, err := os.Lstat(sock); err != nil {
				t.Errorf("the socket went with Close: %v", err)
			}
			RemoveSocket("unix:" + sock)
			if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("socket left behind after RemoveSocket: %v", err)
			}
		})
	}
}

func TestRemoveSocketIgnoresTCP(t *testing.T) {
	dir := t.TempDir()
	// A file named like the host part of a TCP address must survive.
	name := filepath.Join(dir, "127.0.0.1:0")
	if err := os.WriteFile(name, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	RemoveSocket("127.0.0.1:0")
	RemoveSocket("")
	if _, err := os.Stat(name); err != nil {
		t.Errorf("RemoveSocket of a TCP address removed a file: %v", err)
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(zerolog.WarnLevel, "json", &buf)
	log.Info().Msg("dropped")
	log.Warn().Str("k", "v").Msg("kept")
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1 (info is below warn):\n%s", len(lines), buf.String())
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &entry); err != nil {
		t.Fatalf("json format wrote a line that is not JSON: %v\n%s", err, lines[0])
	}
	if entry["level"] != "warn" || entry["message"] != "kept" || entry["k"] != "v" || entry["time"] == nil {
		t.Errorf("entry %v, want level warn, message kept, k v and a time", entry)
	}

	buf.Reset()
	console := NewLogger(zerolog.InfoLevel, "console", &buf)
	console.Info().Msg("hello console")
	out := buf.String()
	if !strings.Contains(out, "hello console") || json.Valid(bytes.TrimSpace(buf.Bytes())) {
		t.Errorf("console format wrote %q, want a human-readable line", out)
	}
}

// TestConsoleColour: the console format writes colour codes to a terminal
// only. A pipe, as under systemd, docker or `make run | tee`, gets none.
func TestConsoleColour(t *testing.T) {
	t.Setenv("NO_COLOR", "") // zerolog drops colour when it is set
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	log := NewLogger(zerolog.InfoLevel, "console", w)
	log.Warn().Str("reason", "origin").Msg("request denied")
	w.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("request denied")) || bytes.IndexByte(out, 0x1b) >= 0 {
		t.Errorf("console output to a pipe: %q, want the message and no ESC byte", out)
	}
	if isTerminal(w) || isTerminal(&bytes.Buffer{}) {
		t.Error("a pipe or a buffer is taken for a terminal")
	}
	// A character device is what a terminal is: /dev/null stands in for
	// one here.
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if !isTerminal(null) {
		t.Errorf("%s, a character device, is not taken for a terminal", os.DevNull)
	}
}

func TestFasthttpLogger(t *testing.T) {
	var buf bytes.Buffer
	var l fasthttp.Logger = FasthttpLogger{Log: zerolog.New(&buf)}
	l.Printf("error when serving connection %q: %d", "1.2.3.4:5", 7)
	var entry map[string]any
	if err := json.Unmarshal(buf.Bytes(), &entry); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if entry["level"] != "warn" || entry["component"] != "fasthttp" || entry["message"] != `error when serving connection "1.2.3.4:5": 7` {
		t.Errorf("entry %v, want a warn line from component fasthttp with the formatted message", entry)
	}
}

func TestOpsHandler(t *testing.T) {
	reg := metrics.NewSet()
	reg.NewCounter(`test_requests_total{status="200"}`).Add(3)
	var ready atomic.Bool
	h := OpsHandler(reg, ready.Load, nil)

	get := func(path string) *fasthttp.RequestCtx {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(path)
		h(&ctx)
		return &ctx
	}
	tests := []struct {
		name       string
		path       string
		ready      bool
		wantCode   int
		wantType   string
		wantBody   string // exact, unless wantInBody is set
		wantInBody string
	}{
		{name: "healthz", path: "/healthz", wantCode: 200, wantType: "application/json", wantBody: `{"status":"ok"}`},
		{name: "readyz while not ready", path: "/readyz", wantCode: 503, wantType: "application/json", wantBody: `{"status":"not ready"}`},
		{name: "readyz when ready", path: "/readyz", ready: true, wantCode: 200, wantType: "application/json", wantBody: `{"status":"ready"}`},
		{name: "healthz does not depend on readiness", path: "/healthz", ready: false, wantCode: 200, wantType: "application/json", wantBody: `{"status":"ok"}`},
		{name: "metrics", path: "/metrics", wantCode: 200, wantType: "text/plain; version=0.0.4; charset=utf-8", wantInBody: "test_requests_total{status=\"200\"} 3\n"},
		{name: "metrics has the Go runtime's series", path: "/metrics", wantCode: 200, wantType: "text/plain; version=0.0.4; charset=utf-8", wantInBody: "\ngo_goroutines "},
		{name: "metrics has the process's series", path: "/metrics", wantCode: 200, wantType: "text/plain; version=0.0.4; charset=utf-8", wantInBody: "\nprocess_resident_memory_bytes "},
		{name: "metrics with a query", path: "/metrics?x=1", wantCode: 200, wantType: "text/plain; version=0.0.4; charset=utf-8", wantInBody: "# TYPE test_requests_total counter\n"},
		{name: "unknown path", path: "/", wantCode: 404},
		{name: "unknown path below metrics", path: "/metrics/x", wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready.Store(tt.ready)
			ctx := get(tt.path)
			if code := ctx.Response.StatusCode(); code != tt.wantCode {
				t.Errorf("status %d, want %d", code, tt.wantCode)
			}
			if cc := string(ctx.Response.Header.Peek("Cache-Control")); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			if tt.wantType != "" {
				if ct := string(ctx.Response.Header.ContentType()); ct != tt.wantType {
					t.Errorf("Content-Type %q, want %q", ct, tt.wantType)
				}
			}
			body := string(ctx.Response.Body())
			switch {
			case tt.wantInBody != "" && !strings.Contains(body, tt.wantInBody):
				t.Errorf("body %q, want it to contain %q", body, tt.wantInBody)
			case tt.wantInBody == "" && tt.wantBody != "" && body != tt.wantBody:
				t.Errorf("body %q, want %q", body, tt.wantBody)
			}
		})
	}
}
