package curl

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// need skips the test when a tool the script runs is missing, unless CI is
// set, where it fails: CI has them (.ci/run installs curl when missing).
func need(t *testing.T, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	bintest.Missing(t, "the curl walkthrough needs "+strings.Join(missing, " and ")+": apt-get install -y curl")
}

// stack is a running `make run` stack (examples/devstack).
type stack struct{ spa, agent, api string }

// startDevstack builds examples/devstack and starts it on free ports;
// cleanup stops it with SIGTERM and checks that it exits 0.
func startDevstack(t *testing.T) stack {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "devstack")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/tokenhandler/tokenhandler/examples/devstack").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := bintest.FreePorts(t, 5)
	cmd := exec.Command(bin, "-spa-port", fmt.Sprint(p[0]), "-agent-port", fmt.Sprint(p[1]),
		"-proxy-port", fmt.Sprint(p[2]), "-api-port", fmt.Sprint(p[3]), "-idp-port", fmt.Sprint(p[4]))
	proc := bintest.Exec(t, "devstack", cmd)
	t.Cleanup(func() { proc.Stop(t, 15*time.Second) })
	u := proc.WaitLine(t, 90*time.Second, "http://www.example.localhost:")
	if want := fmt.Sprintf("http://www.example.localhost:%d/", p[0]); u != want {
		t.Fatalf("devstack printed %q, want %q", u, want)
	}
	return stack{
		spa:   u,
		agent: fmt.Sprintf("http://api.example.localhost:%d/oauth-agent", p[1]),
		api:   fmt.Sprintf("http://api.example.localhost:%d/api", p[2]),
	}
}

// walkthrough runs walkthrough.sh with args and env added to a clean
// environment (no proxy, none of the script's variables), and returns its
// standard output, standard error and exit code.
func walkthrough(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"walkthrough.sh"}, args...)...)
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "SPA_URL", "AGENT_URL", "API_URL", "DEMO_USER", "COOKIE_PREFIX", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	t.Logf("walkthrough.sh %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return out.String(), errOut.String(), code
}

// TestWalkthrough runs walkthrough.sh against `make run`'s stack: it logs
// in as a demo user through the development IdP's login form, gets the
// API's answer through the OAuth Proxy, refreshes and logs out, and exits
// 0; the base URLs come from flags or from the environment.
func TestWalkthrough(t *testing.T) {
	need(t, "bash", "curl")
	s := startDevstack(t)

	for _, tc := range []struct {
		name string
		env  []string
		args []string
		user string
	}{
		{"flags", nil, []string{"-spa", s.spa, "-agent", s.agent, "-api", s.api, "-user", "alice"}, "alice"},
		{"environment", []string{"SPA_URL=" + s.spa, "AGENT_URL=" + s.agent, "API_URL=" + s.api, "DEMO_USER=carol"}, nil, "carol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := walkthrough(t, tc.env, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d, want 0; stderr: %s", code, stderr)
			}
			for _, want := range []string{
				`API answer: {"message":"Hello from the demo API","subject":"` + tc.user + `"`,
				`API answer: {"from":"walkthrough.sh"}`,
				"→ 204; the API still answers for " + tc.user,
				`→ 401 {"code":"unauthorized"`,
				"walkthrough: done",
			} {
				if !strings.Contains(stdout, want) {
					t.Errorf("the output lacks %q", want)
				}
			}
			// Nothing secret on the terminal: no JWT, no authorization
			// code, no cookie value.
			for _, secret := range []string{"eyJ", "code=", "example-at=", "example-csrf="} {
				if strings.Contains(stdout+stderr, secret) {
					t.Errorf("the output holds %q", secret)
				}
			}
		})
	}

	t.Run("unknown user", func(t *testing.T) {
		_, stderr, code := walkthrough(t, nil, "-spa", s.spa, "-agent", s.agent, "-api", s.api, "-user", "mallory")
		if code != 1 || !strings.Contains(stderr, `the IdP refused the login of "mallory"`) {
			t.Errorf("exit %d, stderr %q; want 1 and the IdP's refusal", code, stderr)
		}
	})
	t.Run("wrong cookie prefix", func(t *testing.T) {
		// The CSRF header is named after the prefix: x-other-csrf is no
		// CSRF header, and the proxy refuses the POST.
		_, stderr, code := walkthrough(t, nil, "-spa", s.spa, "-agent", s.agent, "-api", s.api, "-cookie-prefix", "other")
		if code != 1 || !strings.Contains(stderr, "the API's echo: HTTP 401") {
			t.Errorf("exit %d, stderr %q; want 1 and the echo refused", code, stderr)
		}
	})
}

// TestFlags checks the script's own flag handling, without a stack.
func TestFlags(t *testing.T) {
	need(t, "bash", "curl")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-h"}, 0, "Usage:"},
		{[]string{"--help"}, 0, "Usage:"},
		{[]string{"-nope"}, 2, "unknown flag -nope"},
		{[]string{"-user"}, 2, "flag -user needs a value"},
		{[]string{"-api", "api.example.localhost/api"}, 2, "API_URL is not an http(s) URL"},
	} {
		stdout, stderr, code := walkthrough(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(stdout+stderr, tc.want) {
			t.Errorf("walkthrough.sh %v: exit %d, output %q; want %d and %q", tc.args, code, stdout+stderr, tc.code, tc.want)
		}
	}
}
