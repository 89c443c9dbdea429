// Package harness starts the token handler's parts on loopback for the
// harness programs (bench/run, loadtest/run) and stops them again, newest
// first: the built binaries as child processes in process groups of their
// own, in-process servers, NGINX and the development OpenID Provider;
// examples/devstack runs its in-process servers and NGINX with it. Stat and
// Children read the processes' CPU time and children from /proc. Only harnesses and tests import it; the
// daemons never do (their dependency tests say so).
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/agent"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/examples/devidp"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/nginx"
	"github.com/tokenhandler/tokenhandler/nginx/nginxtest"
)

// Stack is what one run started: processes, servers and a temporary
// directory. It is safe for concurrent use and must not be copied.
type Stack struct {
	// Dir is the run's temporary directory (binaries, configurations,
	// sockets, NGINX run directories); Stop removes it.
	Dir string
	// Failed, when set, receives the error of a server started with Serve
	// that ended on its own, before the stack stopped it.
	Failed chan error

	mu    sync.Mutex
	stops []func() // in start order; Stop runs them backwards
	logs  []func() string
}

// New makes a stack with a fresh temporary directory named after prefix.
func New(prefix string) (*Stack, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	return &Stack{Dir: dir}, nil
}

// OnStop registers f to run when the stack stops, before whatever was
// registered earlier.
func (s *Stack) OnStop(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stops = append(s.stops, f)
}

// OnLog registers a source of log text that Stop prints under name when
// asked to.
func (s *Stack) OnLog(name string, log func() string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logs = append(s.logs, func() string {
		if out := strings.TrimSpace(log()); out != "" {
			return name + ":\n" + out
		}
		return ""
	})
}

// Stop stops everything started, newest first, and removes the temporary
// directory; with logs it writes to w what the parts logged. A second Stop
// finds nothing left to stop.
func (s *Stack) Stop(w io.Writer, logs bool) {
	s.mu.Lock()
	stops, sources := s.stops, s.logs
	s.stops = nil
	s.mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	if logs {
		for _, l := range sources {
			if out := l(); out != "" {
				fmt.Fprintln(w, out)
			}
		}
	}
	os.RemoveAll(s.Dir)
}

// Build builds the commands pkgs (such as "./cmd/oauth-proxy", relative to
// the working directory, which is the module's root) without cgo, with the
// build tags tags (comma-separated; "" for none), into Dir/bin, or
// Dir/bin-<tags> with tags so that both builds can sit side by side, and
// returns that directory.
func (s *Stack) Build(ctx context.Context, tags string, pkgs ...string) (string, error) {
	bin, args := filepath.Join(s.Dir, "bin"), []string{"build", "-trimpath"}
	if tags != "" {
		bin, args = bin+"-"+tags, append(args, "-tags", tags)
	}
	build := exec.CommandContext(ctx, "go", append(append(args, "-o", bin+"/"), pkgs...)...)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return bin, fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// Thctl runs the thctl binary in bin with args, key (hex) in
// TH_ENCRYPTION_KEYS when not empty and stdin as its input, and returns its
// output without the trailing newline.
func Thctl(ctx context.Context, bin, key, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "thctl"), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if key != "" {
		cmd.Env = append(cmd.Env, "TH_ENCRYPTION_KEYS="+key)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("thctl %s: %v: %s", args[0], err, strings.TrimSpace(errOut.String()))
	}
	return strings.TrimSuffix(out.String(), "\n"), nil
}

// FreeAddr returns a loopback address whose port was free a moment ago,
// from below the ephemeral range (bintest.PickPorts says why).
func FreeAddr() (string, error) {
	ports, err := bintest.PickPorts(1)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0]), nil
}

// Wait polls cond every interval until it holds, and returns an error
// saying what did not happen within timeout (or ctx's error) otherwise.
func Wait(ctx context.Context, timeout, interval time.Duration, what string, cond func() bool) error {
	return bintest.Poll(ctx, timeout, interval, what, cond)
}

// Process is one child process the stack started. It is safe for
// concurrent use and must not be copied.
type Process struct {
	Name string

	cmd     *exec.Cmd
	grace   time.Duration
	exited  chan struct{} // closed when it has exited; then exitErr is set
	exitErr error
	log     bintest.Buffer
}

// Start runs cmd, named name in messages, in its own process group (so that
// a terminal's Ctrl-C reaches the harness alone, which stops it) with its
// stdout and stderr kept, and registers its stop: SIGTERM, then SIGKILL
// after grace.
func (s *Stack) Start(name string, cmd *exec.Cmd, grace time.Duration) (*Process, error) {
	p := &Process{Name: name, cmd: cmd, grace: grace, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.log, &p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	s.OnStop(p.Stop)
	s.OnLog(name+" log", p.Log)
	return p, nil
}

// Pid is the process's ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process (never to a reused PID: os.Process
// refuses once the process has been waited for).
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitErr is how the process exited (nil: status 0); call it once Exited
// is closed.
func (p *Process) ExitErr() error {
	<-p.exited
	return p.exitErr
}

// Log returns what the process has written so far.
func (p *Process) Log() string { return p.log.String() }

// Stop sends SIGTERM and waits for the exit, sending SIGKILL after the
// grace period.
func (p *Process) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(p.grace):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// WaitFor polls ready every 20 ms for up to 10 s while p runs; what says
// what is wrong when it does not hold ("not ready").
func (p *Process) WaitFor(ctx context.Context, what string, ready func() bool) error {
	err := Wait(ctx, 10*time.Second, 20*time.Millisecond, what, func() bool {
		select {
		case <-p.exited:
			return true
		default:
			return ready()
		}
	})
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited at start (%v): %s", p.Name, p.exitErr, p.Log())
	default:
	}
	if err != nil {
		return fmt.Errorf("%s: %w: %s", p.Name, err, p.Log())
	}
	return nil
}

// Ready reports whether GET url answers 200 (a daemon's /readyz).
func Ready(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Serve runs serve in a goroutine until the stack stops, then shutdown
// with 5 s to finish; an error serve returns before that goes to Failed,
// when set, prefixed with name.
func (s *Stack) Serve(name string, serve func() error, shutdown func(context.Context) error) {
	go func() {
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) && s.Failed != nil {
			s.Failed <- fmt.Errorf("%s: %w", name, err)
		}
	}()
	s.OnStop(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdown(ctx)
	})
}

// ServeFast serves h with fasthttp on a free loopback port until the stack
// stops, and returns its address.
func (s *Stack) ServeFast(h fasthttp.RequestHandler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &fasthttp.Server{NoDefaultServerHeader: true, ReadBufferSize: 16 << 10, Handler: h}
	go srv.Serve(ln)
	s.OnStop(func() { srv.Shutdown() })
	return ln.Addr().String(), nil
}

// ServeHTTP serves h on ln, or on a free loopback port when ln is nil,
// until the stack stops, and returns its URL.
func (s *Stack) ServeHTTP(ln net.Listener, h http.Handler) (string, error) {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return "", err
		}
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	s.OnStop(func() { srv.Close() })
	return "http://" + ln.Addr().String(), nil
}

// StartIdP serves the development OpenID Provider on a free loopback port
// with o, its Issuer set to that port's URL, until the stack stops, and
// returns the issuer URL.
func (s *Stack) StartIdP(o devidp.Options) (string, error) {
	ln, err := devidp.ListenLoopback("127.0.0.1:0", false)
	if err != nil {
		return "", err
	}
	o.Issuer = "http://" + ln.Addr().String()
	idp, err := devidp.New(o)
	if err != nil {
		ln.Close()
		return "", err
	}
	return s.ServeHTTP(ln, idp.Handler())
}

// AgentConfig is the OAuth Agent's configuration for the demo SPA at
// origin (redirects to origin + "/") as client spa-client, with secret, of
// the OpenID Provider at issuer, sealing v2 cookies prefixed "example" with
// keys, on a free loopback port: what the development stack, the load
// tests and the browser tests run. Callers set what their stack adds
// (listeners, log, revocation store).
func AgentConfig(issuer, secret, origin string, keys *crypto.Keyring) *agent.Config {
	return &agent.Config{
		Listen:                "127.0.0.1:0",
		BasePath:              "/oauth-agent",
		Issuer:                issuer,
		ClientID:              "spa-client",
		ClientSecret:          secret,
		ClientAuthMethod:      "client_secret_basic",
		RedirectURI:           origin + "/",
		PostLogoutRedirectURI: origin + "/",
		Scope:                 "openid profile",
		CookieNamePrefix:      "example",
		Cookie:                agent.Cookie{BasePath: "/", SameSite: "strict"},
		CookieFormat:          crypto.FormatV2,
		Keys:                  keys,
		TrustedWebOrigins:     []string{origin},
		CORSEnabled:           true,
		PAR:                   "auto",
		IDToken:               agent.IDToken{AllowedAlgs: []string{"RS256", "PS256", "ES256", "EdDSA"}, ClockSkew: 30 * time.Second},
		Refresh:               agent.Refresh{GracePeriod: agent.DefaultGracePeriod},
		Timeouts:              agent.Timeouts{ServerTimeouts: settings.ServerTimeouts{Read: 30 * time.Second, Write: 30 * time.Second, Idle: 120 * time.Second, Shutdown: 5 * time.Second}, AS: 10 * time.Second},
		Log:                   agent.Log{Level: zerolog.WarnLevel, Format: "json"},
	}
}

// StartNGINX runs NGINX (nginxtest.Run) with mode rendered from p in Dir/name
// until the stack stops; an empty p.Listen is a free loopback port. Its exit
// before the stack stops it goes to Failed, when set.
func (s *Stack) StartNGINX(ctx context.Context, name, mode string, p nginx.Params) (*nginxtest.Process, error) {
	bin, err := nginxtest.Find() // nginxtest.ErrNotFound says how to install it
	if err != nil {
		return nil, err
	}
	p.RunDir = filepath.Join(s.Dir, name)
	if err := os.Mkdir(p.RunDir, 0o755); err != nil {
		return nil, err
	}
	if p.Listen == "" {
		p.Listen = "127.0.0.1:0"
	}
	n, err := nginxtest.Run(ctx, bin, mode, p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	stopping := make(chan struct{})
	s.OnStop(func() {
		close(stopping)
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Stop(c)
	})
	s.OnLog(name+" error.log", n.Log)
	if s.Failed != nil {
		go func() {
			<-n.Exited()
			select {
			case <-stopping:
			default:
				s.Failed <- fmt.Errorf("NGINX exited (%v):\n%s", n.ExitErr(), n.Log())
			}
		}()
	}
	return n, nil
}

// Stat returns the fields of /proc/pid/stat after "pid (comm)".
func Stat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// Children lists the processes whose parent is pid.
func Children(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	want := strconv.Itoa(pid)
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := Stat(p); len(f) > 1 && f[1] == want {
			out = append(out, p)
		}
	}
	return out
}
