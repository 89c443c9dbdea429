// Package nginxtest runs real NGINX in other packages' tests: one
// configuration of package nginx, in the foreground, on a free loopback
// port, stopped when the test ends. Only tests import it.
package nginxtest

import (
	"context"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/nginx"
)

// Binary returns the NGINX executable (nginx.Binary), or, without one,
// reports it missing (bintest.Missing: skipped locally, failed in CI).
func Binary(t testing.TB) string {
	t.Helper()
	p, err := nginx.Binary()
	if err != nil {
		bintest.Missing(t, "nginx not found: apt-get install -y nginx (or set NGINX)")
	}
	return p
}

// Start renders mode with p and runs NGINX binary bin on it until the test
// ends; its log is printed when the test failed. p's RunDir is a fresh
// temporary directory, WorkerProcesses 1 and Listen "127.0.0.1:0", whatever
// p said.
func Start(t testing.TB, bin, mode string, p nginx.Params) *nginx.Process {
	t.Helper()
	p.RunDir = t.TempDir()
	p.WorkerProcesses = 1
	p.Listen = "127.0.0.1:0"
	n, err := nginx.Start(t.Context(), bin, mode, p)
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
