package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/harness"
)

// TestStartProxy: the proxy of a load test starts from proxyConfig's file
// without a deprecation warning (startProxy refuses one) and is ready.
func TestStartProxy(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// A Binary builds the package in the working directory.
	t.Chdir(filepath.Join(wd, "../../cmd/oauth-proxy"))
	bin := &bintest.Binary{Name: "oauth-proxy", Unset: []string{"TH_ENCRYPTION_KEYS"}}
	path := bin.Path(t)
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(path)) })
	t.Chdir(wd)

	s := &stack{Stack: &harness.Stack{Dir: t.TempDir()}, oldKey: string(crypto.GenerateKey().AppendHex(nil))}
	defer s.Stop(io.Discard, false)
	api := bintest.FreeTCPAddr(t)
	p, err := s.startProxy(context.Background(), filepath.Dir(path), "proxy-a", api)
	if err != nil {
		t.Fatal(err)
	}
	if p.addr == "" {
		t.Error("no address")
	}
	// The soak reads the proxy's memory from its own metrics page.
	if r, peak := rss(p), memory(p, "process_resident_memory_peak_bytes"); r <= 0 || peak < r {
		t.Errorf("RSS %d, peak %d bytes: want a positive RSS and a peak no lower", r, peak)
	}
}
