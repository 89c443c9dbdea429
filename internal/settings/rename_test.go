package settings

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
)

// renamedFile is a file struct as the daemons write theirs: the shared
// blocks embedded, old spellings listed by Renames.
type renamedFile struct {
	Deprecations

	Cookie   Cookie   `yaml:"cookie"`
	CORS     CORS     `yaml:"cors"`
	Timeouts Timeouts `yaml:"timeouts"`
	Section  struct {
		Value *string `yaml:"value"`
	} `yaml:"section"`
}

func (*renamedFile) Renames() []Rename {
	return append([]Rename{{Old: "cors_enabled", New: "cors.enabled"}, {Old: "old_value", New: "section.value"}}, SharedRenames...)
}

// renamed is what the test's conversion makes of a renamedFile.
type renamed struct {
	cookie   CookieSettings
	cors     bool
	timeouts ServerTimeouts
	value    string
	warnings []string
}

func convertRenamed(f *renamedFile, getenv func(string) string) (*renamed, error) {
	cookie, err := f.Cookie.Parse(&f.Deprecations)
	if err != nil {
		return nil, err
	}
	timeouts, err := f.Timeouts.Parse("timeouts")
	if err != nil {
		return nil, err
	}
	return &renamed{cookie, f.CORS.On(), timeouts, ValueOr(f.Section.Value, ""), f.Warnings()}, nil
}

func TestRenames(t *testing.T) {
	defaults := CookieSettings{Prefix: "example", Format: crypto.FormatV2}
	tests := []struct {
		name     string
		yaml     string
		cookie   CookieSettings
		cors     bool
		value    string
		warnings []string // each warning starts so
	}{
		{name: "new spellings", yaml: "cookie: {prefix: app, name_prefix: host, format: v1, accept: [dare]}\ncors: {enabled: false}\n",
			cookie: CookieSettings{Prefix: "app", NamePrefix: browser.NamePrefixHost, Format: crypto.FormatV1, Accept: []crypto.Format{crypto.FormatDARE}}},
		{name: "old spellings", yaml: "cookie_name_prefix: app\ncookie_format: v1\ncookie_accept: [dare]\ncors_enabled: false\ncookie: {host_prefix: true}\n",
			cookie: CookieSettings{Prefix: "app", NamePrefix: browser.NamePrefixHost, Format: crypto.FormatV1, Accept: []crypto.Format{crypto.FormatDARE}},
			warnings: []string{"cors_enabled (line 4) is deprecated: write cors.enabled", "cookie_name_prefix (line 1) is deprecated: write cookie.prefix",
				"cookie_format (line 2) is deprecated: write cookie.format", "cookie_accept (line 3) is deprecated: write cookie.accept",
				"cookie.host_prefix: true is deprecated: write cookie.name_prefix: host"}},
		{name: "old into an empty section", yaml: "cookie:\ncookie_format: dare\n", cors: true,
			cookie: CookieSettings{Prefix: "example", Format: crypto.FormatDARE, Accept: []crypto.Format{crypto.FormatV1, crypto.FormatDARE}}, warnings: []string{"cookie_format (line 2)"}},
		{name: "old beside other new settings", yaml: "cookie: {prefix: app}\ncookie_accept: []\n", cors: true,
			cookie: CookieSettings{Prefix: "app", Format: crypto.FormatV2}, warnings: []string{"cookie_accept (line 2)"}},
		{name: "old into an alias leaves the anchor", yaml: "section: &s {}\ncookie: *s\ncookie_format: v2\n", cors: true, cookie: defaults,
			warnings: []string{"cookie_format (line 3)"}},
		{name: "old into a section left out", yaml: "old_value: x\n", cors: true, cookie: defaults, value: "x", warnings: []string{"old_value (line 1) is deprecated: write section.value"}},
		{name: "nothing old", yaml: "timeouts: {read: 1s}\n", cors: true, cookie: defaults},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("tst: config", []byte(tt.yaml), nil, convertRenamed, AppsSpec[*renamed]{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.cookie, tt.cookie) || got.cors != tt.cors || got.value != tt.value {
				t.Errorf("got %+v, cors %v, value %q; want %+v, cors %v, value %q", got.cookie, got.cors, got.value, tt.cookie, tt.cors, tt.value)
			}
			if len(got.warnings) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %q", got.warnings, tt.warnings)
			}
			for i, w := range tt.warnings {
				if !strings.HasPrefix(got.warnings[i], w) {
					t.Errorf("warning %q, want it to start with %q", got.warnings[i], w)
				}
			}
		})
	}
}

func TestRenamesRefuse(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"both spellings", "cookie_format: v1\ncookie: {format: v1}\n",
			"tst: config: cookie_format (line 1) and cookie.format (line 2) are the same setting: keep cookie.format and remove cookie_format, its deprecated spelling"},
		{"both, old last", "cors: {enabled: true}\ncors_enabled: true\n", "tst: config: cors_enabled (line 2) and cors.enabled (line 1) are the same setting"},
		{"old twice", "cookie_format: v1\ncookie_format: v2\n", "tst: config: cookie_format: set twice (lines 1 and 2)"},
		{"host_prefix and name_prefix", "cookie: {host_prefix: true, name_prefix: host}\n", "tst: config: cookie.host_prefix and cookie.name_prefix are the same setting"},
		{"section not a mapping", "cookie: [a]\ncookie_format: v1\n", "tst: config: cookie: must be a mapping of settings (line 1)"},
		// The check names the new spelling and says how the file wrote it.
		{"bad value, old spelling", "cookie_format: v3\n", `tst: config: cookie.format: must be v2, v1 or dare, got "v3" (written cookie_format, its deprecated spelling)`},
		{"bad list item, old spelling", "cookie_accept: [v4]\n", `tst: config: cookie.accept[0]: must be v2, v1 or dare, got "v4" (written cookie_accept, its deprecated spelling)`},
		{"bad prefix, old spelling", "cookie_name_prefix: a.b\n", `tst: config: cookie.prefix: "a.b" may hold only`},
		{"bad value, new spelling", "cookie: {format: v3}\n", `tst: config: cookie.format: must be v2, v1 or dare, got "v3"`},
		{"shared timeouts", "timeouts: {shutdown: 0s}\n", `tst: config: timeouts.shutdown: must be greater than zero, got "0s"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("tst: config", []byte(tt.yaml), nil, convertRenamed, AppsSpec[*renamed]{})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %v, want it to start with %q", err, tt.want)
			}
			if strings.HasSuffix(tt.want, `"v3"`) && strings.Contains(err.Error(), "written") {
				t.Errorf("error %q says the file used the old spelling; it did not", err)
			}
		})
	}
}

// TestLoadNamesTheFile: errors of reading YAML name the file and line;
// errors of the checks name the setting.
func TestLoadNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"syntax", "cookie: {prefix: app}\ncors: [\n", "tst: config: FILE: line 2: did not find expected node content"},
		{"tabs", "cookie:\n\tprefix: app\n", "tst: config: FILE: line 2: found character that cannot start any token"},
		{"unknown setting", "cookie: {prefx: app}\n", `tst: config: FILE: unknown setting "cookie.prefx" (line 1): did you mean cookie.prefix?`},
		{"wrong type", "cors: {enabled: often}\n", "tst: config: FILE: cors.enabled: must be true or false (line 1)"},
		{"both spellings", "cors_enabled: true\ncors: {enabled: true}\n", "tst: config: FILE: cors_enabled (line 1) and cors.enabled (line 2)"},
		{"check", "timeouts: {read: -1s}\n", "tst: config: timeouts.read: must be greater than zero"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load("tst: config", path, nil, convertRenamed, AppsSpec[*renamed]{})
			want := strings.Replace(tt.want, "FILE", path, 1)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %v, want it to start with %q", err, want)
			}
		})
	}
}

func TestClosest(t *testing.T) {
	known := []string{"listen", "metrics_listen", "trusted_web_origins", "trusted_proxies", "cors", "cookie", "timeouts", "as", "at", "log"}
	for _, tt := range []struct{ name, want string }{
		{"trusted_web_origin", "trusted_web_origins"},
		{"trusted-web-origins", "trusted_web_origins"},
		{"Listen", "listen"},
		{"lsiten", "listen"}, // a swap is one slip
		{"lsten", "listen"},  // so is a letter left out
		{"timeout", "timeouts"},
		{"metric_listen", "metrics_listen"},
		{"coookie", "cookie"},
		{"ax", ""},      // too short to guess
		{"color", ""},   // nothing close
		{"origins", ""}, // far from trusted_web_origins
		{"logs", "log"},
		{"trusted_proxy", "trusted_proxies"},
		{"lisen", "listen"},
		{"cookies_prefix", ""}, // not in this list
	} {
		if got := closest(tt.name, known); got != tt.want {
			t.Errorf("closest(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestSharedBlocks(t *testing.T) {
	var f renamedFile
	if err := decode([]byte("timeouts: {read: 1s, write: 2s, idle: 3s, shutdown: 4s, shutdown_delay: 5s}\n"), &f); err != nil {
		t.Fatal(err)
	}
	got, err := f.Timeouts.Parse("timeouts")
	if want := (ServerTimeouts{time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second}); err != nil || got != want {
		t.Errorf("Timeouts.Parse = %+v, %v; want %+v", got, err, want)
	}
	if got, err := (Timeouts{}).Parse("timeouts"); err != nil || got != (ServerTimeouts{30 * time.Second, 30 * time.Second, 120 * time.Second, 30 * time.Second, 0}) {
		t.Errorf("default timeouts %+v, %v", got, err)
	}
	for _, text := range []string{"-1s", "11m"} {
		v, err := time.ParseDuration(text)
		if err != nil {
			t.Fatal(err)
		}
		bad := Duration{v, text}
		if _, err := (Timeouts{ShutdownDelay: &bad}).Parse("timeouts"); err == nil || !strings.Contains(err.Error(), "timeouts.shutdown_delay") {
			t.Errorf("shutdown_delay %s: error %v, want one naming timeouts.shutdown_delay", text, err)
		}
	}
	if !(CORS{}).On() || (CORS{Enabled: ptr(false)}).On() {
		t.Error("cors.enabled: want default true, and false when set so")
	}
	if ring, err := KeySource.Keyring([]string{testKey}, nil, nil, []string{"127.0.0.1:8080"}, nil); err != nil || ring.Len() != 1 {
		t.Errorf("KeySource.Keyring: %v", err)
	}
	if _, err := KeySource.Keyring(nil, nil, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "TH_ENCRYPTION_KEYS") {
		t.Errorf("KeySource.Keyring with no source: %v, want the three sources named", err)
	}
}
