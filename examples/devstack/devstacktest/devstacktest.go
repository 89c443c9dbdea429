//go:build linux

// Package devstacktest runs the development stack as a newcomer does:
// `make run ARGS="..."` in a checkout, at a terminal of its own (a
// pseudo-terminal whose session make leads), stopped by Ctrl-C typed at
// that terminal; or, with NoTerminal, as a script does, with SIGINT sent to
// make's process group. The tests of examples/devstack and the new-user
// test of e2e use it.
package devstacktest

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// Ports are the stack's ports. The zero value is not usable: FreePorts
// picks them.
type Ports struct {
	SPA, Agent, Proxy, API, IDP, NGINX int
	AgentMetrics                       int // the agent's /metrics, /healthz, /readyz
}

// FreePorts picks seven free loopback ports.
func FreePorts(t testing.TB) Ports {
	t.Helper()
	p := bintest.FreePorts(t, 7)
	return Ports{SPA: p[0], Agent: p[1], Proxy: p[2], API: p[3], IDP: p[4], NGINX: p[5], AgentMetrics: p[6]}
}

// Args returns devstack's flags that put the stack on p.
func (p Ports) Args() []string {
	return []string{"-spa-port", strconv.Itoa(p.SPA), "-agent-port", strconv.Itoa(p.Agent), "-proxy-port", strconv.Itoa(p.Proxy),
		"-api-port", strconv.Itoa(p.API), "-idp-port", strconv.Itoa(p.IDP), "-nginx-port", strconv.Itoa(p.NGINX),
		"-agent-metrics-port", strconv.Itoa(p.AgentMetrics)}
}

// Config says what to run.
type Config struct {
	Dir        string   // the checkout, where the Makefile is
	Target     string   // "run" or "run-nginx"
	Ports      Ports    // passed in ARGS after Args
	Args       []string // more of devstack's flags, in ARGS
	Env        []string // added to the test's environment (make's own variables removed)
	NoTerminal bool     // no terminal: output to a pipe, Interrupt sends SIGINT to make's process group
	// Timeout bounds the wait for the SPA's URL, the build included; 0
	// means 3 minutes.
	Timeout time.Duration
}

// Stack is a running `make run`. Its methods are for the test's goroutine.
type Stack struct {
	URL string // the SPA's URL, as devstack printed it

	t      testing.TB
	cfg    Config
	cmd    *exec.Cmd
	pty    *os.File // the terminal's master side, or nil
	out    bintest.Buffer
	read   chan struct{} // closed when the output has been read to its end
	exited chan struct{} // closed when make has exited; err is then set
	err    error
}

// Start runs `make <Target> ARGS="<Ports.Args> <Args>"` in Dir and waits
// for devstack to print the SPA's URL. The test's cleanup kills whatever
// is still running in make's session or process group.
func Start(t testing.TB, cfg Config) *Stack {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Minute
	}
	args := append(cfg.Ports.Args(), cfg.Args...)
	cmd := exec.Command("make", "--no-print-directory", cfg.Target, "ARGS="+strings.Join(args, " "))
	cmd.Dir = cfg.Dir
	// A user's shell has no make variables; a test under `make test` does
	// (a jobserver, MAKELEVEL), which would change what make prints.
	for _, kv := range os.Environ() {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "GNUMAKEFLAGS":
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, cfg.Env...)
	s := &Stack{t: t, cfg: cfg, cmd: cmd, read: make(chan struct{}), exited: make(chan struct{})}

	var output io.Reader
	var tty *os.File
	if cfg.NoTerminal {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = w, w
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		output, tty = r, w
	} else {
		master, slave, err := openPTY()
		if err != nil {
			t.Fatalf("devstacktest: a terminal: %v", err)
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		// make leads a new session whose controlling terminal is the
		// pty, as a shell's job at a terminal is.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		s.pty, output, tty = master, master, slave
	}
	if err := cmd.Start(); err != nil {
		tty.Close()
		if s.pty != nil {
			s.pty.Close()
		}
		t.Fatalf("devstacktest: make: %v", err)
	}
	tty.Close() // make and its children hold it now: the output ends when they are all gone
	go func() {
		io.Copy(&s.out, output) // the pty's master answers EIO at the end
		if cfg.NoTerminal {
			output.(*os.File).Close()
		}
		close(s.read)
	}()
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(s.kill)

	urlRE := regexp.MustCompile(`(?m)^\s*(http://www\.example\.localhost:\d+/)\s*$`)
	deadline := time.Now().Add(cfg.Timeout)
	for {
		if m := urlRE.FindStringSubmatch(s.Output()); m != nil {
			s.URL = m[1]
			break
		}
		select {
		case <-s.exited:
			<-s.read
			t.Fatalf("make %s exited (%v) before the stack was up:\n%s", cfg.Target, s.err, s.Output())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("make %s printed no URL within %v:\n%s", cfg.Target, cfg.Timeout, s.Output())
		}
	}
	if want := fmt.Sprintf("http://www.example.localhost:%d/", cfg.Ports.SPA); s.URL != want {
		t.Fatalf("devstack printed %q, want %q", s.URL, want)
	}
	return s
}

// Interrupt types Ctrl-C at the terminal (with NoTerminal: sends SIGINT to
// make's process group) and waits up to timeout for make to exit and its
// output to end. It returns make's error: nil when it exited 0.
func (s *Stack) Interrupt(timeout time.Duration) error {
	s.t.Helper()
	var err error
	if s.pty != nil {
		_, err = s.pty.Write([]byte{0x03}) // VINTR, ^C
	} else {
		err = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT)
	}
	if err != nil {
		s.t.Fatalf("devstacktest: Ctrl-C: %v", err)
	}
	select {
	case <-s.exited:
	case <-time.After(timeout):
		s.t.Fatalf("make %s did not exit within %v of Ctrl-C:\n%s", s.cfg.Target, timeout, s.Output())
	}
	select {
	case <-s.read:
	case <-time.After(5 * time.Second):
		s.t.Fatalf("make %s exited, but something still holds its terminal open: %v\n%s", s.cfg.Target, s.Left(), s.Output())
	}
	return s.err
}

// Type writes b to the terminal, as keys typed (0x1a is Ctrl-Z). It
// fails the test with NoTerminal.
func (s *Stack) Type(b []byte) {
	s.t.Helper()
	if s.pty == nil {
		s.t.Fatal("devstacktest: Type needs a terminal")
	}
	if _, err := s.pty.Write(b); err != nil {
		s.t.Fatalf("devstacktest: typing: %v", err)
	}
}

// Output returns what make and the stack printed so far, line ends as
// "\n".
func (s *Stack) Output() string {
	return strings.ReplaceAll(s.out.String(), "\r\n", "\n")
}

// Left returns what is still there of the stack: processes in make's
// session or process group, and ports of Ports that accept connections.
// After a clean stop it is empty.
func (s *Stack) Left() []string {
	var left []string
	for _, p := range sessionProcessList(s.cmd.Process.Pid) {
		left = append(left, fmt.Sprintf("process %d (%s)", p.pid, p.comm))
	}
	args := s.cfg.Ports.Args() // flag, port, flag, port, ...
	for i := 0; i+1 < len(args); i += 2 {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+args[i+1], time.Second); err == nil {
			c.Close()
			left = append(left, fmt.Sprintf("a listener on %s %s", args[i], args[i+1]))
		}
	}
	return left
}

// kill ends whatever is left, for the test's cleanup.
func (s *Stack) kill() {
	select {
	case <-s.exited:
	default:
		s.t.Logf("make %s still running at the end of the test: killing it and its session", s.cfg.Target)
	}
	for range 3 {
		ps := sessionProcessList(s.cmd.Process.Pid)
		if len(ps) == 0 {
			break
		}
		for _, p := range ps {
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		s.t.Errorf("make %s did not exit after SIGKILL", s.cfg.Target)
	}
	if s.pty != nil {
		s.pty.Close()
	}
}

// process is a live process in the session or process group of make.
type process struct {
	pid  int
	comm string
}

// sessionProcessList lists the live processes in the session or process
// group that leader leads.
func sessionProcessList(leader int) []process {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []process
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp session ...; comm may hold spaces and ")".
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 4 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:open])))
		pgrp, _ := strconv.Atoi(f[2])
		session, _ := strconv.Atoi(f[3])
		if pid != 0 && (pgrp == leader || session == leader) {
			out = append(out, process{pid, string(b[open+1 : end])})
		}
	}
	return out
}

// openPTY opens a new pseudo-terminal pair (pty(7)). The ioctls run in
// Control, not on Fd, which would put the master in blocking mode: a Close
// must end a pending Read.
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	var n uint32
	rc, err := master.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) {
			if err = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); err == nil { // unlock the slave
				n, err = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN)
			}
		})
		err = cmp.Or(cerr, err)
	}
	if err == nil {
		slave, err = os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|syscall.O_NOCTTY, 0)
	}
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}
