// Package bintest runs a command's real binary in its black-box tests: it
// builds the binary once per test process (with the race detector when the
// tests run with it), runs it to completion or starts it in the background
// (as Exec starts any program: redis-server, node), signals it, waits for it
// and reads its stderr, and checks tables of command lines (Case). It also
// holds what those tests and the others share around a running server: one
// polling loop (Within, Eventually), servers and listeners for the test's
// lifetime (Serve, Accept), HTTP calls (Get, Do, NewRequest with headers in
// order, Raw bytes on a connection), free ports, sockets, locked buffers,
// log lines, and heap growth per request. Only tests, the other test
// support packages and internal/harness (for PickPorts and Buffer) import
// it.
package bintest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary is the command in the test's working directory, the package under
// test, built on first use. Declare one per test package; a Binary must not
// be copied, and is safe for concurrent use.
type Binary struct {
	// Name names the binary file and the command in messages.
	Name string
	// Unset lists environment variables the binary does not inherit from
	// the test, such as ones that would clash with what the test's
	// configuration files give.
	Unset []string

	once      sync.Once
	dir, path string
	err       error
}

// Path returns the built binary's path, building it on first use; a build
// that fails fails t.
func (b *Binary) Path(t testing.TB) string {
	t.Helper()
	b.once.Do(b.build)
	if b.err != nil {
		t.Fatalf("building %s: %v", b.Name, b.err)
	}
	return b.path
}

func (b *Binary) build() {
	var err error
	if b.dir, err = os.MkdirTemp("", b.Name+"-test-"); err != nil {
		b.err = err
		return
	}
	b.path = filepath.Join(b.dir, b.Name)
	args := []string{"build", "-o", b.path}
	if raceEnabled() {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// go test puts GOROOT/bin first in PATH: this is the go that runs the tests.
	out, err := exec.CommandContext(ctx, "go", append(args, ".")...).CombinedOutput()
	if err != nil {
		b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Main runs the tests and removes the built binary; call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(bin.Main(m)) }
func (b *Binary) Main(m *testing.M) int {
	code := m.Run()
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
	return code
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	return ok && slices.Contains(bi.Settings, debug.BuildSetting{Key: "-race", Value: "true"})
}

// environ is the test's environment without the variables b.Unset names. A
// race-enabled binary would sleep 1 s before every exit with status 0;
// GORACE turns that off.
func (b *Binary) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name != "GORACE" && !slices.Contains(b.Unset, name) {
			env = append(env, kv)
		}
	}
	gorace := "atexit_sleep_ms=0"
	if prior := os.Getenv("GORACE"); prior != "" {
		gorace = prior + " " + gorace
	}
	return append(env, "GORACE="+gorace)
}

// Result is how a run of the binary ended. It may be copied.
type Result struct {
	Code           int // exit status
	Stdout, Stderr string
}

// Run runs the binary with args to completion, for at most 10 s.
func (b *Binary) Run(t testing.TB, args ...string) Result {
	t.Helper()
	cmd := exec.Command(b.Path(t), args...)
	cmd.Env = b.environ()
	var stdout Buffer
	cmd.Stdout = &stdout
	p := Exec(t, b.Name, cmd)
	code := p.WaitExit(t, 10*time.Second)
	return Result{code, stdout.String(), p.Stderr()}
}

// Case is one command line of a binary's table test and what its run must
// show. It may be copied.
type Case struct {
	Name    string
	Args    []string
	Code    int      // the exit status
	Stdout  string   // a substring of stdout
	Stderr  []string // substrings of stderr
	OneLine bool     // stderr is exactly one line
	Quiet   bool     // stdout is empty
}

// RunCases runs the binary once per case, each in a subtest, and checks
// its exit status and output; secrets must appear in no output of any
// case.
func (b *Binary) RunCases(t *testing.T, cases []Case, secrets ...string) {
	t.Helper()
	runCases(t, cases, secrets, func(t *testing.T, args []string) Result { return b.Run(t, args...) })
}

// Main is a command's run function, which main calls with the command
// line and exits with what it returns: the harnesses' and the examples'
// mains, tested in-process.
type Main func(args []string, stdout, stderr io.Writer) int

// RunCases calls m once per case, each in a subtest, and checks its exit
// status and output as [Binary.RunCases] does.
func (m Main) RunCases(t *testing.T, cases []Case, secrets ...string) {
	t.Helper()
	runCases(t, cases, secrets, func(t *testing.T, args []string) Result {
		var stdout, stderr bytes.Buffer
		code := m(args, &stdout, &stderr)
		return Result{code, stdout.String(), stderr.String()}
	})
}

func runCases(t *testing.T, cases []Case, secrets []string, run func(t *testing.T, args []string) Result) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := run(t, c.Args)
			if r.Code != c.Code {
				t.Fatalf("exit status %d, want %d; stdout %q; stderr %q", r.Code, c.Code, r.Stdout, r.Stderr)
			}
			if !strings.Contains(r.Stdout, c.Stdout) || c.Quiet && r.Stdout != "" {
				t.Errorf("stdout %q, want it to contain %q (quiet %v)", r.Stdout, c.Stdout, c.Quiet)
			}
			for _, s := range c.Stderr {
				if !strings.Contains(r.Stderr, s) {
					t.Errorf("stderr %q, want it to contain %q", r.Stderr, s)
				}
			}
			if c.OneLine && strings.Count(strings.TrimSuffix(r.Stderr, "\n"), "\n") != 0 {
				t.Errorf("stderr is not one line: %q", r.Stderr)
			}
			for _, secret := range secrets {
				if strings.Contains(r.Stdout+r.Stderr, secret) {
					t.Errorf("the output quotes secret material: stdout %q, stderr %q", r.Stdout, r.Stderr)
				}
			}
		})
	}
}

// Process is one running program, started with [Binary.Start] or [Exec].
// It is safe for concurrent use and must not be copied.
type Process struct {
	name     string
	cmd      *exec.Cmd
	stderr   Buffer
	done     chan struct{} // closed once the process has exited
	exitCode int           // valid after done
}

// Start starts the binary with args, its stdout discarded and its stderr
// kept, as [Exec] does.
func (b *Binary) Start(t testing.TB, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(b.Path(t), args...)
	cmd.Env = b.environ()
	cmd.Stdout = io.Discard
	return Exec(t, b.Name, cmd)
}

// Exec starts cmd, its stderr kept, and its stdout too unless cmd.Stdout is
// set; name names it in messages. When the test ends the process is
// killed (Kill) if it still runs; the test fails if the program reported a
// data race, and logs its stderr if it failed.
func Exec(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{name: name, cmd: cmd, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = &p.stderr
	}
	cmd.Stderr = &p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		cmd.Wait()
		p.exitCode = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		// Deferred, so that it runs when Kill fails t (FailNow) too.
		defer func() {
			if out := p.stderr.String(); strings.Contains(out, "DATA RACE") {
				t.Errorf("%s reported a data race:\n%s", name, out)
			} else if t.Failed() {
				t.Logf("%s stderr:\n%s", name, out)
			}
		}()
		p.Kill(t)
	})
	return p
}

// Kill kills the process by its PID (SIGKILL), if it still runs, and waits
// for it to exit.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	if !p.Exited() {
		// os.Process targets this process's PID and refuses once it has
		// been waited for, so a reused PID is never hit.
		p.cmd.Process.Kill()
		p.WaitExit(t, 10*time.Second)
	}
}

// Stderr returns what the process has written to stderr so far.
func (p *Process) Stderr() string { return p.stderr.String() }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
	}
	return false
}

// ExitCode returns the exit status. It waits for the exit: call it once
// Exited reports true, or use WaitExit.
func (p *Process) ExitCode() int {
	<-p.done
	return p.exitCode
}

// Signal sends sig to the process.
func (p *Process) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("sending %v to pid %d: %v", sig, p.cmd.Process.Pid, err)
	}
}

// WaitExit waits for the process to exit and returns its status.
func (p *Process) WaitExit(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.exitCode
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v", p.name, timeout)
		return 0
	}
}

// Stop sends SIGTERM and fails t unless the process then exits with status
// 0 within timeout.
func (p *Process) Stop(t testing.TB, timeout time.Duration) {
	t.Helper()
	p.Signal(t, syscall.SIGTERM)
	if code := p.WaitExit(t, timeout); code != 0 {
		t.Fatalf("%s exited with status %d after SIGTERM, want 0", p.name, code)
	}
}

// WaitLine waits up to timeout for the process to write a whole line that
// starts with prefix once trimmed of spaces, and returns it trimmed; it
// fails t at once when the process exits first. It reads what Stderr
// returns, which holds stdout too when [Exec] kept it.
func (p *Process) WaitLine(t testing.TB, timeout time.Duration, prefix string) string {
	t.Helper()
	var found string
	p.Eventually(t, timeout, "a line "+prefix+"...", func() bool {
		for line := range strings.Lines(p.Stderr()) {
			if s := strings.TrimSpace(line); strings.HasSuffix(line, "\n") && strings.HasPrefix(s, prefix) {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

// Eventually polls cond every 10 ms until it holds or timeout passes, and
// fails at once when the process exits meanwhile; what says what the test
// waits for.
func (p *Process) Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	Eventually(t, timeout, what, func() bool {
		if p.Exited() {
			t.Fatalf("%s exited (status %d) while the test waited for %s", p.name, p.exitCode, what)
		}
		return cond()
	})
}

// Eventually polls cond every 10 ms until it holds or timeout passes, and
// fails t otherwise; what says what the test waits for.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Within(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Within polls cond every 10 ms until it holds or timeout passes, and
// reports whether it held: for tests that fail with a message of their own
// (a count, a log) or only log.
func Within(timeout time.Duration, cond func() bool) bool {
	return Poll(context.Background(), timeout, 10*time.Millisecond, "", cond) == nil
}

// Poll calls cond every interval until it holds (nil), timeout passes
// (after one last call: an error saying what did not happen "within
// <timeout>") or ctx ends (ctx's error): the one polling loop of the tests
// ([Within], [Eventually]) and the harnesses (internal/harness.Wait).
func Poll(ctx context.Context, timeout, interval time.Duration, what string, cond func() bool) error {
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(interval) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			if cond() {
				return nil
			}
			return fmt.Errorf("%s within %v", what, timeout)
		}
	}
	return nil
}

// HeapPerRequest runs run(n), n requests, and fails t when the live heap
// (after full collections) grew by more than maxBytes per request over
// them; it logs the figure either way. Warm the pools up first: a leak is
// what grows with the requests, not what the first ones allocate once.
func HeapPerRequest(t testing.TB, n int, maxBytes float64, run func(n int)) {
	t.Helper()
	before := heapInUse()
	run(n)
	after := heapInUse()
	per := float64(int64(after)-int64(before)) / float64(n)
	t.Logf("heap %d KiB before, %d KiB after %d requests: %.1f bytes per request", before>>10, after>>10, n, per)
	if per > maxBytes {
		t.Errorf("the heap grew by %.1f bytes per request over %d requests (%d KiB), want at most %.0f", per, n, (int64(after)-int64(before))>>10, maxBytes)
	}
}

// heapInUse returns the live heap after a full collection; the second
// collection frees what the first one's finalizers released.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Buffer is a bytes.Buffer safe for concurrent writes and reads: it
// collects a process's or a server's output while the test reads it. The
// zero value is ready to use; it must not be copied after first use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreeTCPAddr returns a loopback address nothing listens on right now.
func FreeTCPAddr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", FreePorts(t, 1)[0])
}

// FreePorts returns n different loopback ports nothing listens on right
// now, as PickPorts does, and fails t when there are none.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := PickPorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// PickPorts returns n different loopback ports nothing listens on right
// now. They are drawn at random from below Linux's ephemeral range
// (32768-60999): a port the kernel hands out for bind(":0") comes from that
// range, and so does the local port of every outgoing connection, which
// could take it between this call and the daemon's own bind (a daemon of one
// test dialling an Authorization Server took the port another had picked).
// Random draws keep test processes running side by side apart. It is for
// tests and the harnesses (loadtest/run, bench/run).
func PickPorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries == 1000 {
			return nil, fmt.Errorf("bintest: no free loopback port among %d tries", tries)
		}
		port := 10000 + rand.IntN(32768-10000)
		if port == 10080 {
			continue // a bad port of the Fetch standard: browsers and Node's fetch refuse it
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken
		}
		held = append(held, ln) // held until all are picked: all different
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Serve runs serve in a goroutine until the test ends, then calls shutdown
// with 5 s to finish. An error from either fails t, but
// http.ErrServerClosed, which is how net/http's Serve says it was shut down.
func Serve(t testing.TB, serve func() error, shutdown func(context.Context) error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
}

// WantRefused checks that nothing listens on addr any more: a dial is
// refused.
func WantRefused(t testing.TB, addr string) {
	t.Helper()
	if c, err := net.DialTimeout("tcp", addr, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Errorf("dial %s after exit: %v, want connection refused", addr, err)
	}
}

// WriteFiles writes files (name → content) with mode 0600 into a new
// temporary directory, and returns the path a name has there.
func WriteFiles(t testing.TB, files map[string]string) func(name string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		WriteFile(t, filepath.Join(dir, name), content)
	}
	return func(name string) string { return filepath.Join(dir, name) }
}

// SocketDir returns a new directory with a short path, removed when the
// test ends: a Unix socket's path has at most 107 bytes, which a path in
// t.TempDir can exceed.
func SocketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// WriteFile writes content to path with mode 0600.
func WriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Get sends GET url with c and returns the status and body.
func Get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// Do sends req with c and returns the response and its body, read to the
// end; an error fails t.
func Do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// NewRequest returns a request with the headers in their order, names
// repeated as given; a header "Host" sets the Host. With a body, length
// is its Content-Length, -1 for chunked.
func NewRequest(t testing.TB, method, url string, headers [][2]string, body io.Reader, length int64) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.ContentLength = length
	}
	for _, kv := range headers {
		if strings.EqualFold(kv[0], "Host") {
			req.Host = kv[1]
			continue
		}
		k := http.CanonicalHeaderKey(kv[0])
		req.Header[k] = append(req.Header[k], kv[1])
	}
	return req
}

// RawAnswer is what came back for bytes written on a fresh connection. It
// may be copied.
type RawAnswer struct {
	Status int
	Header http.Header
	Body   string
	Closed bool  // the answer said Connection: close
	Err    error // no HTTP answer could be read
}

// Raw writes raw as is on a new connection to addr (host:port), as no
// client would clean it, and reads one answer within 10 s.
func Raw(t testing.TB, addr, raw string) RawAnswer {
	t.Helper()
	var d net.Dialer
	conn, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		return RawAnswer{Err: err}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return RawAnswer{Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return RawAnswer{Status: resp.StatusCode, Header: resp.Header, Body: string(body), Closed: resp.Close, Err: err}
}

// Accept hands each connection ln accepts to handle, in a goroutine of its
// own, until the test ends, when it closes ln.
func Accept(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
}

// StaleSocket leaves a Unix socket at path that nothing listens on, as a
// daemon killed without cleaning up leaves it.
func StaleSocket(t testing.TB, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("no stale socket left behind: %v", err)
	}
}

// WantSocket checks that path is a Unix socket with permissions perm.
func WantSocket(t testing.TB, path string, perm os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("%s is %v, not a socket", path, fi.Mode())
	}
	if got := fi.Mode().Perm(); got != perm {
		t.Errorf("socket mode %#o, want %#o", got, perm)
	}
}

// LogLines returns the JSON log lines of logs (zerolog's JSON format, one
// object a line) whose message is msg, and fails t on a line that is not
// JSON.
func LogLines(t testing.TB, logs, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("a log line is not JSON: %v\n%s", err, line)
		}
		if m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// Missing reports that something a test needs is not installed: it skips
// the test locally and fails it when the environment variable CI is set,
// since CI installs everything (.ci/run) and must run every test. msg says
// what is missing and how to install it.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI must run this test)")
	}
	t.Skip(msg)
}
