// Package optest runs a real, OpenID-certified OpenID Provider in tests:
// panva/oidc-provider as integration/op/server.mjs configures it, in a node
// process that lives as long as the test. Only tests import it.
package optest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
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

	t    testing.TB
	p    *bintest.Process // its output: the READY line, then EVENT lines among its warnings
	stop sync.Once
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

	op := &Provider{t: t}
	cmd := exec.Command(node, "server.mjs")
	cmd.Dir = dir()
	cmd.Env = append(os.Environ(), "PORT=0", "CLIENT_SECRET="+o.ClientSecret, "REDIRECT_URI="+o.RedirectURI)
	if o.BackchannelLogoutURI != "" {
		cmd.Env = append(cmd.Env, "BACKCHANNEL_LOGOUT_URI="+o.BackchannelLogoutURI)
	}
	if o.AccessTokenTTL > 0 {
		cmd.Env = append(cmd.Env, "ACCESS_TOKEN_TTL="+strconv.Itoa(int(o.AccessTokenTTL/time.Second)))
	}
	op.p = bintest.Exec(t, "oidc-provider", cmd)
	t.Cleanup(op.Stop)
	op.Issuer = strings.TrimPrefix(op.p.WaitLine(t, 20*time.Second, "READY "), "READY ")
	return op
}

// Stop stops the provider now, as the end of the test would (SIGTERM,
// then up to 5 s for a clean exit), so that a test can see what its
// clients do when it is gone: its port then refuses connections. Later
// calls, and the test's end, do nothing more.
func (op *Provider) Stop() { op.stop.Do(func() { op.p.Stop(op.t, 5*time.Second) }) }

// events returns the EVENT lines so far, without the prefix.
func (op *Provider) events() []string {
	var events []string
	for line := range strings.Lines(op.p.Stderr()) {
		if e, ok := strings.CutPrefix(line, "EVENT "); ok && strings.HasSuffix(e, "\n") {
			events = append(events, strings.TrimSuffix(e, "\n"))
		}
	}
	return events
}

// Mark is the number of events so far, for Count and WaitFor.
func (op *Provider) Mark() int { return len(op.events()) }

// Count is the number of events after mark that are event or start with
// event and a space ("grant.success" counts "grant.success refresh_token").
func (op *Provider) Count(mark int, event string) int {
	n := 0
	for _, e := range op.events()[mark:] {
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
