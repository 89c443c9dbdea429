package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/proxy"
)

// TestRunRefusesBadArguments: a bad command line stops the benchmark
// before anything starts, with exit status 2 and a message saying what is
// wanted.
func TestRunRefusesBadArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"load above 1", []string{"-latency-load", "0.5,1.5"}, `-latency-load "0.5,1.5": want fractions in (0, 1]`},
		{"load not a number", []string{"-latency-load", "half"}, `-latency-load "half"`},
		{"environment without =", []string{"-proxy-env", "GOMAXPROCS"}, `-proxy-env "GOMAXPROCS": want KEY=VALUE`},
		{"short duration", []string{"-duration", "500ms"}, "-duration ≥ 1s"},
		{"fewer connections than threads", []string{"-t", "4", "-c", "2"}, "-c ≥ -t ≥ 1"},
		{"no rounds", []string{"-rounds", "0"}, "-rounds ≥ 1"},
		{"unknown flag", []string{"-bogus"}, "flag provided but not defined: -bogus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.msg) {
				t.Errorf("run(%q) = %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.msg)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing: no run started", stdout.String())
			}
		})
	}
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
