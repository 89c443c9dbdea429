package settings

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/settings/settingstest"
)

// testKey is the public TEST key of docs/contract.md. Never use it anywhere but in
// tests.
const testKey = "7b99279ab87533d3c238db874a842a91ee26a76027f3c03c317504963d2c9926"

// decode decodes data into the struct out points to, as Parse does
// before it converts.
func decode(data []byte, out any) error {
	root, err := readRoot(data)
	if err != nil {
		return err
	}
	return decodeMapping(root, "", reflect.ValueOf(out).Elem())
}

type testFile struct {
	Name    *string     `yaml:"name"`
	Count   int         `yaml:"count"`
	Enabled bool        `yaml:"enabled"`
	List    []string    `yaml:"list"`
	Section testSection `yaml:"section"`
	Items   []testItem  `yaml:"items"`
	Raw     yaml.Node   `yaml:"raw"`
	Log     Log         `yaml:"log"`
	Secret  *string     `yaml:"secret"`
	Untaged string
	Dash    string `yaml:"-"`

	testInline `yaml:",inline"`
	Shared     struct {
		Timeouts `yaml:",inline"`
		Extra    *string `yaml:"extra"`
	} `yaml:"shared"`
}

// testInline is embedded inline in testFile: its settings are testFile's.
type testInline struct {
	InlineFlag bool `yaml:"inline_flag"`
}

type testSection struct {
	Timeout *string `yaml:"timeout"`
	Deeper  struct {
		Flag bool `yaml:"flag"`
	} `yaml:"deeper"`
}

type testItem struct {
	Path string `yaml:"path"`
}

func TestDecode(t *testing.T) {
	var f testFile
	err := decode([]byte(`
name: &n hello
count: 3
enabled: true
list: [a, b]
section:
  timeout: 5s
  deeper: {flag: true}
items:
  - {path: /a/}
  - path: /b/
raw: [x, y]
log: {level: debug}
`), &f)
	if err != nil {
		t.Fatal(err)
	}
	if ValueOr(f.Name, "") != "hello" || f.Count != 3 || !f.Enabled || !reflect.DeepEqual(f.List, []string{"a", "b"}) {
		t.Errorf("scalars: %+v", f)
	}
	if ValueOr(f.Section.Timeout, "") != "5s" || !f.Section.Deeper.Flag {
		t.Errorf("section: %+v", f.Section)
	}
	if !reflect.DeepEqual(f.Items, []testItem{{"/a/"}, {"/b/"}}) {
		t.Errorf("items: %+v", f.Items)
	}
	if f.Raw.Kind != yaml.SequenceNode || len(f.Raw.Content) != 2 {
		t.Errorf("raw: kind %v, %d items; want the list as written", f.Raw.Kind, len(f.Raw.Content))
	}
	if ValueOr(f.Log.Level, "") != "debug" || f.Log.Format != nil {
		t.Errorf("log: %+v", f.Log)
	}
}

func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, f *testFile)
	}{
		{"empty sections keep defaults", "section:\nitems:\nlog:\ncount: 1\n", func(t *testing.T, f *testFile) {
			if f.Section.Timeout != nil || f.Items != nil || f.Log.Level != nil {
				t.Errorf("empty sections set something: %+v", f)
			}
		}},
		{"anchors and aliases", "name: &n x\nsecret: *n\nsection: &s {timeout: 1s}\n", func(t *testing.T, f *testFile) {
			if ValueOr(f.Secret, "") != "x" {
				t.Errorf("Secret = %v, want x", f.Secret)
			}
		}},
		{"empty string is not left out", "name: \"\"\n", func(t *testing.T, f *testFile) {
			if f.Name == nil || *f.Name != "" {
				t.Errorf("Name = %v, want a pointer to \"\"", f.Name)
			}
		}},
		{"explicit document start", "---\ncount: 2\n", func(t *testing.T, f *testFile) {
			if f.Count != 2 {
				t.Errorf("Count = %d, want 2", f.Count)
			}
		}},
		{"inline settings", "inline_flag: true\nshared: {read: 1s, extra: x, shutdown: 2s}\n", func(t *testing.T, f *testFile) {
			if !f.InlineFlag || f.Shared.Read.Or(0) != time.Second || f.Shared.Shutdown.Or(0) != 2*time.Second || ValueOr(f.Shared.Extra, "") != "x" {
				t.Errorf("inline settings not set: %+v", f)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f testFile
			if err := decode([]byte(tt.yaml), &f); err != nil {
				t.Fatal(err)
			}
			tt.check(t, &f)
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // the whole message
	}{
		{"empty", "", "the file is empty"},
		{"comments only", "# nothing\n", "the file is empty"},
		{"null document", "---\n", "the file is empty"},
		{"list", "- a\n- b\n", "the file must be a YAML mapping of settings (line 1)"},
		{"scalar", testKey + "\n", "the file must be a YAML mapping of settings (line 1)"},
		{"two documents", "count: 1\n---\ncount: 2\n", "the file holds several YAML documents; it must hold one"},
		{"unknown top-level", "count: 1\ncuont: 2\n", `unknown setting "cuont" (line 2): did you mean count?`},
		{"unknown, nothing close", "count: 1\ncolour: 2\n", `unknown setting "colour" (line 2)`},
		{"untagged field is unknown", "Untaged: x\n", `unknown setting "Untaged" (line 1)`},
		{"unknown nested", "section: {deeper: {flag: true, flga: 1}}\n", `unknown setting "section.deeper.flga" (line 1): did you mean section.deeper.flag?`},
		{"unknown in list item", "items:\n  - {path: /a/}\n  - {paht: /b/}\n", `unknown setting "items[1].paht" (line 3): did you mean items[1].path?`},
		{"capitals", "Count: 1\n", `unknown setting "Count" (line 1): did you mean count?`},
		{"dashes", "inline-flag: true\n", `unknown setting "inline-flag" (line 1): did you mean inline_flag?`},
		{"unknown beside inline settings", "shared: {read: 1s, wirte: 2s}\n", `unknown setting "shared.wirte" (line 1): did you mean shared.write?`},
		{"the tag - is no setting", "\"-\": x\n", `unknown setting "-" (line 1)`},
		{"key not a scalar", "[a]: 1\n", `unknown setting "" (line 1)`},
		{"set twice", "count: 1\nname: x\ncount: 2\n", "count: set twice (lines 1 and 3)"},
		{"set twice nested", "section:\n  timeout: 1s\n  timeout: 2s\n", "section.timeout: set twice (lines 2 and 3)"},
		{"int", "count: " + testKey + "\n", "count: must be an integer (line 1)"},
		{"bool", "enabled: maybe\n", "enabled: must be true or false (line 1)"},
		{"list of strings", "list: " + testKey + "\n", "list: must be a list of strings (line 1)"},
		{"list as mapping", "list: {" + testKey + ": 1}\n", "list: must be a list of strings (line 1)"},
		{"string", "secret: [" + testKey + "]\n", "secret: must be a string (line 1)"},
		{"section not a mapping", "section: " + testKey + "\n", "section: must be a mapping of settings (line 1)"},
		{"list of sections not a list", "items: {path: /a/}\n", "items: must be a list (line 1)"},
		{"list item not a mapping", "items: [/a/]\n", "items[0]: must be a mapping of settings (line 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f testFile
			err := decode([]byte(tt.yaml), &f)
			if err == nil {
				t.Fatalf("Decode succeeded (%+v), want %q", f, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error %q, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testKey[:7]) {
				t.Errorf("error %q quotes the value", err)
			}
		})
	}
}

func TestDecodeSyntaxError(t *testing.T) {
	var f testFile
	err := decode([]byte("count: 1\nname: [\n"), &f)
	// "line 2", without yaml's "yaml: ": Load puts the file's name there.
	if err == nil || !strings.HasPrefix(err.Error(), "line 2: ") {
		t.Errorf("error %v, want yaml's syntax error starting with its line", err)
	}
}

func TestErrorf(t *testing.T) {
	inner := errors.New("inner")
	err := Errorf("routes[1].upstream", "wraps %w", inner)
	if err.Error() != "routes[1].upstream: wraps inner" || !errors.Is(err, inner) {
		t.Errorf("Errorf = %q (Is inner: %v)", err, errors.Is(err, inner))
	}
}

func ptr[T any](v T) *T { return &v }

func TestDurations(t *testing.T) {
	tests := []struct {
		name    string
		value   *string
		lo, hi  time.Duration // both zero: Positive
		want    time.Duration
		wantErr string
	}{
		{name: "positive default", value: nil, want: 7 * time.Second},
		{name: "positive", value: ptr("1m30s"), want: 90 * time.Second},
		{name: "positive zero", value: ptr("0s"), wantErr: `t: must be greater than zero, got "0s"`},
		{name: "positive negative", value: ptr("-1s"), wantErr: `t: must be greater than zero, got "-1s"`},
		{name: "no unit", value: ptr("30"), wantErr: `t: invalid duration "30" (write a Go duration such as 30s)`},
		{name: "empty", value: ptr(`""`), wantErr: `t: invalid duration ""`},
		{name: "words", value: ptr("3 seconds"), wantErr: `t: invalid duration "3 seconds"`},
		{name: "a list", value: ptr("[1s]"), wantErr: `t: must be a Go duration such as 30s (line 1)`},
		{name: "range default", value: nil, lo: 0, hi: 5 * time.Minute, want: 7 * time.Second},
		{name: "range low end", value: ptr("0s"), lo: 0, hi: 5 * time.Minute, want: 0},
		{name: "range high end", value: ptr("5m"), lo: 0, hi: 5 * time.Minute, want: 5 * time.Minute},
		{name: "range above", value: ptr("5m1s"), lo: 0, hi: 5 * time.Minute, wantErr: `t: must be between 0s and 5m, got "5m1s"`},
		{name: "range below", value: ptr("-1s"), lo: 0, hi: 2 * time.Hour, wantErr: `t: must be between 0s and 2h, got "-1s"`},
		{name: "range mixed units", value: ptr("1s"), lo: 2 * time.Second, hi: 90 * time.Minute, wantErr: `t: must be between 2s and 1h30m, got "1s"`},
		{name: "range quotes the text", value: ptr("90m1s"), lo: 0, hi: 90 * time.Minute, wantErr: `t: must be between 0s and 1h30m, got "90m1s"`},
		{name: "range bad", value: ptr("soon"), lo: 0, hi: time.Minute, wantErr: `t: invalid duration "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f struct {
				T *Duration `yaml:"t"`
			}
			var err error
			if tt.value != nil {
				err = decode([]byte("t: "+*tt.value+"\n"), &f)
			}
			var got time.Duration
			if err == nil {
				if tt.lo == 0 && tt.hi == 0 {
					got, err = f.T.Positive("t", 7*time.Second)
				} else {
					got, err = f.T.Range("t", 7*time.Second, tt.lo, tt.hi)
				}
			}
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want an error starting with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestDurationOffOrAtLeast(t *testing.T) {
	for _, tt := range []struct {
		text    string
		want    time.Duration
		wantErr string
	}{
		{"0s", 0, ""},
		{"100ms", 100 * time.Millisecond, ""},
		{"99ms", 0, `t: must be 0 (off) or at least 100ms, got "99ms"`},
		{"-1s", 0, `t: must be 0 (off) or at least 100ms, got "-1s"`},
	} {
		v, err := time.ParseDuration(tt.text)
		if err != nil {
			t.Fatal(err)
		}
		d := Duration{v, tt.text}
		got, err := d.OffOrAtLeast("t", time.Second, 100*time.Millisecond, "off")
		if tt.wantErr != "" {
			checkErr(t, err, tt.wantErr)
		} else if err != nil || got != tt.want {
			t.Errorf("%s: got %v, %v; want %v", tt.text, got, err, tt.want)
		}
	}
	if got, err := (*Duration)(nil).OffOrAtLeast("t", time.Second, time.Hour, "off"); got != time.Second || err != nil {
		t.Errorf("left out: got %v, %v; want the default", got, err)
	}
}

func TestLogParse(t *testing.T) {
	tests := []struct {
		name       string
		log        Log
		wantLevel  zerolog.Level
		wantFormat string
		wantErr    string
	}{
		{name: "defaults", wantLevel: zerolog.InfoLevel, wantFormat: "json"},
		{name: "debug console", log: Log{Level: ptr("debug"), Format: ptr("console")}, wantLevel: zerolog.DebugLevel, wantFormat: "console"},
		{name: "warn", log: Log{Level: ptr("warn")}, wantLevel: zerolog.WarnLevel, wantFormat: "json"},
		{name: "error", log: Log{Level: ptr("error"), Format: ptr("json")}, wantLevel: zerolog.ErrorLevel, wantFormat: "json"},
		{name: "bad level", log: Log{Level: ptr("verbose")}, wantErr: `log.level: must be debug, info, warn or error, got "verbose"`},
		{name: "upper-case level", log: Log{Level: ptr("INFO")}, wantErr: `log.level: must be debug, info, warn or error, got "INFO"`},
		{name: "bad format", log: Log{Format: ptr("text")}, wantErr: `log.format: must be json or console, got "text"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.log.Parse("log")
			level, format := got.Level, got.Format
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || level != tt.wantLevel || format != tt.wantFormat {
				t.Fatalf("got %v, %q, %v; want %v, %q", level, format, err, tt.wantLevel, tt.wantFormat)
			}
		})
	}
}

func TestCheckListeners(t *testing.T) {
	const sock = "/run/tokenhandler/x.sock"
	tests := []struct {
		listen, metrics string
		wantErr         string // "" when valid
	}{
		{"127.0.0.1:8080", "", ""},
		{"127.0.0.1:0", "127.0.0.1:0", ""},
		{":8081", "[::1]:9101", ""},
		{"unix:/run/a.sock", "unix:/run/b.sock", ""},
		{"localhost", "", `listen: "localhost" must be host:port or unix:/absolute/path`},
		{"", "", `listen: "" must be host:port or unix:/absolute/path`},
		{"127.0.0.1:http", "", `listen: "127.0.0.1:http" must have a port from 0 to 65535`},
		{"127.0.0.1:65536", "", `listen: "127.0.0.1:65536" must have a port from 0 to 65535`},
		{"unix:x.sock", "", `listen: "unix:x.sock" must name a socket by its absolute path, as unix:/run/tokenhandler/x.sock`},
		{"unix:/run/", "", `listen: "unix:/run/" must name a socket by its absolute path`},
		{"127.0.0.1 :80", "", `listen: "127.0.0.1 :80" must not contain whitespace or control characters`},
		{"127.0.0.1:1", "9101", `metrics_listen: "9101" must be host:port or unix:/absolute/path`},
		{"127.0.0.1:1", "127.0.0.1:1", `metrics_listen: must differ from listen (both are "127.0.0.1:1")`},
		{"unix:/run/p.sock", "unix:/run/p.sock", `metrics_listen: must differ from listen`},
	}
	for _, tt := range tests {
		t.Run(tt.listen+" "+tt.metrics, func(t *testing.T) {
			err := CheckListeners(tt.listen, tt.metrics, sock)
			checkErr(t, err, tt.wantErr)
		})
	}
}

// checkErr fails unless err is nil and want is "", or err starts with want.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one starting with %q", want)
	case want != "" && !strings.HasPrefix(err.Error(), want):
		t.Fatalf("error %q, want one starting with %q", err, want)
	}
}

func TestParsePort(t *testing.T) {
	for s, want := range map[string]int{"0": 0, "80": 80, "65535": 65535, "00080": 80} {
		if n, ok := ParsePort(s); !ok || n != want {
			t.Errorf("ParsePort(%q) = %d, %v; want %d, true", s, n, ok, want)
		}
	}
	for _, s := range []string{"", "65536", "-1", "+1", "8o", "123456", "http"} {
		if n, ok := ParsePort(s); ok {
			t.Errorf("ParsePort(%q) = %d, true; want false", s, n)
		}
	}
}

func TestCookiePrefix(t *testing.T) {
	tests := []struct {
		prefix, wantErr string
	}{
		{"example", ""},
		{"my_app-1", ""},
		{strings.Repeat("a", 64), ""},
		{"", "cookie.prefix: must be 1 to 64 characters long, got 0"},
		{strings.Repeat("a", 65), "cookie.prefix: must be 1 to 64 characters long, got 65"},
		{"my app", `cookie.prefix: "my app" may hold only ASCII letters, digits, '-' and '_'`},
		{"a.b", `cookie.prefix: "a.b" may hold only`},
		{"a=b", `cookie.prefix: "a=b" may hold only`},
		{"café", `cookie.prefix: "café" may hold only`},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			var d Deprecations
			_, err := Cookie{Prefix: &tt.prefix}.Parse(&d)
			checkErr(t, err, tt.wantErr)
		})
	}
}

func TestCheckWebOrigins(t *testing.T) {
	tests := []struct {
		name    string
		origins []string
		wantErr string
	}{
		{"one", []string{"http://www.example.localhost:3000"}, ""},
		{"port and ipv6", []string{"https://a.example:8443", "http://[::1]:3000"}, ""},
		{"none", nil, "o: at least one origin is required"},
		{"empty", []string{}, "o: at least one origin is required"},
		{"wildcard", []string{"*"}, `o[0]: "*" is not allowed`},
		{"null", []string{"null"}, `o[0]: "null" is not allowed`},
		{"slash", []string{"http://a", "http://b/"}, `o[1]: "http://b/" must not have a path, not even "/"`},
		{"path", []string{"http://b/app"}, `o[0]: "http://b/app" must not have a path`},
		{"query", []string{"http://b?x=1"}, `o[0]: "http://b?x=1" must not have a query`},
		{"empty query", []string{"http://b?"}, `o[0]: "http://b?" must not have a query`},
		{"fragment", []string{"http://b#x"}, `o[0]: "http://b#x" must not have a fragment`},
		{"userinfo", []string{"http://user:s3cret@b"}, `o[0]: must not contain "@"`},
		{"space", []string{"http://b "}, `o[0]: "http://b " must not contain whitespace`},
		{"upper case", []string{"http://WWW.b"}, `o[0]: "http://WWW.b" must be lower case`},
		{"scheme", []string{"ftp://b"}, `o[0]: "ftp://b" must start with http:// or https://`},
		{"no scheme", []string{"www.example.com"}, `o[0]: "www.example.com" must start with http://`},
		{"no host", []string{"http://"}, `o[0]: "http://" has no host`},
		{"bad port", []string{"http://b:99999"}, `o[0]: "http://b:99999" has an invalid port`},
		{"empty port", []string{"http://b:"}, `o[0]: "http://b:" has an empty port`},
		{"port 0", []string{"http://b:0"}, `o[0]: "http://b:0" has an invalid port`},
		{"default port", []string{"https://b:443"}, `o[0]: "https://b:443" must leave out the default port`},
		{"default http port", []string{"http://b:80"}, `o[0]: "http://b:80" must leave out the default port`},
		{"repeated", []string{"http://a", "http://b", "http://a"}, `o[2]: "http://a" repeats o[0]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckWebOrigins("o", tt.origins)
			checkErr(t, err, tt.wantErr)
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q quotes a password", err)
			}
		})
	}
}

func TestCheckTokenList(t *testing.T) {
	tests := []struct {
		name    string
		list    []string
		wantErr string
	}{
		{"none", nil, ""},
		{"tokens", []string{"GET", "x-example-csrf", "Content-Type", "!#$%&'+-.^_`|~"}, ""},
		{"space", []string{"GET", "GE T"}, `l[1]: "GE T" is not an RFC 7230 token`},
		{"empty", []string{""}, `l[0]: "" is not an RFC 7230 token`},
		{"colon", []string{"a:b"}, `l[0]: "a:b" is not an RFC 7230 token`},
		{"wildcard", []string{"*"}, `l[0]: "*": wildcards are not allowed with credentials; list each name`},
		{"partial wildcard", []string{"X-*"}, `l[0]: "X-*": wildcards are not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, CheckList("l", tt.list, nil, CheckToken), tt.wantErr)
		})
	}
}

func TestHasSpaceOrControl(t *testing.T) {
	for s, want := range map[string]bool{"": false, "/a/b": false, "a b": true, "a\tb": true, "a\x00": true, "a\x7f": true, "a\u00a0b": true, "café": false} {
		if got := HasSpaceOrControl(s); got != want {
			t.Errorf("HasSpaceOrControl(%q) = %v, want %v", s, got, want)
		}
	}
}

var keySource = Source{Setting: "keys", FileSetting: "keys_file", Env: "TEST_KEYS", What: "test keys"}

func TestSourceKeyring(t *testing.T) {
	newer, older := string(crypto.GenerateKey().AppendHex(nil)), string(crypto.GenerateKey().AppendHex(nil))
	file := bintest.WriteFiles(t, map[string]string{
		"keys":      "# newest first\n\n  " + newer + "  \r\n# retired soon\n" + older + "\n",
		"bad":       newer + "\n" + older[:40] + "\n",
		"open":      newer + "\n",
		"published": newer + "\n" + testKey + "\n",
	})
	keysFile, badFile, openFile, publishedFile := file("keys"), file("bad"), file("open"), file("published")
	if err := os.Chmod(openFile, 0o640); err != nil { // WriteFiles writes mode 0600
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		list      []string
		file      *string
		env       map[string]string
		listeners []string // default 127.0.0.1:8080
		urls      []string // default http://www.example.localhost:3000
		wantFirst string
		wantLen   int
		wantErr   string
	}{
		{name: "list", list: []string{newer, older}, wantFirst: newer, wantLen: 2},
		{name: "file", file: &keysFile, wantFirst: newer, wantLen: 2},
		{name: "env", env: map[string]string{"TEST_KEYS": " " + newer + " , " + older}, wantFirst: newer, wantLen: 2},
		{name: "empty env is unset", list: []string{older}, env: map[string]string{"TEST_KEYS": ""}, wantFirst: older, wantLen: 1},
		{name: "none", env: map[string]string{"OTHER": newer}, wantErr: "keys: no test keys: set keys, keys_file or the environment variable TEST_KEYS"},
		{name: "list and env", list: []string{newer}, env: map[string]string{"TEST_KEYS": older}, wantErr: "keys: keys given by both keys and TEST_KEYS: use exactly one source"},
		{name: "all three", list: []string{newer}, file: &keysFile, env: map[string]string{"TEST_KEYS": older}, wantErr: "keys: keys given by both keys and keys_file and TEST_KEYS: use exactly one source"},
		{name: "empty list", list: []string{}, wantErr: "keys: crypto: a key ring needs at least one key"},
		{name: "bad key in list", list: []string{newer, older[:62]}, wantErr: "keys: crypto: key 2 must be 64 hex characters"},
		{name: "bad key in env", env: map[string]string{"TEST_KEYS": newer + ","}, wantErr: "TEST_KEYS: crypto: key 2 must be 64 hex characters"},
		{name: "bad key in file", file: &badFile, wantErr: "keys_file: crypto: key 2 must be 64 hex characters"},
		{name: "empty file name", file: ptr(""), wantErr: "keys_file: must be a file path"},
		{name: "missing file", file: ptr("/nonexistent/keys"), wantErr: "keys_file: open /nonexistent/keys"},
		{name: "file readable by group", file: &openFile, wantErr: "keys_file: " + openFile + " is accessible by group or others (mode 0640): run chmod 600 " + openFile},
		{name: "published key on loopback", list: []string{testKey}, listeners: []string{"127.0.0.1:8080", "[::1]:9100", "localhost:1", "unix:/run/x.sock", ""}, wantFirst: testKey, wantLen: 1},
		{name: "published key in upper case", list: []string{strings.ToUpper(testKey)}, listeners: []string{"0.0.0.0:8080"}, wantErr: "keys: key 1 is a published test key"},
		{name: "published key on all interfaces", list: []string{testKey}, listeners: []string{":8080"}, wantErr: "keys: key 1 is a published test key"},
		{name: "published key with a public metrics listener", file: &publishedFile, listeners: []string{"unix:/run/x.sock", "192.0.2.1:9100"}, wantErr: "keys_file: key 2 is a published test key"},
		{name: "published key on a host name", env: map[string]string{"TEST_KEYS": testKey}, listeners: []string{"api.example.com:8080"}, wantErr: "TEST_KEYS: key 1 is a published test key"},
		// Loopback listeners behind a public NGINX are production: the
		// browser's origins tell a development machine.
		{name: "published key for a public origin", list: []string{testKey}, urls: []string{"https://www.example.com"}, wantErr: "keys: key 1 is a published test key"},
		{name: "published key for a public redirect URI", list: []string{testKey}, urls: []string{"http://localhost:3000", "https://app.example.com/callback"}, wantErr: "keys: key 1 is a published test key"},
		{name: "published key for a look-alike origin", list: []string{testKey}, urls: []string{"https://localhost.example.com"}, wantErr: "keys: key 1 is a published test key"},
		{name: "published key for a URL without a host", list: []string{testKey}, urls: []string{"/callback"}, wantErr: "keys: key 1 is a published test key"},
		{name: "published key for local origins", list: []string{testKey}, urls: []string{"http://localhost:3000", "http://www.example.localhost:3000/", "http://127.0.0.1:8080", "http://[::1]:3000", "HTTP://WWW.EXAMPLE.LOCALHOST", ""}, wantFirst: testKey, wantLen: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listeners, urls := tt.listeners, tt.urls
			if listeners == nil {
				listeners = []string{"127.0.0.1:8080"}
			}
			if urls == nil {
				urls = []string{"http://www.example.localhost:3000"}
			}
			ring, err := keySource.Keyring(tt.list, tt.file, settingstest.Env(tt.env), listeners, urls)
			if tt.wantErr != "" {
				checkErr(t, err, tt.wantErr)
				for _, k := range []string{newer[:7], older[:7]} {
					if strings.Contains(err.Error(), k) {
						t.Errorf("error %q quotes key material", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ring.Len() != tt.wantLen {
				t.Errorf("Len() = %d, want %d", ring.Len(), tt.wantLen)
			}
			settingstest.SealsWith(t, ring, tt.wantFirst)
		})
	}
	if _, err := keySource.Keyring([]string{newer}, nil, nil, []string{":8080"}, []string{"https://www.example.com"}); err != nil {
		t.Errorf("nil getenv: %v", err)
	}
}

func TestSourceSecret(t *testing.T) {
	const secret = "s3cret-Value"
	src := Source{Setting: "client_secret", FileSetting: "client_secret_file", Env: "TEST_SECRET", What: "client secret"}
	dir := t.TempDir()
	write := func(name, content string) *string {
		p := filepath.Join(dir, name)
		bintest.WriteFile(t, p, content)
		return &p
	}
	tests := []struct {
		name    string
		value   *string
		file    *string
		env     map[string]string
		want    string
		wantErr string
	}{
		{name: "value", value: ptr(secret), want: secret},
		{name: "value with spaces kept", value: ptr(" " + secret + " "), want: " " + secret + " "},
		{name: "file with newline", file: write("nl", secret+"\n"), want: secret},
		{name: "file with CRLF", file: write("crlf", secret+"\r\n"), want: secret},
		{name: "file without newline", file: write("plain", secret), want: secret},
		{name: "file keeps inner lines", file: write("two", "a\nb\n"), want: "a\nb"},
		{name: "env", env: map[string]string{"TEST_SECRET": secret}, want: secret},
		{name: "empty env is unset", value: ptr(secret), env: map[string]string{"TEST_SECRET": ""}, want: secret},
		{name: "none", wantErr: "client_secret: no client secret: set client_secret, client_secret_file or the environment variable TEST_SECRET"},
		{name: "value and file", value: ptr(secret), file: write("f", secret), wantErr: "client_secret: secret given by both client_secret and client_secret_file: use exactly one source"},
		{name: "file and env", file: write("g", secret), env: map[string]string{"TEST_SECRET": secret}, wantErr: "client_secret: secret given by both client_secret_file and TEST_SECRET"},
		{name: "empty value", value: ptr(""), wantErr: "client_secret: must not be empty"},
		{name: "empty file", file: write("empty", "\n"), wantErr: "client_secret_file: " + filepath.Join(dir, "empty") + " holds no secret: the file is empty"},
		{name: "empty file name", file: ptr(""), wantErr: "client_secret_file: must be a file path"},
		{name: "missing file", file: ptr("/nonexistent/secret"), wantErr: "client_secret_file: open /nonexistent/secret"},
		{name: "file readable by others", file: chmod(write("open", secret), 0o604), wantErr: "client_secret_file: " + filepath.Join(dir, "open") + " is accessible by group or others (mode 0604): run chmod 600 " + filepath.Join(dir, "open")},
		{name: "file writable by group", file: chmod(write("gw", secret), 0o620), wantErr: "client_secret_file: " + filepath.Join(dir, "gw") + " is accessible by group or others (mode 0620): run chmod 600 " + filepath.Join(dir, "gw")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := src.Secret(tt.value, tt.file, settingstest.Env(tt.env))
			if tt.wantErr != "" {
				checkErr(t, err, tt.wantErr)
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error %q quotes the secret", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func ExampleParse() {
	type file struct {
		Listen   *string `yaml:"listen"`
		Timeouts struct {
			Read *Duration `yaml:"read"`
		} `yaml:"timeouts"`
	}
	// convert checks what decoding cannot, and applies the defaults.
	convert := func(f *file, getenv func(string) string) (time.Duration, error) {
		return f.Timeouts.Read.Positive("timeouts.read", 30*time.Second)
	}
	for _, text := range []string{
		"listen: 127.0.0.1:8080\ntimeouts: {raed: 5s}\n",
		"timeouts: {read: soon}\n",
		"timeouts: {read: 0s}\n",
		"timeouts: {read: 5s}\n",
		"apps: [{name: shop}]\n",
	} {
		fmt.Println(Parse("example: config", []byte(text), nil, convert, AppsSpec[time.Duration]{}))
	}
	// Output:
	// 0s example: config: unknown setting "timeouts.raed" (line 2): did you mean timeouts.read?
	// 0s example: config: timeouts.read: invalid duration "soon" (write a Go duration such as 30s)
	// 0s example: config: timeouts.read: must be greater than zero, got "0s"
	// 5s <nil>
	// 0s example: config: unknown setting "apps" (line 1)
}

func TestLoadAndParse(t *testing.T) {
	// convert stands for a binary's conversion of its file: it reads the
	// environment and refuses a negative count.
	type out struct {
		count int
		env   string
	}
	convert := func(f *testFile, getenv func(string) string) (*out, error) {
		if f.Count < 0 {
			return nil, Errorf("count", "must not be negative")
		}
		return &out{f.Count, getenv("K")}, nil
	}
	getenv := func(k string) string { return "env-" + k }
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		bintest.WriteFile(t, path, content)
		return path
	}
	tests := []struct {
		name    string
		path    string
		want    *out
		wantErr string // how the error starts
	}{
		{name: "valid", path: write("valid.yaml", "count: 3\n"), want: &out{3, "env-K"}},
		{name: "unknown setting", path: write("unknown.yaml", "colour: blue\n"), wantErr: `tst: config: ` + filepath.Join(dir, "unknown.yaml") + `: unknown setting "colour" (line 1)`},
		{name: "refused by convert", path: write("negative.yaml", "count: -1\n"), wantErr: "tst: config: count: must not be negative"},
		{name: "missing file", path: filepath.Join(dir, "nonexistent.yaml"), wantErr: "tst: config: open " + filepath.Join(dir, "nonexistent.yaml") + ": "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load("tst: config", tt.path, getenv, convert, AppsSpec[*out]{})
			if data, rerr := os.ReadFile(tt.path); rerr == nil {
				pgot, perr := Parse("tst: config", data, getenv, convert, AppsSpec[*out]{})
				// Load names the file where Parse has none to name.
				if !reflect.DeepEqual(pgot, got) || fmt.Sprint(perr) != strings.Replace(fmt.Sprint(err), tt.path+": ", "", 1) {
					t.Errorf("Parse = %v, %v; Load = %v, %v: want the same", pgot, perr, got, err)
				}
			}
			if tt.wantErr == "" {
				if err != nil || !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if got != nil {
				t.Errorf("got %+v with an error, want nil", got)
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want it to start with %q", err, tt.wantErr)
			}
		})
	}
}

func TestMaxLifetimeSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{0: 12 * 3600, -time.Second: 12 * 3600, time.Hour: 3600, 90 * time.Second: 90} {
		if got := MaxLifetimeSeconds(d); got != want {
			t.Errorf("MaxLifetimeSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

// chmod sets the mode of the file at *p, past the umask, and returns p.
func chmod(p *string, mode os.FileMode) *string {
	if err := os.Chmod(*p, mode); err != nil {
		panic(err)
	}
	return p
}

func TestCookieNamePrefix(t *testing.T) {
	tests := []struct {
		name       string
		namePrefix *string
		hostPrefix *bool
		want       browser.NamePrefix
		wantErr    string
	}{
		{name: "default", want: browser.NamePrefixNone},
		{name: "host_prefix true", hostPrefix: ptr(true), want: browser.NamePrefixHost},
		{name: "host_prefix false", hostPrefix: ptr(false), want: browser.NamePrefixNone},
		{name: "none", namePrefix: ptr("none"), want: browser.NamePrefixNone},
		{name: "host", namePrefix: ptr("host"), want: browser.NamePrefixHost},
		{name: "host-http", namePrefix: ptr("host-http"), want: browser.NamePrefixHostHTTP},
		{name: "unknown", namePrefix: ptr("secure"), wantErr: `cookie.name_prefix: must be none, host or host-http, got "secure"`},
		// host_prefix is the older spelling: both are refused, even agreeing.
		{name: "host and host_prefix true", namePrefix: ptr("host"), hostPrefix: ptr(true), wantErr: "cookie.host_prefix and cookie.name_prefix are the same setting: keep cookie.name_prefix"},
		{name: "none and host_prefix false", namePrefix: ptr("none"), hostPrefix: ptr(false), wantErr: "cookie.host_prefix and cookie.name_prefix are the same setting"},
		{name: "host-http and host_prefix true", namePrefix: ptr("host-http"), hostPrefix: ptr(true), wantErr: "cookie.host_prefix and cookie.name_prefix are the same setting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Deprecations
			s, err := Cookie{NamePrefix: tt.namePrefix, HostPrefix: tt.hostPrefix}.Parse(&d)
			got := s.NamePrefix
			if tt.wantErr != "" {
				checkErr(t, err, tt.wantErr)
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
			// host_prefix alone is read, with a warning naming name_prefix.
			if w := d.Warnings(); (tt.hostPrefix != nil) != (len(w) == 1 && strings.Contains(w[0], "cookie.host_prefix: ") && strings.Contains(w[0], "is deprecated: write cookie.name_prefix: "+got.String())) {
				t.Errorf("warnings %q with host_prefix %v", w, tt.hostPrefix)
			}
		})
	}
}

// TestPublishedTestKeys: every key listed is a valid key, and every 64-hex
// key printed in the documentation and examples is listed.
func TestPublishedTestKeys(t *testing.T) {
	if _, err := crypto.ParseKeyring(PublishedTestKeys...); err != nil {
		t.Fatal(err)
	}
	hexKey := regexp.MustCompile(`\b[0-9a-fA-F]{64}\b`)
	root := filepath.Join("..", "..")
	for _, dir := range []string{"README.md", "docs", "deploy", "examples", "crypto/FORMAT.md", "crypto/testdata/vectors.json", "session/testdata/vectors.json"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "node_modules") {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, k := range hexKey.FindAllString(string(data), -1) {
				if published([]string{k}) == 0 {
					t.Errorf("%s prints the key %s..., which PublishedTestKeys does not list", path, k[:8])
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoopback(t *testing.T) {
	for _, tt := range []struct {
		listeners []string
		want      bool
	}{
		{[]string{"127.0.0.1:8080"}, true},
		{[]string{"127.1.2.3:8080", "[::1]:1", "localhost:9", "unix:/run/a.sock", ""}, true},
		{[]string{"127.0.0.1:8080", ":9100"}, false},
		{[]string{"0.0.0.0:8080"}, false},
		{[]string{"[::]:8080"}, false},
		{[]string{"10.0.0.1:8080"}, false},
		{[]string{"example.localhost:8080"}, false},
		{[]string{"bad"}, false},
		{[]string{"[::ffff:127.0.0.1]:8080"}, true},
		{[]string{"127.1:8080"}, false},
		{[]string{"0x7f.0.0.1:8080"}, false},
		{[]string{"localhost.evil.com:8080"}, false},
		{[]string{"localhost.:8080"}, false},
	} {
		if got := Loopback(tt.listeners...); got != tt.want {
			t.Errorf("Loopback(%q) = %v, want %v", tt.listeners, got, tt.want)
		}
	}
}

func TestPathRule(t *testing.T) {
	tests := []struct {
		name          string
		rule          PathRule
		path, wantErr string
	}{
		{"plain", PathRule{}, "/a/b", ""},
		{"root", PathRule{}, "/", ""},
		{"relative", PathRule{}, "a", `p: "a" must start with "/"`},
		{"empty", PathRule{}, "", `p: "" must start with "/"`},
		{"prefix", PathRule{Slash: 1}, "/api/", ""},
		{"prefix without trailing slash", PathRule{Slash: 1}, "/api", `p: "/api" must start and end with "/"`},
		{"trailing slash refused", PathRule{Slash: -1}, "/a/", `p: "/a/" must not end with "/"`},
		{"too long", PathRule{MaxLen: 3}, "/abc", "p: must be at most 3 characters, got 4"},
		{"query", PathRule{}, "/a?b", `p: "/a?b" must not contain a query or fragment`},
		{"fragment", PathRule{}, "/a#b", `p: "/a#b" must not contain a query or fragment`},
		{"space", PathRule{}, "/a b", `p: "/a b" must not contain whitespace or control characters`},
		{"cookie separator", PathRule{Cookie: true}, "/a;Domain=x", `p: "/a;Domain=x" must not contain ';' or ','`},
		{"comma without Cookie", PathRule{}, "/a,b", ""},
		{"dot-dot", PathRule{NoDotDot: true}, "/a/../b", `p: "/a/../b" must not contain ".."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkErr(t, tt.rule.Check("p", tt.path), tt.wantErr) })
	}
}

// TestURLRule: plain http only to this machine, for every spelling of a
// host that looks local and is not (or that a resolver, not Go, would
// read as loopback), and the hints the messages give.
func TestURLRule(t *testing.T) {
	rule := URLRule{HTTPSUnlessLoopback: true}
	for _, tt := range []struct {
		url  string
		want string // "" accepts; else a part of the error
	}{
		{"http://localhost:8080", ""},
		{"http://LocalHost:8080/cb", ""},
		{"http://app.localhost:3000", ""},
		{"http://127.0.0.1", ""},
		{"http://127.9.9.9:1", ""},
		{"http://[::1]:8080", ""},
		{"http://[::ffff:127.0.0.1]:8080", ""}, // IPv4-mapped 127.0.0.1: still this machine
		{"https://idp.example.com", ""},
		{"http://localhost.evil.com", "must use https"},
		{"http://127.0.0.1.nip.io", "must use https"},
		{"http://0.0.0.0:8080", "must use https"},
		{"http://127.1", "must use https"},      // a resolver reads 127.0.0.1; Go's ParseIP does not
		{"http://0x7f.1", "must use https"},     // hex
		{"http://2130706433", "must use https"}, // 127.0.0.1 as one number
		{"http://127.0.0.1@evil.com", `must not contain "@"`},
		{"http://localhost.", "must use https"}, // a trailing dot is another name to a browser's resolver
		{"http://127.0.0.1.:8080", "must use https"},
		{"http://localhost%2eevil.com", "is not a valid URL"},
		{"http://[::1%25eth0]:8080", "must use https"}, // a zone: not the loopback address ParseIP knows
		{"http://127.0.0.1:0", "has an invalid port"},
		{"http://127.0.0.1:65536", "has an invalid port"},
		{"http://127.0.0.1:", "has an empty port"},
	} {
		t.Run(tt.url, func(t *testing.T) {
			_, err := rule.Check(tt.url)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check(%q) = %v, want accepted", tt.url, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Check(%q) = %v, want an error containing %q", tt.url, err, tt.want)
			}
			// LoopbackURLs judges the host alone: the port cases' host is.
			loopback := tt.want == "" && strings.HasPrefix(tt.url, "http:") || strings.Contains(tt.want, "port")
			if got := LoopbackURLs(tt.url); got != loopback {
				t.Errorf("LoopbackURLs(%q) = %v", tt.url, got)
			}
		})
	}
	hinted := URLRule{HTTPSUnlessLoopback: true, Example: "http://host[:port]", OrElse: "store: redis"}
	for url, want := range map[string]string{
		"127.0.0.1:9000":    `"127.0.0.1:9000" is not a valid URL (want http://host[:port]): `,
		"ftp://127.0.0.1":   `"ftp://127.0.0.1" must start with http:// or https://, as http://host[:port]`,
		"http://10.0.0.7:1": `"http://10.0.0.7:1" must use https, or store: redis (plain http only to`,
	} {
		if _, err := hinted.Check(url); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%q) = %v, want %q", url, err, want)
		}
	}
}
