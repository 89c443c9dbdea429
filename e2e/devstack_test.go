//go:build e2e

// Package e2e holds the browser end-to-end tests (`make e2e`): headless
// Debian Chromium, driven by playwright-core (spa-flow.mjs), against the
// development stack and against NGINX deployments.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/examples/spa"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/nginx/nginxtest"
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
	bintest.Missing(t, "browser tests need "+strings.Join(missing, ", ")+": apt-get install -y nginx chromium && npm ci --prefix e2e")
}

// needNGINX returns the NGINX executable (nginxtest.Binary).
func needNGINX(t *testing.T) string { return nginxtest.Binary(t) }

// spaFlow runs spa-flow.mjs with env and fails the test when a step fails.
// It returns how many times the two-tab refresh step tried again because
// the second tab's refresh went out after the first's rotation: each such
// attempt made two refreshes, and two grants, of its own.
func spaFlow(t *testing.T, env ...string) (retries int) {
	t.Helper()
	out := browserFlow(t, "spa-flow.mjs", 3*time.Minute, `[1-9]\d* passed, 0 failed`, env...)
	return len(regexp.MustCompile(`(?m)^ +attempt \d+: the second refresh came after the first's rotation; again$`).FindAll(out, -1))
}

// browserFlow runs `node script` with env added to the test's environment,
// for at most timeout, logs its output, and fails t unless it exits 0
// having printed a line that matches passed (a regular expression).
func browserFlow(t *testing.T, script string, timeout time.Duration, passed string, env ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("%s:\n%s", script, out)
	if err != nil {
		t.Fatalf("the browser flow failed: %v", err)
	}
	if !regexp.MustCompile(`(?m)^` + passed + `$`).Match(out) {
		t.Fatalf("the browser flow printed no line %q", passed)
	}
	return out
}

// TestDevStack runs `make run`'s stack (examples/devstack) and drives the
// SPA in Chromium: log in as a demo user, the session panel, the API
// answers with the user's subject, the callback URL replayed, a reload and
// an API call after expiry each refresh once (counted in the agent's
// metrics), the Refresh button, logout, a cancelled login. With
// E2E_SCREENSHOT_DIR set, the screenshots spa-logged-in.png and
// spa-after-refresh.png are kept there.
func TestDevStack(t *testing.T) {
	need(t)
	ds := startDevstack(t, "")
	dir := os.Getenv("E2E_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	spaFlow(t, "SPA_URL="+ds.spaURL, "IDP=devidp", "USERNAME=alice", "ACCESS_TTL_MS=4000", "METRICS_URL="+ds.metricsURL,
		"SCREENSHOT="+filepath.Join(dir, "spa-logged-in.png"), "SCREENSHOT_REFRESHED="+filepath.Join(dir, "spa-after-refresh.png"))
}

// TestDevStackNGINX runs `make run-nginx`'s stack (examples/devstack
// -nginx), where the SPA calls the agent and the API through NGINX, and
// drives the SPA as TestDevStack does.
func TestDevStackNGINX(t *testing.T) {
	need(t)
	ds := startDevstack(t, needNGINX(t))
	spaFlow(t, "SPA_URL="+ds.spaURL, "IDP=devidp", "USERNAME=bob", "ACCESS_TTL_MS=4000", "METRICS_URL="+ds.metricsURL)
}

// devstack is a running examples/devstack: the URL it prints, and its
// agent's metrics listener (METRICS_URL of spa-flow.mjs).
type devstack struct {
	spaURL, metricsURL string
}

// startDevstack builds and starts examples/devstack on free ports, with
// access tokens of 4 s, the agent's metrics listener on, and with NGINX
// when nginxBin is not "". Cleanup stops devstack with SIGTERM.
func startDevstack(t *testing.T, nginxBin string) devstack {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "devstack")
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/devstack").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := bintest.FreePorts(t, 7)
	args := []string{"-spa-port", fmt.Sprint(p[0]), "-agent-port", fmt.Sprint(p[1]), "-proxy-port", fmt.Sprint(p[2]),
		"-api-port", fmt.Sprint(p[3]), "-idp-port", fmt.Sprint(p[4]), "-access-token-ttl", "4s", "-agent-metrics-port", fmt.Sprint(p[6])}
	if nginxBin != "" {
		args = append(args, "-nginx", "-nginx-port", fmt.Sprint(p[5]))
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "NGINX="+nginxBin)
	proc := bintest.Exec(t, "devstack", cmd)
	t.Cleanup(func() { proc.Stop(t, 10*time.Second) })
	// The URL to open is the line after "Open:".
	spaURL := proc.WaitLine(t, 60*time.Second, "http://www.example.localhost:")
	if spaURL != fmt.Sprintf("http://www.example.localhost:%d/", p[0]) {
		t.Fatalf("devstack printed %q", spaURL)
	}

	// The SPA calls the agent and the API where they should be.
	agentPort, apiPort := p[1], p[2]
	if nginxBin != "" {
		agentPort, apiPort = p[5], p[5]
	}
	var cfg spa.Config
	getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/config.json", p[0]), &cfg)
	if want := fmt.Sprintf("http://api.example.localhost:%d/oauth-agent", agentPort); cfg.AgentBaseURL != want {
		t.Fatalf("the SPA calls the agent at %q, want %q", cfg.AgentBaseURL, want)
	}
	if want := fmt.Sprintf("http://api.example.localhost:%d/api", apiPort); cfg.APIBaseURL != want {
		t.Fatalf("the SPA calls the API at %q, want %q", cfg.APIBaseURL, want)
	}
	return devstack{spaURL: spaURL, metricsURL: fmt.Sprintf("http://127.0.0.1:%d", p[6])}
}

// getJSON GETs url and decodes its JSON answer into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
