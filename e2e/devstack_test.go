//go:build e2e

// Package e2e holds the browser end-to-end tests (`make e2e`): headless
// Debian Chromium, driven by playwright-core (spa-flow.mjs), against the
// development stack and against NGINX deployments.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// need skips the test when a tool of the browser tests is missing, unless
// CI is set, where it fails: CI installs them all (.ci/run).
func need(t *testing.T) {
	t.Helper()
	var missing []string
	for _, tool := range []string{"node", "/usr/bin/chromium"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if _, err := os.Stat("node_modules/playwright-core"); err != nil {
		missing = append(missing, "e2e/node_modules (npm ci --prefix e2e)")
	}
	if len(missing) == 0 {
		return
	}
	msg := "browser tests need " + strings.Join(missing, ", ") + ": apt-get install -y nginx chromium && npm ci --prefix e2e"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// freePorts returns n free loopback TCP ports.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// spaFlow runs spa-flow.mjs with env and fails the test when a step fails.
func spaFlow(t *testing.T, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "spa-flow.mjs")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("spa-flow.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("the browser flow failed: %v", err)
	}
	if !regexp.MustCompile(`(?m)^[1-9]\d* passed, 0 failed$`).Match(out) {
		t.Fatal("the browser flow did not report its steps")
	}
}

// TestDevStack runs `make run`'s stack (examples/devstack) and drives the
// SPA in Chromium: log in as a demo user, the API answers with the user's
// subject, refresh after expiry, logout.
func TestDevStack(t *testing.T) {
	need(t)
	bin := filepath.Join(t.TempDir(), "devstack")
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/devstack").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := freePorts(t, 5)
	cmd := exec.Command(bin, "-spa-port", fmt.Sprint(p[0]), "-agent-port", fmt.Sprint(p[1]), "-proxy-port", fmt.Sprint(p[2]),
		"-api-port", fmt.Sprint(p[3]), "-idp-port", fmt.Sprint(p[4]), "-access-token-ttl", "4s")
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("devstack did not stop cleanly: %v\n%s", err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("devstack did not stop within 10 s of SIGTERM")
		}
	})

	// The URL to open is the line after "Open:".
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "http://www.example.localhost:") {
				urls <- line
			}
		}
	}()
	var spaURL string
	select {
	case spaURL = <-urls:
	case <-time.After(60 * time.Second):
		t.Fatalf("devstack printed no URL; stderr:\n%s", stderr.String())
	}
	if spaURL != fmt.Sprintf("http://www.example.localhost:%d/", p[0]) {
		t.Fatalf("devstack printed %q", spaURL)
	}
	spaFlow(t, "SPA_URL="+spaURL, "IDP=devidp", "USERNAME=alice", "ACCESS_TTL_MS=4000",
		"SCREENSHOT="+filepath.Join(t.TempDir(), "devstack.png"))
}
