package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// k6Cmd is `k6 run loadtest/<script>.js` against the stack. Cancelling ctx
// interrupts k6 (SIGINT, so it still prints its summary) and kills it
// 10 s later.
func (s *stack) k6Cmd(ctx context.Context, o options, extra map[string]string, stdout, stderr io.Writer) *exec.Cmd {
	env := map[string]string{
		"BASE_URL":      s.nginxURL,
		"ORIGIN":        origin,
		"COOKIE_PREFIX": cookiePrefix,
		"SESSIONS_FILE": s.sessions,
		"IDP_URL":       s.idpURL,
	}
	if o.duration > 0 {
		env["DURATION"] = strconv.Itoa(int(o.duration.Seconds())) + "s"
	}
	if o.rate > 0 {
		env["RATE"] = strconv.Itoa(o.rate)
	}
	maps.Copy(env, extra)
	args := []string{"run", "--no-usage-report", "--no-color", "--quiet",
		"--summary-trend-stats", "avg,med,p(90),p(99),max"}
	for k, v := range env {
		args = append(args, "-e", k+"="+v)
	}
	args = append(args, filepath.Join("loadtest", o.script+".js"))
	cmd := exec.CommandContext(ctx, o.k6, args...)
	cmd.Env = append(os.Environ(), "K6_NO_USAGE_REPORT=true")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// k6 runs the script to the end; an error when k6 fails (exit 99: a
// threshold failed).
func (s *stack) k6(ctx context.Context, o options, extra map[string]string, stdout, stderr io.Writer) error {
	fmt.Fprintf(stdout, "loadtest: k6 run loadtest/%s.js against %s\n", o.script, s.nginxURL)
	if err := s.k6Cmd(ctx, o, extra, stdout, stderr).Run(); err != nil {
		return fmt.Errorf("k6 %s: %w (exit 99 means a threshold failed)", o.script, err)
	}
	return nil
}
