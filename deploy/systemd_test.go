// Package deploy holds no code: its tests check the systemd units and the
// configuration examples of this directory (contract §7, "Bare metal / VM").
package deploy

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// units are the binaries with a unit in systemd/, what each unit loads
// with LoadCredential=, and its KillMode= (the proxy's supervisor of
// workers stops them itself: mixed).
var units = []struct {
	binary      string
	credentials []string
	killMode    []string
}{
	{"oauth-agent", []string{"keys:/etc/tokenhandler/keys", "client-secret:/etc/tokenhandler/client-secret"}, nil},
	{"oauth-proxy", []string{"keys:/etc/tokenhandler/keys"}, []string{"mixed"}},
}

// hardening is what both units must say, setting by setting. A setting
// given several times must have all the values listed, in order.
var hardening = map[string][]string{
	"Type":                     {"exec"},
	"DynamicUser":              {"yes"},
	"User":                     {"tokenhandler"},
	"Group":                    {"tokenhandler"},
	"NoNewPrivileges":          {"yes"},
	"ProtectSystem":            {"strict"},
	"ProtectHome":              {"yes"},
	"PrivateTmp":               {"yes"},
	"PrivateDevices":           {"yes"},
	"ProtectKernelTunables":    {"yes"},
	"ProtectKernelModules":     {"yes"},
	"ProtectKernelLogs":        {"yes"},
	"ProtectControlGroups":     {"yes"},
	"ProtectClock":             {"yes"},
	"ProtectHostname":          {"yes"},
	"RestrictNamespaces":       {"yes"},
	"RestrictRealtime":         {"yes"},
	"RestrictSUIDSGID":         {"yes"},
	"LockPersonality":          {"yes"},
	"MemoryDenyWriteExecute":   {"yes"},
	"SystemCallArchitectures":  {"native"},
	"SystemCallFilter":         {"@system-service", "~@privileged @resources"},
	"SystemCallErrorNumber":    {"EPERM"},
	"CapabilityBoundingSet":    {""},
	"AmbientCapabilities":      {""},
	"RestrictAddressFamilies":  {"AF_INET AF_INET6 AF_UNIX"},
	"UMask":                    {"0077"},
	"MemoryMax":                {"512M"},
	"LimitNOFILE":              {"65536"},
	"RuntimeDirectory":         {"tokenhandler"},
	"RuntimeDirectoryMode":     {"0750"},
	"RuntimeDirectoryPreserve": {"yes"},
	"ConfigurationDirectory":   {"tokenhandler"},
	"ExecReload":               {"/bin/kill -HUP $MAINPID"},
	"Restart":                  {"on-failure"},
	"TimeoutStopSec":           {"40s"},
}

// readUnit returns the [Service] settings of a unit file, each with its
// values in order.
func readUnit(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	settings := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not a setting: %q", path, line)
			}
			settings[k] = append(settings[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return settings
}

func TestUnitsHardened(t *testing.T) {
	for _, u := range units {
		t.Run(u.binary, func(t *testing.T) {
			got := readUnit(t, filepath.Join("systemd", u.binary+".service"))
			for k, want := range hardening {
				if strings.Join(got[k], "\n") != strings.Join(want, "\n") {
					t.Errorf("%s=%q, want %q", k, got[k], want)
				}
			}
			cmd := "/usr/local/bin/" + u.binary + " -config /etc/tokenhandler/" + u.binary + ".yaml"
			if s := strings.Join(got["ExecStart"], "\n"); s != cmd {
				t.Errorf("ExecStart=%q, want %q", s, cmd)
			}
			if s := strings.Join(got["ExecStartPre"], "\n"); s != cmd+" -check-config" {
				t.Errorf("ExecStartPre=%q, want %q", s, cmd+" -check-config")
			}
			if !slices.Equal(got["KillMode"], u.killMode) {
				t.Errorf("KillMode=%q, want %q", got["KillMode"], u.killMode)
			}
			if s := strings.Join(got["LoadCredential"], " "); s != strings.Join(u.credentials, " ") {
				t.Errorf("LoadCredential=%q, want %q", got["LoadCredential"], u.credentials)
			}
		})
	}
}

// buildBinaries builds the daemons into a temporary directory, once per
// test, and returns it.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", dir+"/", "../cmd/oauth-agent", "../cmd/oauth-proxy").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// systemdAnalyze returns the path of systemd-analyze, or skips the test
// where it is missing; under CI (CI set) a missing tool fails instead.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		bintest.Missing(t, "systemd-analyze not found: apt-get install -y systemd")
	}
	return path
}

// renderUnit writes the unit into dir under its own name, with its
// binaries taken from bin instead of /usr/local/bin, and edit applied to
// the text; it returns the path.
func renderUnit(t *testing.T, dir, bin, name string, edit func(string) string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("systemd", name))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "/usr/local/bin/", bin+"/")
	if edit != nil {
		text = edit(text)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// tolerated matches lines systemd-analyze verify may print for a good unit
// in a container without systemd as PID 1. None is needed in the Debian 12
// image CI runs (systemd 252 prints nothing for these units); add a pattern
// here only with the environment that needs it.
var tolerated = regexp.MustCompile(`^$`)

// verify runs systemd-analyze verify on the unit at path and returns what
// makes it fail: every line it printed that is not tolerated, and its exit
// status. systemd-analyze exits 0 on unknown settings and bad values, which
// it prints as "..., ignoring", so its output is what the check reads.
func verify(t *testing.T, tool, path string) []string {
	t.Helper()
	out, err := exec.Command(tool, "verify", "--man=no", path).CombinedOutput()
	var problems []string
	for line := range strings.Lines(string(out)) {
		if line = strings.TrimSpace(line); !tolerated.MatchString(line) {
			problems = append(problems, line)
		}
	}
	if err != nil {
		problems = append(problems, "exit: "+err.Error())
	}
	return problems
}

func TestUnitsVerify(t *testing.T) {
	tool := systemdAnalyze(t)
	bin := buildBinaries(t)
	for _, u := range units {
		name := u.binary + ".service"
		t.Run(u.binary, func(t *testing.T) {
			path := renderUnit(t, t.TempDir(), bin, name, nil)
			if problems := verify(t, tool, path); len(problems) > 0 {
				t.Errorf("systemd-analyze verify %s:\n%s", name, strings.Join(problems, "\n"))
			}
		})
		// The check must catch what systemd-analyze only warns about.
		for _, bad := range []struct{ name, from, to string }{
			{"misspelt setting", "ProtectClock=yes", "ProtectClok=yes"},
			{"bad value", "MemoryMax=512M", "MemoryMax=lots"},
			{"missing binary", bin + "/" + u.binary + " -config", bin + "/no-such-binary -config"},
		} {
			t.Run(u.binary+"/"+bad.name, func(t *testing.T) {
				path := renderUnit(t, t.TempDir(), bin, name, func(s string) string {
					if !strings.Contains(s, bad.from) {
						t.Fatalf("%s has no %q", name, bad.from)
					}
					return strings.Replace(s, bad.from, bad.to, 1)
				})
				if problems := verify(t, tool, path); len(problems) == 0 {
					t.Errorf("systemd-analyze verify passed %s with %s", name, bad.to)
				}
			})
		}
	}
}

// TestUnitsExposure keeps systemd's own score of the sandbox (0 is the
// most locked down, 10 none at all) where docs/operations.md reports it.
func TestUnitsExposure(t *testing.T) {
	tool := systemdAnalyze(t)
	bin := buildBinaries(t)
	for _, u := range units {
		t.Run(u.binary, func(t *testing.T) {
			path := renderUnit(t, t.TempDir(), bin, u.binary+".service", nil)
			out, err := exec.Command(tool, "security", "--offline=yes", "--threshold=20", "--no-pager", path).CombinedOutput()
			if err != nil {
				t.Fatalf("systemd-analyze security: %v (exposure over 2.0)\n%s", err, out)
			}
			if !strings.Contains(string(out), "Overall exposure level for "+u.binary+".service: 1.") {
				t.Errorf("systemd-analyze security: want an exposure of 1.x\n%s", out)
			}
		})
	}
}

// TestExampleConfigs checks the configurations of systemd/ as the units'
// ExecStartPre does, with the credentials directory in a temporary one.
func TestExampleConfigs(t *testing.T) {
	bin := buildBinaries(t)
	for _, u := range units {
		t.Run(u.binary, func(t *testing.T) {
			dir := t.TempDir()
			// A fresh key and a test secret, in files as LoadCredential=
			// leaves them. Not the published test key: these are production
			// configurations (public origins), which refuse it.
			key := make([]byte, 32)
			rand.Read(key)
			files := map[string]string{
				"keys":          hex.EncodeToString(key) + "\n",
				"client-secret": "test-only-client-secret\n",
			}
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			data, err := os.ReadFile(filepath.Join("systemd", u.binary+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			credDir := "/run/credentials/" + u.binary + ".service/"
			if !strings.Contains(string(data), credDir) {
				t.Fatalf("%s.yaml does not read its secrets from %s", u.binary, credDir)
			}
			config := filepath.Join(dir, u.binary+".yaml")
			if err := os.WriteFile(config, []byte(strings.ReplaceAll(string(data), credDir, dir+"/")), 0o644); err != nil {
				t.Fatal(err)
			}
			stdout, stderr, err := checkConfig(bin, u.binary, config)
			if err != nil || !strings.Contains(stdout, "configuration OK") {
				t.Errorf("%s -check-config: %v\n%s%s", u.binary, err, stdout, stderr)
			}
			// The published test key in its place is refused.
			published := "7b99279ab87533d3c238db874a842a91ee26a76027f3c03c317504963d2c9926\n"
			if err := os.WriteFile(filepath.Join(dir, "keys"), []byte(published), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, stderr, err := checkConfig(bin, u.binary, config); err == nil || !strings.Contains(stderr, "published test key") {
				t.Errorf("%s -check-config with the published test key: %v\n%s", u.binary, err, stderr)
			}
			// Written in the shape both daemons share: no deprecated spelling.
			if stderr != "" {
				t.Errorf("%s -check-config warns:\n%s", u.binary, stderr)
			}
		})
	}
}

// checkConfig runs binary -config path -check-config from bin with an empty
// environment (no TH_* variable from the test's) and returns its output.
func checkConfig(bin, binary, path string) (stdout, stderr string, err error) {
	cmd := exec.Command(filepath.Join(bin, binary), "-config", path, "-check-config")
	cmd.Env = []string{}
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// TestExamples: the full examples check, in the shared shape (no warning).
func TestExamples(t *testing.T) {
	bin := buildBinaries(t)
	for _, binary := range []string{"oauth-agent", "oauth-proxy"} {
		stdout, stderr, err := checkConfig(bin, binary, binary+".example.yaml")
		if err != nil || !strings.Contains(stdout, "configuration OK") || stderr != "" {
			t.Errorf("%s -check-config %s.example.yaml: %v\nstdout: %s\nstderr: %s", binary, binary, err, stdout, stderr)
		}
	}
}

// TestOldShapeConfigs: the examples as they were before the agent and the
// proxy shared one shape (issue #16) still check, and -check-config warns
// once per old spelling, naming the new one.
func TestOldShapeConfigs(t *testing.T) {
	bin := buildBinaries(t)
	for _, tt := range []struct {
		binary   string
		warnings []string
	}{
		{"oauth-agent", []string{
			"cors_enabled (line 114) is deprecated: write cors.enabled",
			"cookie_name_prefix (line 76) is deprecated: write cookie.prefix",
			"cookie_format (line 90) is deprecated: write cookie.format",
			"cookie.host_prefix: false is deprecated: write cookie.name_prefix: none",
		}},
		{"oauth-proxy", []string{
			"cookie_name_prefix (line 19) is deprecated: write cookie.prefix",
			"cookie_format (line 44) is deprecated: write cookie.format",
			"cookie.host_prefix: false is deprecated: write cookie.name_prefix: none",
		}},
	} {
		t.Run(tt.binary, func(t *testing.T) {
			path := filepath.Join("testdata", tt.binary+".before-16.yaml")
			stdout, stderr, err := checkConfig(bin, tt.binary, path)
			if err != nil || !strings.Contains(stdout, "configuration OK") {
				t.Fatalf("-check-config: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
			}
			var want strings.Builder
			for _, w := range tt.warnings {
				want.WriteString(tt.binary + ": " + path + ": warning: " + w + "\n")
			}
			if stderr != want.String() {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want.String())
			}
		})
	}
}

// TestAgentStateDirectory: the agent's unit gives it the directory its
// configuration keeps the revocation list in (ProtectSystem=strict leaves
// no other place writable), and the proxy's unit gives it none.
func TestAgentStateDirectory(t *testing.T) {
	agent := readUnit(t, filepath.Join("systemd", "oauth-agent.service"))
	if s := strings.Join(agent["StateDirectory"], " "); s != "tokenhandler" {
		t.Errorf("oauth-agent.service StateDirectory=%q, want tokenhandler", s)
	}
	if s := strings.Join(agent["StateDirectoryMode"], " "); s != "0700" {
		t.Errorf("oauth-agent.service StateDirectoryMode=%q, want 0700", s)
	}
	if proxy := readUnit(t, filepath.Join("systemd", "oauth-proxy.service")); proxy["StateDirectory"] != nil {
		t.Errorf("oauth-proxy.service has StateDirectory=%q: the proxy keeps no state", proxy["StateDirectory"])
	}
	data, err := os.ReadFile(filepath.Join("systemd", "oauth-agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^revocation: \{store: embedded, state_dir: /var/lib/tokenhandler[,}]`).Match(data) {
		t.Error("oauth-agent.yaml does not keep the revocation list in /var/lib/tokenhandler")
	}
}

// TestExamplesWithApps: the apps block each example file shows in comments
// checks once uncommented, its key and secret files in place, and
// -check-config lists both applications.
func TestExamplesWithApps(t *testing.T) {
	bin := buildBinaries(t)
	for _, binary := range []string{"oauth-agent", "oauth-proxy"} {
		dir := t.TempDir()
		for _, name := range []string{"shop.keys", "admin.keys"} {
			key := make([]byte, 32)
			rand.Read(key)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "admin-client-secret"), []byte("test-only-client-secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(binary + ".example.yaml")
		if err != nil {
			t.Fatal(err)
		}
		text, block, found := strings.Cut(string(data), "\n# apps:\n")
		if !found {
			t.Fatalf("%s.example.yaml shows no apps block", binary)
		}
		text += "\napps:\n"
		for line := range strings.SplitSeq(block, "\n") {
			text += strings.TrimPrefix(line, "# ") + "\n"
		}
		config := filepath.Join(dir, binary+".yaml")
		if err := os.WriteFile(config, []byte(strings.ReplaceAll(text, "/etc/tokenhandler/", dir+"/")), 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, err := checkConfig(bin, binary, config)
		if err != nil || !strings.Contains(stdout, "configuration OK (apps: 2; shop: hosts api.shop.example") || !strings.Contains(stdout, "; admin: hosts api.admin.example") {
			t.Errorf("%s -check-config with apps: %v\nstdout: %s\nstderr: %s", binary, err, stdout, stderr)
		}
	}
}
