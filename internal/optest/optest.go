// Package optest runs a real, OpenID-certified OpenID Provider in tests:
// panva/oidc-provider as integration/op/server.mjs configures it, in a node
// process that lives as long as the test. Only tests import it.
package optest

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/nodetest"
)

// Options configure the provider's one client, spa-client.
type Options struct {
	ClientSecret string // required
	// RedirectURI is spa-client's redirect_uri and post_logout_redirect_uri;
	// required.
	RedirectURI string
	// AccessTokenTTL is the access-token lifetime, in whole seconds; 0 means
	// server.mjs's default, an hour.
	AccessTokenTTL time.Duration
	// BackchannelLogoutURI is spa-client's backchannel_logout_uri, with
	// backchannel_logout_session_required (ID tokens then carry sid); ""
	// registers none.
	BackchannelLogoutURI string
}

// Provider is a running oidc-provider. It must not be copied; its methods
// are safe for concurrent use.
type Provider struct {
	Issuer string // http://localhost:<port>

	mu     sync.Mutex
	events []string // the "EVENT " lines, without the prefix
	stderr bintest.Buffer
	stop   func() // once: SIGTERM, then wait for the exit
}

// dir is integration/op, found beside this source file so that any
// package's tests can start it.
func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "integration", "op")
}

// Start runs the provider with o until t ends (or Stop), then stops it
// with SIGTERM and fails t unless it exits cleanly within 5 s. Without node or the
// provider's node_modules it skips t, or fails it when CI is set.
func Start(t testing.TB, o Options) *Provider {
	t.Helper()
	node := nodetest.Node(t)
	if _, err := os.Stat(filepath.Join(dir(), "node_modules/oidc-provider/package.json")); err != nil {
		bintest.Missing(t, "integration/op/node_modules is missing: run npm ci --prefix integration/op")
	}

	op := &Provider{}
	cmd := exec.Command(node, "server.mjs")
	cmd.Dir = dir()
	cmd.Env = append(os.Environ(), "PORT=0", "CLIENT_SECRET="+o.ClientSecret, "REDIRECT_URI="+o.RedirectURI)
	if o.BackchannelLogoutURI != "" {
		cmd.Env = append(cmd.Env, "BACKCHANNEL_LOGOUT_URI="+o.BackchannelLogoutURI)
	}
	if o.AccessTokenTTL > 0 {
		cmd.Env = append(cmd.Env, "ACCESS_TOKEN_TTL="+strconv.Itoa(int(o.AccessTokenTTL/time.Second)))
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &op.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting oidc-provider: %v", err)
	}
	ready := make(chan string, 1)
	exited := make(chan error, 1)
	go func() {
		op.read(stdout, ready)
		exited <- cmd.Wait() // after stdout is read to its end (os/exec's StdoutPipe rule)
	}()
	op.stop = sync.OnceFunc(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("oidc-provider did not exit cleanly on SIGTERM: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("oidc-provider did not exit within 5 s of SIGTERM; killing it")
			cmd.Process.Kill()
			<-exited
		}
	})
	t.Cleanup(func() {
		op.stop()
		if t.Failed() {
			op.mu.Lock()
			t.Logf("oidc-provider events: %q\nstderr:\n%s", op.events, op.Stderr())
			op.mu.Unlock()
		}
	})

	select {
	case op.Issuer = <-ready:
	case err := <-exited:
		t.Fatalf("oidc-provider exited before it was ready: %v\n%s", err, op.Stderr())
	case <-time.After(20 * time.Second):
		t.Fatalf("oidc-provider printed no READY line within 20 s\n%s", op.Stderr())
	}
	return op
}

// Stop stops the provider now, as the end of the test would (SIGTERM,
// then up to 5 s for a clean exit), so that a test can see what its
// clients do when it is gone: its port then refuses connections. Later
// calls, and the test's end, do nothing more.
func (op *Provider) Stop() { op.stop() }

// read consumes the provider's stdout: one READY line, then EVENT lines.
func (op *Provider) read(r io.Reader, ready chan<- string) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		line := s.Text()
		if issuer, ok := strings.CutPrefix(line, "READY "); ok {
			select {
			case ready <- issuer:
			default:
			}
		} else if event, ok := strings.CutPrefix(line, "EVENT "); ok {
			op.mu.Lock()
			op.events = append(op.events, event)
			op.mu.Unlock()
		}
	}
	io.Copy(io.Discard, r)
}

// Stderr is what the provider wrote to stderr so far: errors and warnings.
func (op *Provider) Stderr() string { return op.stderr.String() }

// Mark is the number of events so far, for Count and WaitFor.
func (op *Provider) Mark() int {
	op.mu.Lock()
	defer op.mu.Unlock()
	return len(op.events)
}

// Count is the number of events after mark that are event or start with
// event and a space ("grant.success" counts "grant.success refresh_token").
func (op *Provider) Count(mark int, event string) int {
	op.mu.Lock()
	defer op.mu.Unlock()
	n := 0
	for _, e := range op.events[mark:] {
		if e == event || strings.HasPrefix(e, event+" ") {
			n++
		}
	}
	return n
}

// WaitFor waits until exactly want events after mark match event (Count),
// and fails t when more do or, within 5 s, fewer: the provider writes an
// event before it answers, but the line may still be in the pipe.
func (op *Provider) WaitFor(t testing.TB, mark int, event string, want int) {
	t.Helper()
	var n int
	bintest.Within(5*time.Second, func() bool {
		n = op.Count(mark, event)
		return n >= want
	})
	if n != want {
		t.Fatalf("the OP logged %d %q events (waiting at most 5 s), want %d", n, event, want)
	}
}
