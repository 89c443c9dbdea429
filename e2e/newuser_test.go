//go:build e2e && linux

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/examples/devstack/devstacktest"
)

// TestNewUser is issue #16's new-user test, what a newcomer does with the
// README: a fresh `git clone` of the repository (its committed HEAD), then
// `make run` in it at a terminal, then the browser journey against that
// stack (spa-flow.mjs of this checkout: login, user info, API GET and
// POST, a reload after the access token expired, logout), then Ctrl-C:
// make exits 0 without an error line, and nothing is left running or
// listening.
func TestNewUser(t *testing.T) {
	need(t)
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	clone := filepath.Join(t.TempDir(), "tokenhandler")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "git", "clone", "-q", repo, clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	head, _ := exec.Command("git", "-C", clone, "log", "-1", "--format=%h %s").Output()
	t.Logf("cloned %s", strings.TrimSpace(string(head)))

	p := devstacktest.FreePorts(t)
	s := devstacktest.Start(t, devstacktest.Config{Dir: clone, Target: "run", Ports: p, Args: []string{"-access-token-ttl", "4s"}})
	spaFlow(t, "SPA_URL="+s.URL, "IDP=devidp", "USERNAME=carol", "ACCESS_TTL_MS=4000",
		fmt.Sprintf("METRICS_URL=http://127.0.0.1:%d", p.AgentMetrics))

	err = s.Interrupt(30 * time.Second)
	out := s.Output()
	t.Logf("make run in the clone:\n%s", out)
	if err != nil {
		t.Errorf("make run after Ctrl-C: %v, want exit 0", err)
	}
	if m := regexp.MustCompile(`\*\*\*|Error|Interrupt`).FindString(out); m != "" {
		t.Errorf("make run printed %q", m)
	}
	if !strings.Contains(out, "devstack: stopped") {
		t.Error(`devstack did not print "devstack: stopped"`)
	}
	if left := s.Left(); len(left) > 0 {
		t.Errorf("left after Ctrl-C: %v", left)
	}
}
