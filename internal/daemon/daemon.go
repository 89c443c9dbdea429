// Package daemon is the server plumbing the oauth-proxy and oauth-agent
// binaries share: their command line and signal handling ([Main]), opening
// their listeners (TCP or Unix socket), their zerolog loggers, and the
// operations endpoints /metrics, /healthz and /readyz (contract §7).
package daemon

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// Listen opens addr: "host:port" as TCP, or "unix:/path" as a Unix socket
// with mode 0660. A stale socket left by a previous run is removed first; a
// path that is not a socket, or a socket another process still answers on,
// is refused and left alone.
//
// Listen changes the process umask for the moment it creates the socket, so
// call it at start-up, before other goroutines create files. The socket file
// stays when the listener closes: remove it with [RemoveSocket].
func Listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s is in use by another process", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	// Create the socket with mode 0660 from the start (no window in which
	// the process umask leaves it open to others). Umask is process-wide;
	// this runs at start-up, before anything else creates files.
	old := syscall.Umask(0o117)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	// The file goes with RemoveSocket once the server has stopped, not
	// when the listener closes.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// listenReusePort is [Listen], with SO_REUSEPORT on a TCP socket.
func listenReusePort(addr string) (net.Listener, error) {
	if strings.HasPrefix(addr, "unix:") {
		return Listen(addr)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) }); cerr != nil {
			return cerr
		}
		return err
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}

// RemoveSocket removes the socket file of a "unix:/path" address; it does
// nothing for any other address.
func RemoveSocket(addr string) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		os.Remove(path)
	}
}

// NewLogger returns a logger writing to w at level and above, with a
// timestamp on every line: JSON lines when format is "json", human-readable
// lines when it is "console" (the two values configuration accepts). Console
// lines are coloured only when w is a terminal: a pipe, a file or journald
// gets no escape codes (and neither does a terminal when NO_COLOR is set).
func NewLogger(level zerolog.Level, format string, w io.Writer) zerolog.Logger {
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, NoColor: !isTerminal(w)}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// isTerminal reports whether w is a character device, as a terminal is;
// anything that is not an *os.File (a buffer, a pipe wrapper) is not.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// FasthttpLogger sends fasthttp's own messages (fasthttp.Server.Logger) to
// Log at warn level, marked component=fasthttp. Set
// fasthttp.Server.SecureErrorLogMessage too: without it fasthttp quotes
// request bytes, cookies included.
//
// A FasthttpLogger may be copied and is safe for concurrent use.
type FasthttpLogger struct {
	Log zerolog.Logger
}

// Printf implements fasthttp.Logger. Even with SecureErrorLogMessage,
// fasthttp quotes a malformed header line in its message ("missing colon:
// \"Cookie a=<value>\""), so every quoted string but a network address is
// replaced by "[redacted]": a cookie or token must not reach the log.
func (l FasthttpLogger) Printf(format string, args ...any) {
	l.Log.Warn().Str("component", "fasthttp").Msg(redactQuoted(fmt.Sprintf(format, args...)))
}

// quoted matches a Go-quoted string as %q writes it.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// redactQuoted replaces the quoted strings of msg that are not host:port
// addresses with "[redacted]".
func redactQuoted(msg string) string {
	return quoted.ReplaceAllStringFunc(msg, func(q string) string {
		if s, err := strconv.Unquote(q); err == nil {
			if host, _, err := net.SplitHostPort(s); err == nil && net.ParseIP(host) != nil {
				return q
			}
		}
		return `"[redacted]"`
	})
}

// LatencyBuckets are the upper bounds, in seconds, of both daemons' latency
// histograms: from 100 µs (the proxy's own work) to 10 s (a slow upstream).
var LatencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// LabelValue escapes a label value for the text format, where it is quoted.
var LabelValue = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// AppLabel is the label that puts a series in application app (issue #15),
// with the comma that separates it from the next, for both daemons' series:
// "" for the application without a name (a file without apps), whose series
// keep the labels they had before.
func AppLabel(app string) string {
	if app == "" {
		return ""
	}
	return `app="` + LabelValue.Replace(app) + `",`
}

// Gauge registers on set the gauge name that reads f, replacing one of the
// same name: a Set handed to a second proxy.New or agent.New (a restart in
// a test, a replacement) reports the latest one's state instead of
// panicking as [metrics.Set.NewGauge] would. Counters and histograms are
// shared the same way with the Set's GetOrCreate calls.
func Gauge(set *metrics.Set, name string, f func() float64) {
	set.UnregisterMetric(name)
	set.NewGauge(name, f)
}

func init() {
	// The page carries a TYPE line per family, which Prometheus reads to
	// tell counters and histograms apart. The switch is process-wide; the
	// library writes HELP lines without text.
	metrics.ExposeMetadata(true)
}

// AppStatus is whether one application (issue #15) is ready. It may be
// copied.
type AppStatus struct {
	Name  string
	Ready bool
}

// OpsHandler serves the operations endpoints of a metrics listener:
//
//   - /metrics: reg, then the go_* and process_* series of
//     [metrics.WriteProcessMetrics] and [metrics.WriteFDMetrics], in the
//     Prometheus text format (version 0.0.4);
//   - /healthz: 200 {"status":"ok"} while the process runs (liveness);
//   - /readyz: 200 {"status":"ready"} when ready returns true, else 503
//     {"status":"not ready"} (starting, or draining after SIGTERM);
//   - anything else: 404.
//
// Every answer carries Cache-Control: no-store. ready is called once per
// /readyz request, from any goroutine.
//
// apps, unless nil, lists the applications, as a [Server] with
// ServerConfig.Apps does (an empty list, or a nil apps: none, and /readyz
// as above): the body of /readyz lists each,
// {"status":"ready","apps":{"admin":"not_ready","shop":"ready"}}, and
// /readyz?app=NAME answers for the application NAME alone: 200
// {"app":NAME,"status":"ready"}, 503 with "not ready", or 404
// {"status":"unknown application"}. ready decides the status of /readyz
// itself; each AppStatus already includes the server not draining.
func OpsHandler(reg *metrics.Set, ready func() bool, apps func() []AppStatus) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
		switch string(ctx.Path()) {
		case "/metrics":
			ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
			reg.WritePrometheus(ctx)
			metrics.WriteProcessMetrics(ctx)
			metrics.WriteFDMetrics(ctx) // process_open_fds, process_max_fds
		case "/healthz":
			ctx.SetContentType("application/json")
			ctx.SetBodyString(`{"status":"ok"}`)
		case "/readyz":
			ctx.SetContentType("application/json")
			var list []AppStatus
			if apps != nil {
				list = apps()
			}
			if len(list) == 0 {
				if ready() {
					ctx.SetBodyString(`{"status":"ready"}`)
				} else {
					ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
					ctx.SetBodyString(`{"status":"not ready"}`)
				}
				return
			}
			readyzApps(ctx, ready(), list)
		default:
			ctx.SetStatusCode(fasthttp.StatusNotFound)
		}
	}
}

// readyzApps answers /readyz for a configuration with applications. Names
// are [a-z0-9-] (settings.CheckAppName) and need no JSON escaping; the
// query's app is only compared, never echoed.
func readyzApps(ctx *fasthttp.RequestCtx, ready bool, list []AppStatus) {
	word := func(ok bool) string {
		if ok {
			return "ready"
		}
		return "not_ready"
	}
	if q := ctx.QueryArgs(); q.Has("app") {
		name := string(q.Peek("app"))
		for _, app := range list {
			if app.Name == name {
				status := "ready"
				if !app.Ready {
					ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
					status = "not ready"
				}
				ctx.SetBodyString(`{"app":"` + app.Name + `","status":"` + status + `"}`)
				return
			}
		}
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetBodyString(`{"status":"unknown application"}`)
		return
	}
	var b strings.Builder
	b.WriteString(`{"status":"`)
	if ready {
		b.WriteString(`ready","apps":{`)
	} else {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		b.WriteString(`not ready","apps":{`)
	}
	for i, app := range list {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + app.Name + `":"` + word(app.Ready) + `"`)
	}
	b.WriteString("}}")
	ctx.SetBodyString(b.String())
}
