package main

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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tokenhandler/tokenhandler/nginx"
)

// errNoNGINX is the answer to -nginx without NGINX.
var errNoNGINX = errors.New("-nginx needs NGINX, which was not found: apt-get install -y nginx (or set NGINX=/path/to/nginx)")

// nginxBinary finds NGINX: $NGINX, else nginx on PATH, else where the Debian
// and nginx.org packages and a source build put it (/usr/sbin is not on
// every user's PATH).
func nginxBinary() (string, error) {
	candidates := []string{"nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"}
	if env := os.Getenv("NGINX"); env != "" {
		candidates = []string{env}
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", errNoNGINX
}

// startNGINX runs NGINX in front of the agent and the proxy, in upstream
// mode (nginx.Render), on api.example.localhost's NGINX port: a whole
// nginx.conf in a temporary directory that also holds its pid file, logs
// and temporary files, and NGINX in the foreground (daemon off), so that
// the stack stops it.
func (s *stack) startNGINX(bin string, p ports) error {
	dir, err := os.MkdirTemp("", "devstack-nginx-")
	if err != nil {
		return fmt.Errorf("NGINX: %w", err)
	}
	params := nginx.Params{
		RunDir:          dir,
		WorkerProcesses: 1,
		Listen:          fmt.Sprintf("127.0.0.1:%d", p.nginx),
		Agents:          []string{fmt.Sprintf("127.0.0.1:%d", p.agent)},
		Proxies:         []string{fmt.Sprintf("127.0.0.1:%d", p.proxy)},
	}
	if os.Geteuid() == 0 {
		// Run as root, the master would start its workers as "nobody", who
		// cannot write the temporary directory.
		params.User = "root"
	}
	conf, err := nginx.Render(nginx.ModeUpstream, params)
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("NGINX: %w", err)
	}

	var out lockedBuffer
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = &out, &out
	ownProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("NGINX: %w", err)
	}
	// What went wrong: error.log, or NGINX's stderr when it did not get as
	// far as opening its log.
	logs := func() string {
		if errorLog, _ := os.ReadFile(filepath.Join(dir, "error.log")); len(errorLog) > 0 {
			return strings.TrimSpace(string(errorLog))
		}
		return strings.TrimSpace(out.String())
	}
	var stopping atomic.Bool
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		if !stopping.Load() {
			s.failed <- fmt.Errorf("NGINX exited (%v):\n%s", err, logs())
		}
		close(exited)
	}()
	s.stops = append(s.stops, func(ctx context.Context) {
		stopping.Store(true)
		// SIGTERM is NGINX's fast shutdown, of the master and its workers.
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			cmd.Process.Kill()
		}
		select {
		case <-exited:
		case <-ctx.Done():
			cmd.Process.Kill()
			<-exited
		}
		os.RemoveAll(dir)
	})

	// Ready when the master has written its pid file, which it does after
	// binding the listen socket, and the socket accepts.
	pidFile := filepath.Join(dir, "nginx.pid")
	want := strconv.Itoa(cmd.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			return fmt.Errorf("NGINX did not start:\n%s", logs())
		default:
		}
		if pid, _ := os.ReadFile(pidFile); strings.TrimSpace(string(pid)) == want {
			if c, err := net.DialTimeout("tcp", params.Listen, time.Second); err == nil {
				c.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("NGINX did not listen on %s within 10 s:\n%s", params.Listen, logs())
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
