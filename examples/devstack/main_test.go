package main

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// portArgs returns flags that put every part on a free port.
func portArgs(t *testing.T) []string {
	p := bintest.FreePorts(t, 7)
	return []string{"-spa-port", fmt.Sprint(p[0]), "-agent-port", fmt.Sprint(p[1]), "-proxy-port", fmt.Sprint(p[2]),
		"-api-port", fmt.Sprint(p[3]), "-idp-port", fmt.Sprint(p[4]), "-nginx-port", fmt.Sprint(p[5]), "-agent-metrics-port", fmt.Sprint(p[6])}
}

func TestHelp(t *testing.T) {
	usage := []string{`make run ARGS="flags"`, "-spa-port", "-access-token-ttl", "-log-level"}
	bintest.Main(run).RunCases(t, []bintest.Case{
		{Name: "-h", Args: []string{"-h"}, Code: 0, Stderr: usage, Quiet: true},
		{Name: "-help", Args: []string{"-help"}, Code: 0, Stderr: usage, Quiet: true},
		{Name: "--help", Args: []string{"--help"}, Code: 0, Stderr: usage, Quiet: true},
	})
}

func TestBadArgs(t *testing.T) {
	bintest.Main(run).RunCases(t, []bintest.Case{
		{Name: "unknown flag", Args: []string{"-no-such-flag"}, Code: 2, Stderr: []string{"flag provided but not defined: -no-such-flag"}, Quiet: true},
		{Name: "bad duration", Args: []string{"-access-token-ttl", "30"}, Code: 2, Stderr: []string{`invalid value "30" for flag -access-token-ttl`}, Quiet: true},
		{Name: "not a flag", Args: []string{"30s"}, Code: 2, Stderr: []string{`unexpected argument "30s"`}, Quiet: true},
	})
}

// TestBusyPort: a port in use stops devstack before it starts anything,
// with a message that names the port, what wanted it and the flag that
// moves it.
func TestBusyPort(t *testing.T) {
	for _, tc := range []struct {
		flag, what string
		extra      []string
	}{
		{"-spa-port", "the SPA", nil},
		{"-agent-port", "the OAuth Agent", nil},
		{"-proxy-port", "the OAuth Proxy", nil},
		{"-api-port", "the demo API", nil},
		{"-idp-port", "the development OpenID Provider", nil},
		{"-nginx-port", "NGINX", []string{"-nginx"}},
		{"-agent-metrics-port", "the OAuth Agent's metrics", nil},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			busy, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			port := busy.Addr().(*net.TCPAddr).Port
			args := append(append(portArgs(t), tc.extra...), tc.flag, fmt.Sprint(port))
			var stdout, stderr strings.Builder
			if code := run(args, &stdout, &stderr); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			want := fmt.Sprintf(`devstack: port %d is in use (%s): move it with %s N (make run ARGS="%s N")`, port, tc.what, tc.flag, tc.flag)
			if got := strings.TrimSpace(stderr.String()); got != want {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: %q; the stack must not start", stdout.String())
			}
		})
	}
}

func TestPortFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"twice", []string{"-agent-port", "8081", "-proxy-port", "8081"}, "-agent-port and -proxy-port are both 8081: give each part a port of its own"},
		{"zero", []string{"-spa-port", "0"}, "-spa-port 0: not a port (1 to 65535)"},
		{"too big", []string{"-idp-port", "65536"}, "-idp-port 65536: not a port (1 to 65535)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			if code := run(append(portArgs(t), tc.args...), &stdout, &stderr); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr.String())
			}
		})
	}
}
