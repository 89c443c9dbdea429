package nginxtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/nginx"
)

// startTimeout bounds how long Run waits for NGINX to serve.
const startTimeout = 10 * time.Second

// ErrNotFound is what Find returns when there is no NGINX to run.
var ErrNotFound = errors.New("nginx: not found: apt-get install -y nginx (or set NGINX=/path/to/nginx)")

// Find finds the NGINX executable: $NGINX when set, else nginx on PATH,
// else where the Debian and nginx.org packages and a source build put it
// (/usr/sbin is not on every user's PATH).
func Find() (string, error) {
	candidates := []string{"nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"}
	if env := os.Getenv("NGINX"); env != "" {
		candidates = []string{env}
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", ErrNotFound
}

// Process is an NGINX master process that Run runs in the foreground, for
// development stacks, load tests and tests: not a way to run NGINX in
// production.
//
// A Process must not be copied. Its methods are safe for concurrent use,
// except that Reload calls must not overlap each other.
type Process struct {
	cmd    *exec.Cmd
	mode   string
	params nginx.Params

	exited  chan struct{} // closed once the master has exited; then exitErr is set
	exitErr error
}

// Run renders mode with p (nginx.Render), writes it to nginx.conf in
// p.RunDir, an existing directory, and runs `binary -p RunDir -c RunDir/nginx.conf -g 'daemon off;'`, its
// stdout and stderr to stderr.log there, in its own process group, so that
// a terminal's Ctrl-C reaches only the caller and a stuck NGINX can be
// killed with its workers. It returns once the master has written its pid
// file (after binding its listen socket) and p.Listen accepts connections,
// or with an error holding NGINX's log when it exits first, does not serve
// within 10 s, or ctx ends; then it has stopped it.
//
// Where p differs from nginx.Render:
//   - A Listen port of 0 ("127.0.0.1:0") is a free port from below the
//     ephemeral range (bintest.PickPorts says why), chosen again when
//     another process binds it between choosing and NGINX binding it.
//   - Run as root with User "", the workers run as root rather than nobody,
//     who could not write RunDir.
func Run(ctx context.Context, binary, mode string, p nginx.Params) (*Process, error) {
	if p.User == "" && os.Geteuid() == 0 {
		p.User = "root"
	}
	host, port, err := net.SplitHostPort(p.Listen)
	pick := err == nil && port == "0"
	for attempt := 0; ; attempt++ {
		if pick {
			var ports []int
			if ports, err = bintest.PickPorts(1); err != nil {
				break
			}
			p.Listen = net.JoinHostPort(host, strconv.Itoa(ports[0]))
		}
		var proc *Process
		if proc, err = start(ctx, binary, mode, p); err == nil {
			return proc, nil
		}
		if !pick || attempt == 3 || !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	return nil, err
}

func start(ctx context.Context, binary, mode string, p nginx.Params) (*Process, error) {
	conf, err := nginx.Render(mode, p)
	if err != nil {
		return nil, err
	}
	n := &Process{mode: mode, params: p, exited: make(chan struct{})}
	if err := os.WriteFile(n.confPath(), conf, 0o644); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	os.Remove(filepath.Join(p.RunDir, "error.log")) // of an earlier attempt
	// A file, not a buffer: NGINX writes it directly, and Log reads it.
	out, err := os.Create(filepath.Join(p.RunDir, "stderr.log"))
	if err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	defer out.Close()
	n.cmd = exec.Command(binary, "-p", p.RunDir, "-c", n.confPath(), "-g", "daemon off;")
	n.cmd.Stdout, n.cmd.Stderr = out, out
	// A process group of its own: a terminal's Ctrl-C does not reach it,
	// and kill reaches its workers too.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	go func() {
		n.exitErr = n.cmd.Wait()
		close(n.exited)
	}()

	pidFile, want := filepath.Join(p.RunDir, "nginx.pid"), strconv.Itoa(n.Pid())
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		// The pid file first: a port some other process took meanwhile
		// cannot pass for NGINX's.
		if pid, _ := os.ReadFile(pidFile); strings.TrimSpace(string(pid)) == want {
			if c, err := net.DialTimeout("tcp", p.Listen, time.Second); err == nil {
				c.Close()
				return n, nil
			}
		}
		select {
		case <-n.exited:
			return nil, fmt.Errorf("nginx: exited at start (%v):\n%s", n.exitErr, n.Log())
		case <-deadline.C:
			n.kill()
			return nil, fmt.Errorf("nginx: did not serve %s within %s:\n%s", p.Listen, startTimeout, n.Log())
		case <-ctx.Done():
			n.kill()
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

func (n *Process) confPath() string { return filepath.Join(n.params.RunDir, "nginx.conf") }

// kill ends the master and its workers at once, and waits for the master.
func (n *Process) kill() {
	syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	<-n.exited
}

// Pid is the master's process id.
func (n *Process) Pid() int { return n.cmd.Process.Pid }

// Addr is the address NGINX listens on: nginx.Params.Listen, its port chosen.
func (n *Process) Addr() string { return n.params.Listen }

// Params are those the running configuration was rendered with, RunDir
// (nginx.conf, the pid file, error.log, access.log), Listen and User
// filled in.
func (n *Process) Params() nginx.Params { return n.params }

// Exited is closed once the master has exited, by Stop or otherwise; then
// ExitErr says how.
func (n *Process) Exited() <-chan struct{} { return n.exited }

// ExitErr waits for the master to exit and returns its exit status
// (exec.Cmd.Wait).
func (n *Process) ExitErr() error {
	<-n.exited
	return n.exitErr
}

// Log is NGINX's error.log, or what it wrote to stderr (stderr.log in the
// run directory) when it did not get as far as opening that log: the same
// messages, before it did.
func (n *Process) Log() string {
	for _, name := range []string{"error.log", "stderr.log"} {
		if b, _ := os.ReadFile(filepath.Join(n.params.RunDir, name)); len(bytes.TrimSpace(b)) > 0 {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

// Reload renders the configuration again with p (the same mode; p's RunDir
// and Listen must be those of nginx.Params) and makes NGINX load it: SIGHUP to the
// master, which starts workers with the new configuration and lets the old
// ones finish the requests they have. It returns once the signal is sent.
func (n *Process) Reload(p nginx.Params) error {
	conf, err := nginx.Render(n.mode, p)
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.confPath(), conf, 0o644); err != nil {
		return fmt.Errorf("nginx: %w", err)
	}
	if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("nginx: reload: %w", err)
	}
	return nil
}

// Stop sends the master SIGTERM, NGINX's fast shutdown of master and
// workers, and waits for it to exit. When ctx ends first it kills the
// process group and says so. Stop after the master has exited does
// nothing.
func (n *Process) Stop(ctx context.Context) error {
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		return nil
	case <-ctx.Done():
		n.kill()
		return fmt.Errorf("nginx: pid %d did not stop on SIGTERM (%w); killed its process group", n.Pid(), ctx.Err())
	}
}
