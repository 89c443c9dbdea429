package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TEST KEYS: the SPEC §3 vector key and another, public on purpose.
const (
	specKey    = "7b99279ab87533d3c238db874a842a91ee26a76027f3c03c317504963d2c9926"
	otherKey   = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	specCookie = "AUixxnN28w2MjVK7sMZ3GqErPlw15NwIng-V8amEv5eu43Wr1nzhif1hU2QpKbw_L55GVxD0Kz4gKVG539ywk6g"
	specPlain  = "42665300-efe8-419d-be52-07b53e208f46"
)

type result struct {
	code           int
	stdout, stderr string
}

func thctl(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func TestRun(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keyFile, []byte("# sealing key first\n"+otherKey+"\n\n"+specKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TH_ENCRYPTION_KEYS": otherKey + ", " + specKey}
	tests := []struct {
		name       string
		env        map[string]string
		stdin      string
		args       []string
		wantCode   int
		wantStdout string // exact, when set
		wantStderr string // substring, when set
	}{
		{"open the SPEC vector", nil, "", []string{"open", "-key", specKey, specCookie}, 0, specPlain + "\n", ""},
		{"open from stdin", nil, specCookie + "\n", []string{"open", "-key", specKey}, 0, specPlain + "\n", ""},
		{"open with the key second in -key", nil, "", []string{"open", "-key", otherKey + "," + specKey, specCookie}, 0, specPlain + "\n", ""},
		{"open with keys from the environment", env, "", []string{"open", specCookie}, 0, specPlain + "\n", ""},
		{"open with keys from a file", nil, "", []string{"open", "-key-file", keyFile, specCookie}, 0, specPlain + "\n", ""},
		{"open with the wrong key", nil, "", []string{"open", "-key", otherKey, specCookie}, 1, "", "thctl: cannot open the cookie"},
		{"open garbage", nil, "", []string{"open", "-key", specKey, "not a cookie"}, 1, "", "cannot open the cookie"},
		{"open padded", nil, "", []string{"open", "-key", specKey, specCookie + "="}, 1, "", "cannot open the cookie"},
		{"no key", nil, "", []string{"open", specCookie}, 2, "", "no key: give -key or -key-file, or set TH_ENCRYPTION_KEYS"},
		{"short key", nil, "", []string{"open", "-key", "abcd", specCookie}, 1, "", "thctl: -key: crypto: key 1 must be 64 hex characters"},
		{"bad key in environment", map[string]string{"TH_ENCRYPTION_KEYS": specKey + ",zz"}, "", []string{"open", specCookie}, 1, "", "TH_ENCRYPTION_KEYS: crypto: key 2 must be"},
		{"duplicate keys", nil, "", []string{"open", "-key", specKey + "," + specKey, specCookie}, 1, "", "key 2 duplicates key 1"},
		{"missing key file", nil, "", []string{"open", "-key-file", "/nonexistent/keys", specCookie}, 1, "", "thctl: -key-file: open /nonexistent/keys"},
		{"both key sources", nil, "", []string{"open", "-key", specKey, "-key-file", keyFile, specCookie}, 2, "", "not both"},
		{"bad format", nil, "", []string{"seal", "-key", specKey, "-format", "v2", "x"}, 1, "", `unknown cookie format "v2"`},
		{"empty DARE", nil, "", []string{"seal", "-key", specKey, "-format", "dare", ""}, 1, "", "cannot hold an empty plaintext"},
		{"two arguments", nil, "", []string{"open", "-key", specKey, "a", "b"}, 2, "", "at most one argument"},
		{"unknown flag", nil, "", []string{"open", "-kee", specKey}, 2, "", "flag provided but not defined: -kee"},
		{"unknown command", nil, "", []string{"decrypt"}, 2, "", `unknown command "decrypt"`},
		{"no command", nil, "", nil, 2, "", "usage:"},
		{"keygen with an argument", nil, "", []string{"keygen", "x"}, 2, "", "keygen takes no arguments"},
		{"help", nil, "", []string{"help"}, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := thctl(t, tt.env, tt.stdin, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tt.wantCode, r.stderr)
			}
			if tt.wantStdout != "" && r.stdout != tt.wantStdout {
				t.Fatalf("stdout %q, want %q", r.stdout, tt.wantStdout)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Fatalf("stderr %q, want it to contain %q", r.stderr, tt.wantStderr)
			}
			if r.code == 1 && strings.Count(r.stderr, "\n") != 1 {
				t.Fatalf("failure message is not one line: %q", r.stderr)
			}
			if strings.Contains(r.stderr, specKey[:16]) || strings.Contains(r.stderr, specPlain) {
				t.Fatalf("stderr leaks a key or plaintext: %q", r.stderr)
			}
		})
	}
}

func TestKeygen(t *testing.T) {
	a, b := thctl(t, nil, "", "keygen"), thctl(t, nil, "", "keygen")
	for _, r := range []result{a, b} {
		if r.code != 0 || !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(r.stdout) {
			t.Fatalf("keygen = %d %q", r.code, r.stdout)
		}
	}
	if a.stdout == b.stdout {
		t.Fatal("two keygens printed the same key")
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	key := strings.TrimSpace(thctl(t, nil, "", "keygen").stdout)
	for _, format := range []string{"v1", "dare"} {
		for _, tc := range []struct{ arg, stdin, want string }{
			{"a token", "", "a token"},
			{"", "from stdin\n", "from stdin"},
			{"", "crlf\r\n", "crlf"},
			{"", "two lines\nkept\n", "two lines\nkept"},
		} {
			args := []string{"seal", "-key", key, "-format", format}
			if tc.arg != "" {
				args = append(args, tc.arg)
			}
			sealed := thctl(t, nil, tc.stdin, args...)
			if sealed.code != 0 {
				t.Fatalf("%s seal: %d %s", format, sealed.code, sealed.stderr)
			}
			cookie := strings.TrimSuffix(sealed.stdout, "\n")
			if want := map[string]byte{"v1": 'A', "dare": 'I'}[format]; cookie[0] != want {
				t.Fatalf("%s cookie starts with %q, want %q", format, cookie[0], want)
			}
			opened := thctl(t, nil, "", "open", "-key", key, cookie)
			if opened.code != 0 || opened.stdout != tc.want+"\n" {
				t.Fatalf("%s open = %d %q, want %q", format, opened.code, opened.stdout, tc.want)
			}
		}
	}
}

// TestBinary runs the built command the way an operator does.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "thctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "open", "-key", specKey, specCookie).Output()
	if err != nil || string(out) != specPlain+"\n" {
		t.Fatalf("thctl open = %q, %v", out, err)
	}
	cmd := exec.Command(bin, "open", "-key", otherKey, specCookie)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 || strings.Count(stderr.String(), "\n") != 1 {
		t.Fatalf("thctl open with a wrong key: %v, stderr %q; want exit 1 and one line", err, stderr.String())
	}
}
