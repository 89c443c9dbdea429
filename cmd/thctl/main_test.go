package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/session"
)

// TEST KEYS: the contract §3 vector key and another, public on purpose.
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
		{"open the contract's test vector", nil, "", []string{"open", "-key", specKey, specCookie}, 0, specPlain + "\n", ""},
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
		{"bad format", nil, "", []string{"seal", "-key", specKey, "-format", "v3", "x"}, 1, "", `unknown cookie format "v3"`},
		{"v2 without a purpose", nil, "", []string{"seal", "-key", specKey, "-format", "v2", "x"}, 2, "", "-format v2 needs -purpose"},
		{"a purpose in v1", nil, "", []string{"seal", "-key", specKey, "-format", "v1", "-purpose", "at", "x"}, 2, "", "v1 cookies carry no purpose"},
		{"a session in v1", nil, "", []string{"seal", "-key", specKey, "-session", strings.Repeat("ab", 16), "x"}, 2, "", "-session needs -purpose"},
		{"chunks in dare", nil, "", []string{"seal", "-key", specKey, "-format", "dare", "-chunks", "2", "x"}, 2, "", "-chunks needs -purpose"},
		{"unknown purpose", nil, "", []string{"seal", "-key", specKey, "-purpose", "token", "x"}, 2, "", `unknown purpose "token"`},
		{"too many chunks", nil, "", []string{"seal", "-key", specKey, "-purpose", "at", "-chunks", "9", "x"}, 2, "", "-chunks must be 0 to 8"},
		{"negative chunks", nil, "", []string{"seal", "-key", specKey, "-purpose", "at", "-chunks", "-1", "x"}, 2, "", "-chunks must be 0 to 8"},
		{"short session", nil, "", []string{"seal", "-key", specKey, "-purpose", "at", "-session", "abcd", "x"}, 2, "", "-session must be 32 hex characters"},
		{"session not hex", nil, "", []string{"seal", "-key", specKey, "-purpose", "at", "-session", strings.Repeat("zz", 16), "x"}, 2, "", "-session must be 32 hex characters"},
		{"expires and lifetime", nil, "", []string{"seal", "-key", specKey, "-purpose", "at", "-expires", "5", "-lifetime", "1h", "x"}, 2, "", "not both"},
		{"zero lifetime", nil, "", []string{"seal", "-key", specKey, "-purpose", "at", "-lifetime", "0s", "x"}, 2, "", "-lifetime must be at least 1s"},
		{"lifetime overflows", nil, "", []string{"seal", "-key", specKey, "-purpose", "at", "-started", "9223372036854775807", "x"}, 2, "", "past the end of time"},
		{"sub without issuer", nil, "", []string{"seal", "-key", specKey, "-purpose", "id", "-sub", "alice", "x"}, 2, "", "need -issuer"},
		{"issuer alone", nil, "", []string{"seal", "-key", specKey, "-purpose", "id", "-issuer", "https://op/", "x"}, 2, "", "records nothing"},
		{"verbose seal", nil, "", []string{"seal", "-key", specKey, "-v", "x"}, 2, "", "-v applies to open"},
		{"open with -session", nil, "", []string{"open", "-key", specKey, "-session", strings.Repeat("ab", 16), specCookie}, 2, "", "-session applies to seal"},
		{"open with a bad purpose", nil, "", []string{"open", "-key", specKey, "-purpose", "x", specCookie}, 2, "", `unknown purpose "x"`},
		{"open v1 under any purpose", nil, "", []string{"open", "-key", specKey, "-purpose", "csrf", "-chunks", "3", specCookie}, 0, specPlain + "\n", ""},
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

	// Two cookies of one v2 session, as the load test mints them: the
	// first call prints the session ID, the second reuses it.
	seal := exec.Command(bin, "seal", "-purpose", "at")
	seal.Env = []string{"TH_ENCRYPTION_KEYS=" + otherKey}
	seal.Stdin = strings.NewReader("an access token\n")
	stderr.Reset()
	seal.Stderr = &stderr
	at, err := seal.Output()
	id, ok := strings.CutPrefix(strings.TrimSpace(stderr.String()), "session ")
	if err != nil || !ok || len(id) != 32 {
		t.Fatalf("thctl seal -purpose at: %v, stderr %q", err, stderr.String())
	}
	csrf, err := exec.Command(bin, "seal", "-key", otherKey, "-purpose", "csrf", "-session", id, "csrf-token").Output()
	if err != nil {
		t.Fatalf("thctl seal -purpose csrf: %v", err)
	}
	for cookie, want := range map[string]string{string(at): "an access token", string(csrf): "csrf-token"} {
		open := exec.Command(bin, "open", "-key", otherKey, "-v", strings.TrimSpace(cookie))
		stderr.Reset()
		open.Stderr = &stderr
		out, err := open.Output()
		if err != nil || string(out) != want+"\n" || !strings.Contains(stderr.String(), "\nsession "+id+"\n") {
			t.Fatalf("thctl open -v = %q, %v, stderr %q; want %q in session %s", out, err, stderr.String(), want, id)
		}
	}
}

// sealV2 runs thctl seal with args after "-key key -purpose purpose" and
// returns the cookie and what it printed to stderr.
func sealV2(t *testing.T, key, purpose, value string, args ...string) (cookie, stderr string) {
	t.Helper()
	r := thctl(t, nil, "", append(append([]string{"seal", "-key", key, "-purpose", purpose}, args...), value)...)
	if r.code != 0 {
		t.Fatalf("seal -purpose %s %v: exit %d, %s", purpose, args, r.code, r.stderr)
	}
	return strings.TrimSuffix(r.stdout, "\n"), r.stderr
}

// TestSealV2 checks what a v2 seal puts in the cookie by opening it with
// session.Codec, and that thctl open reads it back with its envelope.
func TestSealV2(t *testing.T) {
	defer func(old func() time.Time) { now = old }(now)
	now = func() time.Time { return time.Unix(1_767_225_600, 0) }
	ring, _ := crypto.ParseKeyring(otherKey)
	codec, _ := session.NewCodec(ring, crypto.FormatV2)
	open := func(cookie string, p session.Purpose, chunks int) (string, session.Envelope, error) {
		var env session.Envelope
		v, f, err := codec.Open(nil, []byte(cookie), p, chunks, &env)
		if err == nil && f != crypto.FormatV2 {
			t.Fatalf("sealed in format %v, want v2", f)
		}
		return string(v), env, err
	}

	// No -session: a fresh ID, printed to stderr, reused by the next call.
	at, stderr := sealV2(t, otherKey, "at", "an access token")
	m := regexp.MustCompile(`^session ([0-9a-f]{32})\n$`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("seal without -session printed %q to stderr, want the session ID", stderr)
	}
	value, env, err := open(at, session.AccessToken, 0)
	if err != nil || value != "an access token" || hex.EncodeToString(env.ID[:]) != m[1] {
		t.Fatalf("P-at opens to %q, %+v, %v", value, env, err)
	}
	if env.Started != 1_767_225_600 || env.Expires != 1_767_225_600+12*3600 || env.SID != (session.Digest{}) || env.Sub != (session.Digest{}) {
		t.Fatalf("default envelope %+v: want started now, expires 12h later, no digests", env)
	}
	if _, _, err := open(at, session.CSRF, 0); err != crypto.ErrOpen {
		t.Fatalf("P-at opened as csrf: %v", err)
	}
	csrf, stderr := sealV2(t, otherKey, "csrf", "csrf-token", "-session", m[1], "-started", "1000", "-lifetime", "1h", "-format", "v2")
	if stderr != "" {
		t.Fatalf("seal with -session printed %q", stderr)
	}
	if value, env2, err := open(csrf, session.CSRF, 0); err != nil || value != "csrf-token" || env2.ID != env.ID || env2.Started != 1000 || env2.Expires != 4600 {
		t.Fatalf("P-csrf opens to %q, %+v, %v; want the same session, started 1000, expires 4600", value, env2, err)
	}

	// Explicit times, chunks and digests.
	id, _ := sealV2(t, otherKey, "id", "an ID token", "-session", m[1], "-started", "-5", "-expires", "77", "-chunks", "3",
		"-issuer", "https://op/", "-sub", "alice", "-sid", "s-1")
	value, env, err = open(id, session.IDToken, 3)
	want := session.Envelope{ID: env.ID, Started: -5, Expires: 77, SID: session.HashSID("https://op/", "s-1"), Sub: session.HashSub("https://op/", "alice")}
	if err != nil || value != "an ID token" || env != want || hex.EncodeToString(env.ID[:]) != m[1] {
		t.Fatalf("P-id opens to %q, %+v, %v; want %+v", value, env, err, want)
	}
	for _, n := range []int{0, 1, 2, 4} {
		if _, _, err := open(id, session.IDToken, n); err != crypto.ErrOpen {
			t.Fatalf("a 3-chunk cookie opened as %d chunks: %v", n, err)
		}
	}

	// thctl open: under the right purpose and chunk count, under all of
	// them when not told, and not under the wrong ones.
	for _, args := range [][]string{{"-purpose", "id", "-chunks", "3"}, {"-purpose", "id"}, {"-chunks", "3"}, nil} {
		r := thctl(t, nil, "", append(append([]string{"open", "-key", otherKey, "-v"}, args...), id)...)
		wantErr := "format v2, purpose id, chunks 3\nsession " + m[1] + "\nstarted -5 (1969-12-31T23:59:55Z)\nexpires 77 (1970-01-01T00:01:17Z, expired)\n" +
			"sid " + hex.EncodeToString(want.SID[:]) + "\nsub " + hex.EncodeToString(want.Sub[:]) + "\n"
		if r.code != 0 || r.stdout != "an ID token\n" || r.stderr != wantErr {
			t.Fatalf("open -v %v = %d %q %q; want stderr %q", args, r.code, r.stdout, r.stderr, wantErr)
		}
	}
	for _, args := range [][]string{{"-purpose", "at"}, {"-chunks", "2"}, {"-purpose", "id", "-chunks", "0"}} {
		r := thctl(t, nil, "", append(append([]string{"open", "-key", otherKey}, args...), id)...)
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "cannot open the cookie") || strings.Contains(r.stderr, "ID token") {
			t.Fatalf("open %v of a 3-chunk id cookie = %d %q %q; want exit 1", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := thctl(t, nil, "", "open", "-key", specKey, id); r.code != 1 {
		t.Fatalf("opened with another key: %+v", r)
	}
	if r := thctl(t, nil, "", "open", "-key", otherKey, "-v", at); r.code != 0 || !strings.Contains(r.stderr, "(2026-01-01T12:00:00Z, live)") {
		t.Fatalf("open -v of a live cookie = %+v", r)
	}
}

// TestOpenVectors opens session's known-answer vectors with thctl open -v:
// value and envelope as the vector says, found without -purpose.
func TestOpenVectors(t *testing.T) {
	data, err := os.ReadFile("../../session/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vectors []struct {
			Name, Key, Purpose, Value, Cookie string
			Chunks                            int
			Envelope                          struct{ ID, SID, Sub string }
		}
	}
	if err := json.Unmarshal(data, &f); err != nil || len(f.Vectors) == 0 {
		t.Fatalf("vectors: %v", err)
	}
	for _, v := range f.Vectors {
		r := thctl(t, nil, "", "open", "-key", v.Key, "-v", v.Cookie)
		head := "format v2, purpose " + v.Purpose + ", chunks " + strconv.Itoa(v.Chunks) + "\nsession " + v.Envelope.ID + "\n"
		if r.code != 0 || r.stdout != v.Value+"\n" || !strings.HasPrefix(r.stderr, head) {
			t.Errorf("%s: open -v = %d %q %q; want %q and stderr starting %q", v.Name, r.code, r.stdout, r.stderr, v.Value, head)
		}
	}
}

func TestSealV1StaysDefault(t *testing.T) {
	r := thctl(t, nil, "", "seal", "-key", specKey, "x")
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(r.stdout))
	if r.code != 0 || err != nil || raw[0] != 0x01 || r.stderr != "" {
		t.Fatalf("seal without -purpose = %+v, want a v1 cookie and nothing on stderr", r)
	}
}

// TestSealOpenApp: -app binds a v2 cookie to an application (issue #15):
// it opens under that name alone, as the daemons of a file with apps open it.
func TestSealOpenApp(t *testing.T) {
	env := map[string]string{"TH_ENCRYPTION_KEYS": otherKey}
	r := thctl(t, env, "tok", "seal", "-purpose", "at", "-app", "shop")
	if r.code != 0 {
		t.Fatalf("seal -app: %d %s", r.code, r.stderr)
	}
	cookie := strings.TrimSpace(r.stdout)
	ring, _ := crypto.ParseKeyring(otherKey)
	codec, _ := session.NewCodec(ring, crypto.FormatV2)
	for app, want := range map[string]bool{"shop": true, "admin": false, "": false} {
		_, _, err := codec.WithApp(app).Open(nil, []byte(cookie), session.AccessToken, 0, new(session.Envelope))
		if (err == nil) != want {
			t.Errorf("sealed for shop, opened for %q: %v", app, err)
		}
	}
	if r := thctl(t, env, cookie, "open", "-app", "shop"); r.code != 0 || strings.TrimSpace(r.stdout) != "tok" {
		t.Errorf("open -app shop: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := thctl(t, env, cookie, "open", "-app", "admin"); r.code == 0 {
		t.Errorf("open -app admin opened shop's cookie: %q", r.stdout)
	}
	if r := thctl(t, env, "tok", "seal", "-purpose", "at", "-app", "Shop!"); r.code != 2 {
		t.Errorf("seal -app with a bad name: %d %s", r.code, r.stderr)
	}
	if r := thctl(t, env, "tok", "seal", "-app", "shop"); r.code != 2 {
		t.Errorf("seal -app without v2: %d %s", r.code, r.stderr)
	}
}
