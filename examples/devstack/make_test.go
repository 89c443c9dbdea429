//go:build linux

package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/examples/devstack/devstacktest"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/nginx/nginxtest"
)

// The repository's root, where the Makefile is.
const root = "../.."

// noError is what make prints when a recipe fails or is interrupted
// ("make: *** [Makefile:23: run] Error 1", "... Interrupt").
var noError = regexp.MustCompile(`\*\*\*|Error|Interrupt`)

// TestMakeRunCtrlC runs `make run ARGS=...` at a terminal, as a newcomer
// does, and types Ctrl-C: every part stops, devstack says so, make exits
// 0 without an error line, and nothing is left running or listening.
func TestMakeRunCtrlC(t *testing.T) {
	for _, tc := range []struct {
		target string
		nginx  bool
	}{{"run", false}, {"run-nginx", true}} {
		t.Run(tc.target, func(t *testing.T) {
			var env []string
			if tc.nginx {
				env = append(env, "NGINX="+needNGINX(t))
			}
			p := devstacktest.FreePorts(t)
			s := devstacktest.Start(t, devstacktest.Config{
				Dir: root, Target: tc.target, Ports: p, Env: env,
				Args: []string{"-access-token-ttl", "30s", "-log-level", "debug"},
			})
			if left := s.Left(); len(left) < 5 {
				t.Fatalf("the stack is up, yet only this answers: %v", left)
			}
			// Ctrl-Z would stop devstack and leave make waiting: it is
			// refused with a word on Ctrl-C, and the stack keeps serving.
			s.Type([]byte{0x1a})
			if !bintest.Within(10*time.Second, func() bool {
				return strings.Contains(s.Output(), "Ctrl-Z does not suspend the stack; Ctrl-C stops it")
			}) {
				t.Errorf("no word after Ctrl-Z:\n%s", s.Output())
			}
			c := &http.Client{Timeout: 5 * time.Second}
			if resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/config.json", p.SPA)); err != nil {
				t.Errorf("after Ctrl-Z the SPA does not answer: %v", err)
			} else {
				resp.Body.Close()
			}
			err := s.Interrupt(30 * time.Second)
			out := s.Output()
			t.Logf("make %s:\n%s", tc.target, out)
			if err != nil {
				t.Errorf("make %s after Ctrl-C: %v, want exit 0", tc.target, err)
			}
			if m := noError.FindString(out); m != "" {
				t.Errorf("make %s printed %q", tc.target, m)
			}
			if !strings.Contains(out, "devstack: stopped") {
				t.Error(`devstack did not print "devstack: stopped"`)
			}
			if left := s.Left(); len(left) > 0 {
				t.Errorf("left after Ctrl-C: %v", left)
			}
		})
	}
}

// TestMakeRunSIGINT sends SIGINT to make's process group without a
// terminal, as a script or CI does. devstack stops cleanly and exits 0
// (make prints no error line, which it does for a child that failed or was
// killed), and nothing is left; make itself then dies of the SIGINT it got
// too, as GNU make does: only at a terminal can devstack keep it from make
// (TestMakeRunCtrlC).
func TestMakeRunSIGINT(t *testing.T) {
	s := devstacktest.Start(t, devstacktest.Config{Dir: root, Target: "run", Ports: devstacktest.FreePorts(t), NoTerminal: true})
	err := s.Interrupt(30 * time.Second)
	out := s.Output()
	t.Logf("make run: %v\n%s", err, out)
	if m := noError.FindString(out); m != "" {
		t.Errorf("make run printed %q", m)
	}
	if !strings.Contains(out, "devstack: stopped") {
		t.Error(`devstack did not print "devstack: stopped"`)
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("the logs hold colour codes, though they went to a pipe")
	}
	if left := s.Left(); len(left) > 0 {
		t.Errorf("left after SIGINT: %v", left)
	}
}

// TestMakeRunHelp: `make run ARGS=-h` prints the flags and exits 0.
func TestMakeRunHelp(t *testing.T) {
	cmd := exec.Command("make", "--no-print-directory", "run", "ARGS=-h")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("make run ARGS=-h: %v, want exit 0\n%s", err, out)
	}
	for _, want := range []string{"-access-token-ttl", "-log-level", "-spa-port"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("make run ARGS=-h lacks %q:\n%s", want, out)
		}
	}
}

// needNGINX returns the NGINX executable (nginxtest.Binary).
func needNGINX(t *testing.T) string { return nginxtest.Binary(t) }
