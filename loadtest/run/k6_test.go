package main

import (
	"context"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/harness"
)

// TestK6Cmd: k6 runs the script of loadtest/ with the stack's addresses,
// the sessions file and the command line's duration and rate in its
// environment (-e), the caller's extra variables winning.
func TestK6Cmd(t *testing.T) {
	s := &stack{Stack: &harness.Stack{Dir: t.TempDir()}, nginxURL: "http://127.0.0.1:8000", idpURL: "http://127.0.0.1:8443", sessions: "/tmp/s.json"}
	env := func(cmd []string) map[string]string {
		m := map[string]string{}
		for i, a := range cmd {
			if a == "-e" {
				k, v, _ := strings.Cut(cmd[i+1], "=")
				m[k] = v
			}
		}
		return m
	}

	cmd := s.k6Cmd(context.Background(), options{script: "soak", k6: "bin/k6", duration: 90 * time.Second, rate: 500},
		map[string]string{"RATE": "7", "TERM_AT": "40s"}, io.Discard, io.Discard)
	if cmd.Args[0] != "bin/k6" || cmd.Args[1] != "run" || cmd.Args[len(cmd.Args)-1] != "loadtest/soak.js" {
		t.Errorf("k6 command %q, want bin/k6 run ... loadtest/soak.js", cmd.Args)
	}
	want := map[string]string{"BASE_URL": "http://127.0.0.1:8000", "ORIGIN": origin, "COOKIE_PREFIX": cookiePrefix,
		"SESSIONS_FILE": "/tmp/s.json", "IDP_URL": "http://127.0.0.1:8443", "DURATION": "90s", "RATE": "7", "TERM_AT": "40s"}
	if got := env(cmd.Args); !maps.Equal(got, want) {
		t.Errorf("k6 -e variables %v, want %v", got, want)
	}
	if !slices.Contains(cmd.Env, "K6_NO_USAGE_REPORT=true") {
		t.Error("K6_NO_USAGE_REPORT not set")
	}

	// The script's own duration and rate when the command line gives none.
	cmd = s.k6Cmd(context.Background(), options{script: "smoke", k6: "bin/k6"}, nil, io.Discard, io.Discard)
	got := env(cmd.Args)
	if _, ok := got["DURATION"]; ok {
		t.Errorf("DURATION=%s without -duration", got["DURATION"])
	}
	if _, ok := got["RATE"]; ok {
		t.Errorf("RATE=%s without -rate", got["RATE"])
	}
}
