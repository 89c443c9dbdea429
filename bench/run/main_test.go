package main

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/proxy"
)

// TestRunRefusesBadArguments: a bad command line stops the benchmark
// before anything starts, with exit status 2 and a message saying what is
// wanted.
func TestRunRefusesBadArguments(t *testing.T) {
	bintest.Main(run).RunCases(t, []bintest.Case{
		{Name: "load above 1", Args: []string{"-latency-load", "0.5,1.5"}, Code: 2, Stderr: []string{`-latency-load "0.5,1.5": want fractions in (0, 1]`}, Quiet: true},
		{Name: "load not a number", Args: []string{"-latency-load", "half"}, Code: 2, Stderr: []string{`-latency-load "half"`}, Quiet: true},
		{Name: "environment without =", Args: []string{"-proxy-env", "GOMAXPROCS"}, Code: 2, Stderr: []string{`-proxy-env "GOMAXPROCS": want KEY=VALUE`}, Quiet: true},
		{Name: "short duration", Args: []string{"-duration", "500ms"}, Code: 2, Stderr: []string{"-duration ≥ 1s"}, Quiet: true},
		{Name: "fewer connections than threads", Args: []string{"-t", "4", "-c", "2"}, Code: 2, Stderr: []string{"-c ≥ -t ≥ 1"}, Quiet: true},
		{Name: "no rounds", Args: []string{"-rounds", "0"}, Code: 2, Stderr: []string{"-rounds ≥ 1"}, Quiet: true},
		{Name: "no second binary", Args: []string{"-proxy-b", "/nonexistent/oauth-proxy"}, Code: 2, Stderr: []string{`-proxy-b "/nonexistent/oauth-proxy": want an oauth-proxy binary`}, Quiet: true},
		{Name: "unknown flag", Args: []string{"-bogus"}, Code: 2, Stderr: []string{"flag provided but not defined: -bogus"}, Quiet: true},
	})
}

// TestProxyConfig: the benchmark's proxy configuration is one the proxy
// accepts, with its auth endpoint on for auth_request mode and the extra
// settings a variant adds.
func TestProxyConfig(t *testing.T) {
	s := &stack{key: string(crypto.GenerateKey().AppendHex(nil)), api: "127.0.0.1:9"}
	cfg, err := proxy.ParseConfig(s.proxyConfig("127.0.0.1:1", "metrics_listen: 127.0.0.1:2\ntimeouts: {park: 0s}\n"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:1" || cfg.MetricsListen != "127.0.0.1:2" || !cfg.AuthEndpoint || cfg.Warnings != nil {
		t.Errorf("listen %s, metrics %s, auth endpoint %v, warnings %q", cfg.Listen, cfg.MetricsListen, cfg.AuthEndpoint, cfg.Warnings)
	}
}
