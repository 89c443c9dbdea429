// Package redistest runs a real redis-server for tests: on a free loopback
// port, with persistence off (--save "" --appendonly no), stopped by its PID
// when the test ends. Tests that use it skip when redis-server is not
// installed, and fail instead when the environment variable CI is set
// (.ci/run installs it). Only tests import it.
package redistest

import (
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// Server is one redis-server process. It is safe for concurrent use by
// one test and must not be copied.
type Server struct {
	// Addr is the server's "127.0.0.1:port", the same across Restart.
	Addr string

	t    testing.TB
	path string
	port int
	p    *bintest.Process
}

// Start starts a redis-server on a free port and waits until it accepts
// connections. It is stopped when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		bintest.Missing(t, "redistest: redis-server is not installed: apt-get install -y redis-server")
	}
	port := bintest.FreePorts(t, 1)[0]
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), t: t, path: path, port: port}
	s.start()
	return s
}

func (s *Server) start() {
	s.t.Helper()
	s.p = bintest.Exec(s.t, "redis-server "+s.Addr, exec.Command(s.path, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", s.t.TempDir()))
	s.p.Eventually(s.t, 10*time.Second, "redis-server to accept connections on "+s.Addr, func() bool {
		c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond)
		if err != nil {
			return false
		}
		defer c.Close()
		// A listening socket is not yet a server that answers.
		c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			return false
		}
		buf := make([]byte, 7)
		n, _ := c.Read(buf)
		return string(buf[:n]) == "+PONG\r\n"
	})
}

// Kill kills the server by its PID (SIGKILL: an outage, not a shutdown)
// and waits for it to exit; its data is lost, as persistence is off.
func (s *Server) Kill() {
	s.t.Helper()
	s.p.Kill(s.t)
}

// Restart starts a new, empty server on the same address after Kill.
func (s *Server) Restart() {
	s.t.Helper()
	if !s.p.Exited() {
		s.t.Fatal("redistest: Restart needs Kill first")
	}
	s.start()
}
