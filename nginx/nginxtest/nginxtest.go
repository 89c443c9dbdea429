// Package nginxtest runs real NGINX with one configuration of package
// nginx, in the foreground, on a free loopback port: for tests (Start
// stops it when the test ends) and the harnesses (Run: bench/run,
// loadtest/run, examples/devstack). Only they import it; NGINX in
// production is run by its own service manager.
package nginxtest

import (
	"context"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/nginx"
)

// Binary returns the NGINX executable (Find), or, without one,
// reports it missing (bintest.Missing: skipped locally, failed in CI).
func Binary(t testing.TB) string {
	t.Helper()
	p, err := Find()
	if err != nil {
		bintest.Missing(t, "nginx not found: apt-get install -y nginx (or set NGINX)")
	}
	return p
}

// Start renders mode with p and runs NGINX binary bin on it (Run) until the test
// ends; its log is printed when the test failed. p's RunDir is a fresh
// temporary directory, WorkerProcesses 1 and Listen "127.0.0.1:0", whatever
// p said.
func Start(t testing.TB, bin, mode string, p nginx.Params) *Process {
	t.Helper()
	p.RunDir = t.TempDir()
	p.WorkerProcesses = 1
	p.Listen = "127.0.0.1:0"
	n, err := Run(t.Context(), bin, mode, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Stop(ctx); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("nginx (%s) log:\n%s", mode, n.Log())
		}
	})
	return n
}
