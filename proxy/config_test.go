package proxy

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/internal/settings/settingstest"
	"github.com/tokenhandler/tokenhandler/internal/workers"
)

// configTestKey is the public TEST key of docs/contract.md. Never use it anywhere
// but in tests.
const configTestKey = "7b99279ab87533d3c238db874a842a91ee26a76027f3c03c317504963d2c9926"

// configBase is the smallest valid configuration; error cases append to it.
const configBase = "encryption_keys: [\"" + configTestKey + "\"]\n" +
	"trusted_web_origins: [\"http://www.example.localhost:3000\"]\n"

// newConfigTestKey returns a fresh random key in hex.
func newConfigTestKey() string { return string(crypto.GenerateKey().AppendHex(nil)) }

// TestParseConfig decodes every setting, and the smallest configuration
// into its defaults.
func TestParseConfig(t *testing.T) {
	// Fresh keys: a published test key is refused beside a public origin.
	sealingKey, olderKey := newConfigTestKey(), newConfigTestKey()
	full := `
listen: unix:/run/tokenhandler/proxy.sock
metrics_listen: 127.0.0.1:9101
cookie: {prefix: my_app-1, name_prefix: host, format: v1, accept: [dare]}
encryption_keys: ["` + sealingKey + `", "` + olderKey + `"]
trusted_web_origins: ["https://www.example.com", "http://www.example.localhost:3000"]
cors:
  enabled: false
  allow_methods: [GET, POST]
  allow_headers: [Content-Type, x-my_app-1-csrf]
  expose_headers: [X-Request-Id]
  max_age: 0
allow_tokens: true
allow_token_schemes: [DPoP]
trusted_proxies: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32"]
remove_cookie_headers: false
auth_path: /auth/check
auth_endpoint: true
session: {max_lifetime: 8h}
routes:
  - {path_prefix: /api/, upstream: "http://127.0.0.1:9000", strip_prefix: true}
  - path_prefix: /orders/
    upstream:
      - https://Orders.internal
      - "http://[::1]:9002/"
timeouts: {read: 1s, write: 2s, idle: 3m, upstream: 500ms, shutdown: 1h, park: 250ms}
limits: {max_request_header_bytes: 4096, max_body_bytes: 1}
log: {level: debug, format: console}
workers: 3
`
	tests := []struct {
		name    string
		yaml    string
		sealing string // the key the ring seals with
		keys    int
		want    Config
	}{
		{"full", full, sealingKey, 2, Config{
			Listen:              "unix:/run/tokenhandler/proxy.sock",
			MetricsListen:       "127.0.0.1:9101",
			CookieNamePrefix:    "my_app-1",
			NamePrefix:          browser.NamePrefixHost,
			TrustedWebOrigins:   []string{"https://www.example.com", "http://www.example.localhost:3000"},
			CORS:                CORS{Enabled: false, AllowMethods: []string{"GET", "POST"}, AllowHeaders: []string{"Content-Type", "x-my_app-1-csrf"}, ExposeHeaders: []string{"X-Request-Id"}, MaxAge: 0},
			AllowTokens:         true,
			AllowTokenSchemes:   []string{"DPoP"},
			TrustedProxies:      []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")},
			RemoveCookieHeaders: false,
			AuthPath:            "/auth/check",
			AuthEndpoint:        true,
			CookieFormat:        crypto.FormatV1,
			CookieAccept:        []crypto.Format{crypto.FormatDARE},
			MaxLifetime:         8 * time.Hour,
			Routes: []Route{
				{PathPrefix: "/api/", StripPrefix: true, Upstreams: []Upstream{
					{Addr: "127.0.0.1:9000", TLS: false, URL: "http://127.0.0.1:9000"},
				}},
				{PathPrefix: "/orders/", Upstreams: []Upstream{
					{Addr: "orders.internal:443", TLS: true, URL: "https://Orders.internal"},
					{Addr: "[::1]:9002", TLS: false, URL: "http://[::1]:9002/"},
				}},
			},
			Timeouts: Timeouts{ServerTimeouts: settings.ServerTimeouts{Read: time.Second, Write: 2 * time.Second, Idle: 3 * time.Minute, Shutdown: time.Hour}, Upstream: 500 * time.Millisecond, Park: 250 * time.Millisecond},
			Limits:   Limits{MaxRequestHeaderBytes: 4096, MaxBodyBytes: 1},
			Log:      Log{Level: zerolog.DebugLevel, Format: "console"},
			Workers:  3,
		}},
		{"defaults", configBase, configTestKey, 1, Config{
			Listen:              "127.0.0.1:8081",
			CookieNamePrefix:    "example",
			TrustedWebOrigins:   []string{"http://www.example.localhost:3000"},
			CORS:                CORS{Enabled: true, MaxAge: 86400},
			TrustedProxies:      []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, // NGINX beside the proxy
			RemoveCookieHeaders: true,
			AuthPath:            "/_oauth-proxy/auth",
			AuthEndpoint:        true, // no routes: auth_request mode
			CookieFormat:        crypto.FormatV2,
			MaxLifetime:         12 * time.Hour,
			Timeouts:            Timeouts{ServerTimeouts: settings.ServerTimeouts{Read: 30 * time.Second, Write: 30 * time.Second, Idle: 120 * time.Second, Shutdown: 30 * time.Second}, Upstream: 30 * time.Second, Park: 0}, // loopback: behind NGINX, no parking
			Limits:              Limits{MaxRequestHeaderBytes: 16384, MaxBodyBytes: 10485760},
			Log:                 Log{Level: zerolog.InfoLevel, Format: "json"},
			Workers:             1,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tt.yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.Keys.Len() != tt.keys {
				t.Errorf("Keys.Len() = %d, want %d", got.Keys.Len(), tt.keys)
			}
			settingstest.SealsWith(t, got.Keys, tt.sealing)
			got.Keys = nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("ParseConfig:\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestParseConfigAccepts(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *Config)
	}{
		{"empty sections keep defaults", configBase + "cors:\nlog:\ntimeouts:\nlimits:\nroutes:\n", func(t *testing.T, c *Config) {
			if !c.CORS.Enabled || c.CORS.MaxAge != 86400 || c.Log.Format != "json" || c.Timeouts.Idle != 120*time.Second || c.Routes != nil {
				t.Errorf("defaults not applied: %+v", c)
			}
		}},
		{"upstream default ports", configBase + "routes:\n- {path_prefix: /a/, upstream: [\"http://h\", \"https://h/\"]}\n", func(t *testing.T, c *Config) {
			want := []Upstream{{Addr: "h:80", URL: "http://h"}, {Addr: "h:443", TLS: true, URL: "https://h/"}}
			if !reflect.DeepEqual(c.Routes[0].Upstreams, want) {
				t.Errorf("Upstreams = %+v, want %+v", c.Routes[0].Upstreams, want)
			}
		}},
		{"nested prefixes", configBase + "routes:\n- {path_prefix: /api/, upstream: http://a:1}\n- {path_prefix: /api/v2/, upstream: http://b:2}\n", func(t *testing.T, c *Config) {
			if len(c.Routes) != 2 {
				t.Errorf("Routes = %+v, want 2 routes", c.Routes)
			}
		}},
		{"route below the auth endpoint", configBase + "routes:\n- {path_prefix: /_oauth-proxy/auth/x/, upstream: http://a:1}\n", nil},
		{"routes turn the auth endpoint off", configBase + "routes:\n- {path_prefix: /api/, upstream: http://a:1}\n", func(t *testing.T, c *Config) {
			if c.AuthEndpoint {
				t.Error("AuthEndpoint = true with routes and no auth_endpoint setting, want false")
			}
		}},
		{"auth endpoint asked for beside routes", configBase + "auth_endpoint: true\nroutes:\n- {path_prefix: /api/, upstream: http://a:1}\n", func(t *testing.T, c *Config) {
			if !c.AuthEndpoint {
				t.Error("AuthEndpoint = false with auth_endpoint: true")
			}
		}},
		{"auth endpoint off without routes", configBase + "auth_endpoint: false\n", func(t *testing.T, c *Config) {
			if c.AuthEndpoint {
				t.Error("AuthEndpoint = true with auth_endpoint: false")
			}
		}},
		{"a route over auth_path when the auth endpoint is off", configBase + "routes: [{path_prefix: /, upstream: http://a}]\n", func(t *testing.T, c *Config) {
			if c.AuthEndpoint || c.Routes[0].PathPrefix != "/" {
				t.Errorf("AuthEndpoint %v, Routes %+v; want off and the route /", c.AuthEndpoint, c.Routes)
			}
		}},
		{"cookie.format v1 reads dare too", configBase + "cookie: {format: v1}\n", func(t *testing.T, c *Config) {
			if c.CookieFormat != crypto.FormatV1 || !reflect.DeepEqual(c.CookieAccept, []crypto.Format{crypto.FormatV1, crypto.FormatDARE}) {
				t.Errorf("CookieFormat %v, CookieAccept %v; want v1 and [v1 dare]", c.CookieFormat, c.CookieAccept)
			}
		}},
		{"cookie.format v2 with a migration", configBase + "cookie: {format: v2, accept: [v1]}\n", func(t *testing.T, c *Config) {
			if c.CookieFormat != crypto.FormatV2 || !reflect.DeepEqual(c.CookieAccept, []crypto.Format{crypto.FormatV1}) {
				t.Errorf("CookieFormat %v, CookieAccept %v; want v2 and [v1]", c.CookieFormat, c.CookieAccept)
			}
		}},
		{"session lifetime at its bounds", configBase + "session: {max_lifetime: 1m}\n", func(t *testing.T, c *Config) {
			if c.MaxLifetime != time.Minute {
				t.Errorf("MaxLifetime = %v, want 1m", c.MaxLifetime)
			}
		}},
		{"listen on port 0 twice", configBase + "listen: 127.0.0.1:0\nmetrics_listen: 127.0.0.1:0\n", nil},
		// Not with configTestKey: a published test key needs loopback listeners.
		{"listen on all interfaces", strings.Replace(configBase, configTestKey, newConfigTestKey(), 1) + "listen: \":8081\"\nmetrics_listen: \"[::1]:9101\"\n", nil},
		{"published test key on loopback", configBase + "listen: 127.0.0.1:8081\nmetrics_listen: \"[::1]:9101\"\n", nil},
		{"origin with port and ipv6", "encryption_keys: [\"" + newConfigTestKey() + "\"]\ntrusted_web_origins: [\"https://a.example:8443\", \"http://[::1]:3000\"]\n", nil},
		{"published key for local origins", "encryption_keys: [\"" + configTestKey + "\"]\ntrusted_web_origins: [\"http://localhost:3000\", \"http://[::1]:3000\"]\n", nil},
		{"cors tokens", configBase + "cors: {allow_methods: [GET, PATCH], allow_headers: [\"x-example-csrf\", \"Content-Type\"], expose_headers: [\"X-Request-Id\"]}\n", nil},
		{"anchors and aliases", configBase + "timeouts: {read: &t 5s, write: *t}\n", func(t *testing.T, c *Config) {
			if c.Timeouts.Write != 5*time.Second {
				t.Errorf("Timeouts.Write = %v, want 5s", c.Timeouts.Write)
			}
		}},
		{"parking on a Unix socket when asked", "listen: unix:/run/p.sock\n" + configBase + "timeouts: {park: 2s}\n", func(t *testing.T, c *Config) {
			if c.Timeouts.Park != 2*time.Second {
				t.Errorf("Timeouts.Park = %v, want 2s", c.Timeouts.Park)
			}
		}},
		{"parking off", configBase + "timeouts: {park: 0s}\n", func(t *testing.T, c *Config) {
			if c.Timeouts.Park != 0 {
				t.Errorf("Timeouts.Park = %v, want 0 (off)", c.Timeouts.Park)
			}
		}},
		{"explicit document start", "---\n" + configBase, nil},
		{"workers auto", configBase + "workers: auto\n", func(t *testing.T, c *Config) {
			if c.Workers != min(runtime.GOMAXPROCS(0), 64) || c.Worker != "" {
				t.Errorf("Workers %d, Worker %q; want GOMAXPROCS %d, \"\"", c.Workers, c.Worker, runtime.GOMAXPROCS(0))
			}
		}},
		{"workers at their bounds", configBase + "workers: 64\n", func(t *testing.T, c *Config) {
			if c.Workers != 64 {
				t.Errorf("Workers %d, want 64", c.Workers)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// TestParseConfigParkDefault: parking is off by default on the listeners
// only a reverse proxy on the host reaches (settings.Loopback, whatever the
// case of "localhost"), and on (1 s) on the others.
func TestParseConfigParkDefault(t *testing.T) {
	for _, tt := range []struct {
		listen string
		want   time.Duration
	}{
		{"unix:/run/tokenhandler/proxy.sock", 0},
		{"127.0.0.1:8081", 0},
		{"127.0.0.2:8081", 0},
		{"\"[::1]:8081\"", 0},
		{"localhost:8081", 0},
		{"LocalHost:8081", 0},
		{"0.0.0.0:8081", time.Second},
		{"\":8081\"", time.Second},
		{"\"[::]:8081\"", time.Second},
		{"192.0.2.10:443", time.Second},
		{"proxy.example.com:443", time.Second},
	} {
		yaml := "listen: " + tt.listen + "\n" + strings.Replace(configBase, configTestKey, newConfigTestKey(), 1)
		c, err := ParseConfig([]byte(yaml), nil)
		if err != nil {
			t.Fatalf("listen %s: %v", tt.listen, err)
		}
		if c.Timeouts.Park != tt.want {
			t.Errorf("listen %s: Timeouts.Park = %v, want %v", tt.listen, c.Timeouts.Park, tt.want)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	keysOnly := "encryption_keys: [\"" + configTestKey + "\"]\n"
	badKey := configTestKey[:63] + "z"
	tests := []struct {
		name string
		yaml string
		want string // the message must contain this
	}{
		// The file as a whole.
		{"empty", "", "proxy: config: the file is empty"},
		{"comments only", "# nothing\n", "proxy: config: the file is empty"},
		{"null document", "---\n", "proxy: config: the file is empty"},
		{"list", "- a\n- b\n", "proxy: config: the file must be a YAML mapping"},
		{"scalar", configTestKey + "\n", "proxy: config: the file must be a YAML mapping"},
		{"two documents", configBase + "---\n" + configBase, "several YAML documents"},
		{"syntax", "listen: [\n", "proxy: config: line 1: did not find expected node content"},

		// Forwarding headers and own tokens (issue #12).
		{"trusted_proxies not an address", configBase + "trusted_proxies: [nginx.local]\n", `trusted_proxies[0]: "nginx.local" is not an IP address or CIDR prefix`},
		{"trusted_proxies bad prefix", configBase + "trusted_proxies: [10.0.0.0/33]\n", `trusted_proxies[0]: "10.0.0.0/33" is not an IP address or CIDR prefix`},
		{"trusted_proxies host bits", configBase + "trusted_proxies: [127.0.0.1, 10.1.2.3/8]\n", `trusted_proxies[1]: "10.1.2.3/8" has address bits beyond its prefix length: write 10.0.0.0/8`},
		{"trusted_proxies zone", configBase + "trusted_proxies: [\"fe80::1%eth0\"]\n", `trusted_proxies[0]: "fe80::1%eth0" must not have an IPv6 zone`},
		{"trusted_proxies mapped", configBase + "trusted_proxies: [\"::ffff:10.0.0.1\"]\n", `IPv4-mapped IPv6 address: write the IPv4 form`},
		{"allow_token_schemes without allow_tokens", configBase + "allow_token_schemes: [DPoP]\n", "allow_token_schemes: needs allow_tokens: true"},
		{"allow_token_schemes Bearer", configBase + "allow_tokens: true\nallow_token_schemes: [bearer]\n", `allow_token_schemes[0]: "bearer": Bearer passes with allow_tokens already`},
		{"allow_token_schemes twice", configBase + "allow_tokens: true\nallow_token_schemes: [DPoP, dpop]\n", `allow_token_schemes[1]: "dpop" repeats allow_token_schemes[0]`},
		{"allow_token_schemes not a token", configBase + "allow_tokens: true\nallow_token_schemes: [\"Da Po\"]\n", "allow_token_schemes"},

		{"workers 0", configBase + "workers: 0\n", `proxy: config: workers: must be auto or a number from 1 to 64, got "0"`},
		{"workers 65", configBase + "workers: 65\n", `proxy: config: workers: must be auto or a number from 1 to 64, got "65"`},
		{"workers word", configBase + "workers: many\n", `proxy: config: workers: must be auto or a number from 1 to 64, got "many"`},
		{"workers list", configBase + "workers: [2]\n", `proxy: config: workers: must be a string`},
		{"workers on port 0", configBase + "listen: 127.0.0.1:0\nworkers: 2\n", "proxy: config: workers: needs a fixed listen port: with port 0 each of the 2 workers would get a port of its own"},

		// Revocation (issue #13).
		{"revocation.state_dir", configBase + "revocation: {state_dir: /var/lib/th}\n", "proxy: config: revocation.state_dir: is the agent's setting: a proxy keeps no list of its own, it follows revocation.feed"},
		{"revocation.fail_closed_after without a feed", configBase + "revocation: {fail_closed_after: 30s}\n", "proxy: config: revocation.fail_closed_after: needs revocation.feed"},
		{"revocation.feed not a URL", configBase + "revocation: {feed: '127.0.0.1:9100'}\n", "proxy: config: revocation.feed: "},
		{"revocation.store unknown", configBase + "revocation: {store: memory}\n", `proxy: config: revocation.store: must be embedded, redis or off, got "memory"`},

		// Decoding.
		{"unknown top-level", configBase + "listne: 127.0.0.1:1\n", `proxy: config: unknown setting "listne" (line 3)`},
		{"unknown nested", configBase + "cors: {enabled: true, max_agee: 5}\n", `unknown setting "cors.max_agee" (line 3)`},
		{"unknown in route", configBase + "routes:\n  - {path_prefix: /a/, upstreams: http://a}\n", `unknown setting "routes[0].upstreams" (line 4)`},
		{"unknown cookie setting", configBase + "cookie: {domain: example.com}\n", `unknown setting "cookie.domain"`},
		{"set twice", configBase + "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n", "listen: set twice (lines 3 and 4)"},
		{"wrong type int", configBase + "cors: {max_age: abc}\n", "cors.max_age: must be an integer (line 3)"},
		{"wrong type bool", configBase + "allow_tokens: maybe\n", "allow_tokens: must be true or false"},
		{"wrong type list", configBase + "cors: {allow_methods: GET}\n", "cors.allow_methods: must be a list of strings"},
		{"wrong type string", configBase + "listen: [a]\n", "listen: must be a string"},
		{"section not a mapping", configBase + "cors: true\n", "cors: must be a mapping"},
		{"routes not a list", configBase + "routes: {path_prefix: /a/}\n", "routes: must be a list"},
		{"route not a mapping", configBase + "routes: [/a/]\n", "routes[0]: must be a mapping"},

		// Keys; the key itself must never be quoted (checked for every case).
		{"keys as a string", "encryption_keys: \"" + configTestKey + "\"\ntrusted_web_origins: [\"http://a\"]\n", "encryption_keys: must be a list of strings"},
		{"keys as a mapping", "encryption_keys: {" + configTestKey + ": 1}\ntrusted_web_origins: [\"http://a\"]\n", "encryption_keys: must be a list of strings"},
		{"no keys", "trusted_web_origins: [\"http://a\"]\n", "encryption_keys: no cookie encryption keys: set encryption_keys, encryption_keys_file or the environment variable TH_ENCRYPTION_KEYS"},
		{"empty key list", "encryption_keys: []\ntrusted_web_origins: [\"http://a\"]\n", "encryption_keys: crypto: a key ring needs at least one key"},
		{"bad second key", "encryption_keys: [\"" + configTestKey + "\", \"" + configTestKey[:62] + "\"]\ntrusted_web_origins: [\"http://a\"]\n", "encryption_keys: crypto: key 2 must be 64 hex characters"},
		{"non-hex key", "encryption_keys: [\"" + badKey + "\"]\ntrusted_web_origins: [\"http://a\"]\n", "encryption_keys: crypto: key 1 contains a character that is not hexadecimal"},
		{"repeated key", "encryption_keys: [\"" + configTestKey + "\", \"" + configTestKey + "\"]\ntrusted_web_origins: [\"http://a\"]\n", "encryption_keys: crypto: key 2 duplicates key 1"},
		{"keys file and list", configBase + "encryption_keys_file: /nonexistent\n", "encryption_keys: keys given by both encryption_keys and encryption_keys_file"},
		{"empty keys file name", "encryption_keys_file: \"\"\ntrusted_web_origins: [\"http://a\"]\n", "encryption_keys_file: must be a file path"},
		{"missing keys file", "encryption_keys_file: /nonexistent/keys\ntrusted_web_origins: [\"http://a\"]\n", "encryption_keys_file: open /nonexistent/keys"},

		// cookie.prefix
		{"prefix empty", configBase + "cookie: {prefix: \"\"}\n", "cookie.prefix: must be 1 to 64 characters long, got 0"},
		{"prefix too long", configBase + "cookie: {prefix: " + strings.Repeat("a", 65) + "}\n", "cookie.prefix: must be 1 to 64 characters long, got 65"},
		{"prefix too long, old spelling", configBase + "cookie_name_prefix: " + strings.Repeat("a", 65) + "\n", "cookie.prefix: must be 1 to 64 characters long, got 65 (written cookie_name_prefix, its deprecated spelling)"},
		{"prefix in both spellings", configBase + "cookie_name_prefix: a\ncookie: {prefix: a}\n", "cookie_name_prefix (line 3) and cookie.prefix (line 4) are the same setting: keep cookie.prefix"},
		{"name_prefix unknown", configBase + "cookie: {name_prefix: secure}\n", `cookie.name_prefix: must be none, host or host-http, got "secure"`},
		{"host_prefix beside name_prefix", configBase + "cookie: {name_prefix: none, host_prefix: true}\n", `cookie.host_prefix and cookie.name_prefix are the same setting: keep cookie.name_prefix`},
		{"near a known setting", configBase + "trusted_proxy: []\n", `unknown setting "trusted_proxy" (line 3): did you mean trusted_proxies?`},
		{"near a known cors setting", configBase + "cors: {max-age: 5}\n", `unknown setting "cors.max-age" (line 3): did you mean cors.max_age?`},
		{"near an inline timeout", configBase + "timeouts: {shutdwon: 5s}\n", `unknown setting "timeouts.shutdwon" (line 3): did you mean timeouts.shutdown?`},
		{"published test key on all interfaces", configBase + "listen: 0.0.0.0:8081\n", "encryption_keys: key 1 is a published test key"},
		{"published test key with a public metrics listener", configBase + "metrics_listen: \":9101\"\n", "encryption_keys: key 1 is a published test key"},
		// Loopback listeners behind a public NGINX are production.
		{"published test key for a public origin", "encryption_keys: [\"" + configTestKey + "\"]\ntrusted_web_origins: [\"https://www.example.com\"]\n", "encryption_keys: key 1 is a published test key"},
		{"prefix space", configBase + "cookie: {prefix: my app}\n", `cookie.prefix: "my app" may hold only`},
		{"prefix dot", configBase + "cookie: {prefix: a.b}\n", "cookie.prefix: \"a.b\" may hold only"},
		{"prefix non-ascii", configBase + "cookie: {prefix: café}\n", "cookie.prefix:"},

		// trusted_web_origins
		{"origins missing", keysOnly, "trusted_web_origins: at least one origin is required"},
		{"origins empty", keysOnly + "trusted_web_origins: []\n", "trusted_web_origins: at least one origin is required"},
		{"origin wildcard", keysOnly + "trusted_web_origins: [\"*\"]\n", `trusted_web_origins[0]: "*" is not allowed`},
		{"origin null", keysOnly + "trusted_web_origins: [\"null\"]\n", `trusted_web_origins[0]: "null" is not allowed`},
		{"origin slash", keysOnly + "trusted_web_origins: [\"http://a\", \"http://b/\"]\n", `trusted_web_origins[1]: "http://b/" must not have a path, not even "/"`},
		{"origin path", keysOnly + "trusted_web_origins: [\"http://b/app\"]\n", "trusted_web_origins[0]: \"http://b/app\" must not have a path"},
		{"origin query", keysOnly + "trusted_web_origins: [\"http://b?x=1\"]\n", "trusted_web_origins[0]: \"http://b?x=1\" must not have a query"},
		{"origin empty query", keysOnly + "trusted_web_origins: [\"http://b?\"]\n", "trusted_web_origins[0]: \"http://b?\" must not have a query"},
		{"origin fragment", keysOnly + "trusted_web_origins: [\"http://b#x\"]\n", "trusted_web_origins[0]: \"http://b#x\" must not have a fragment"},
		{"origin userinfo", keysOnly + "trusted_web_origins: [\"http://user:s3cret@b\"]\n", `trusted_web_origins[0]: must not contain "@"`},
		{"origin space", keysOnly + "trusted_web_origins: [\"http://b \"]\n", "trusted_web_origins[0]: \"http://b \" must not contain whitespace"},
		{"origin upper case", keysOnly + "trusted_web_origins: [\"http://WWW.b\"]\n", "trusted_web_origins[0]: \"http://WWW.b\" must be lower case"},
		{"origin upper-case scheme", keysOnly + "trusted_web_origins: [\"HTTP://b\"]\n", "trusted_web_origins[0]: \"HTTP://b\" must be lower case"},
		{"origin scheme", keysOnly + "trusted_web_origins: [\"ftp://b\"]\n", "trusted_web_origins[0]: \"ftp://b\" must start with http:// or https://"},
		{"origin no scheme", keysOnly + "trusted_web_origins: [\"www.example.com\"]\n", "trusted_web_origins[0]: \"www.example.com\" must start with http://"},
		{"origin no host", keysOnly + "trusted_web_origins: [\"http://\"]\n", "trusted_web_origins[0]: \"http://\" has no host"},
		{"origin bad port", keysOnly + "trusted_web_origins: [\"http://b:99999\"]\n", "trusted_web_origins[0]: \"http://b:99999\" has an invalid port"},
		{"origin empty port", keysOnly + "trusted_web_origins: [\"http://b:\"]\n", "trusted_web_origins[0]: \"http://b:\" has an empty port"},
		{"origin default port", keysOnly + "trusted_web_origins: [\"https://b:443\"]\n", "trusted_web_origins[0]: \"https://b:443\" must leave out the default port"},
		{"origin repeated", keysOnly + "trusted_web_origins: [\"http://a\", \"http://b\", \"http://a\"]\n", "trusted_web_origins[2]: \"http://a\" repeats trusted_web_origins[0]"},

		// cors
		{"method not a token", configBase + "cors: {allow_methods: [GET, \"GE T\"]}\n", "cors.allow_methods[1]: \"GE T\" is not an RFC 7230 token"},
		{"method wildcard", configBase + "cors: {allow_methods: [\"*\"]}\n", "cors.allow_methods[0]: \"*\": wildcards are not allowed"},
		{"header wildcard", configBase + "cors: {allow_headers: [\"X-*\"]}\n", "cors.allow_headers[0]: \"X-*\": wildcards are not allowed"},
		{"empty header", configBase + "cors: {allow_headers: [\"\"]}\n", "cors.allow_headers[0]: \"\" is not an RFC 7230 token"},
		{"expose header not a token", configBase + "cors: {expose_headers: [\"a:b\"]}\n", "cors.expose_headers[0]: \"a:b\" is not an RFC 7230 token"},
		{"expose wildcard", configBase + "cors: {expose_headers: [\"*\"]}\n", "cors.expose_headers[0]: \"*\": wildcards are not allowed"},
		{"negative max_age", configBase + "cors: {max_age: -1}\n", "cors.max_age: must not be negative, got -1"},

		// auth_path
		{"auth_path relative", configBase + "auth_path: auth\n", "auth_path: \"auth\" must start with \"/\""},
		{"auth_path empty", configBase + "auth_path: \"\"\n", "auth_path: \"\" must start with \"/\""},
		{"auth_path query", configBase + "auth_path: /auth?x=1\n", "auth_path: \"/auth?x=1\" must not contain a query"},
		{"auth_path space", configBase + "auth_path: \"/a b\"\n", "auth_path: \"/a b\" must not contain whitespace"},
		{"auth_path too long", configBase + "auth_path: /" + strings.Repeat("a", 256) + "\n", "auth_path: must be at most 256 characters, got 257"},

		// routes
		{"route without prefix", configBase + "routes: [{upstream: http://a}]\n", "routes[0].path_prefix: is required"},
		{"prefix without leading slash", configBase + "routes: [{path_prefix: api/, upstream: http://a}]\n", "routes[0].path_prefix: \"api/\" must start and end with \"/\""},
		{"prefix without trailing slash", configBase + "routes: [{path_prefix: /api, upstream: http://a}]\n", "routes[0].path_prefix: \"/api\" must start and end with \"/\""},
		{"prefix with query", configBase + "routes: [{path_prefix: \"/a?x/\", upstream: http://a}]\n", "routes[0].path_prefix: \"/a?x/\" must not contain a query"},
		{"prefix with space", configBase + "routes: [{path_prefix: \"/a b/\", upstream: http://a}]\n", "routes[0].path_prefix: \"/a b/\" must not contain whitespace"},
		{"prefix with dot-dot", configBase + "routes: [{path_prefix: /a/../, upstream: http://a}]\n", "routes[0].path_prefix: \"/a/../\" must not contain \"..\""},
		{"duplicate prefix", configBase + "routes:\n- {path_prefix: /a/, upstream: http://a}\n- {path_prefix: /b/, upstream: http://b}\n- {path_prefix: /a/, upstream: http://c}\n", "routes[2].path_prefix: duplicate or overlapping routes: \"/a/\" is also routes[0].path_prefix"},
		{"prefix over auth_path", configBase + "auth_endpoint: true\nroutes: [{path_prefix: /_oauth-proxy/, upstream: http://a}]\n", "routes[0].path_prefix: \"/_oauth-proxy/\" overlaps the auth endpoint auth_path \"/_oauth-proxy/auth\""},
		{"root prefix over auth_path", configBase + "auth_endpoint: true\nauth_path: /check\nroutes: [{path_prefix: /, upstream: http://a}]\n", "routes[0].path_prefix: \"/\" overlaps the auth endpoint auth_path \"/check\""},
		{"auth_endpoint not a bool", configBase + "auth_endpoint: maybe\n", "auth_endpoint"},

		// cookie formats and the session
		{"cookie.format unknown", configBase + "cookie: {format: v3}\n", `cookie.format: must be v2, v1 or dare, got "v3"`},
		{"cookie.format empty", configBase + "cookie: {format: \"\"}\n", `cookie.format: must be v2, v1 or dare, got ""`},
		{"cookie.accept unknown", configBase + "cookie: {accept: [v1, V2]}\n", `cookie.accept[1]: must be v2, v1 or dare, got "V2"`},
		{"cookie.accept not a list", configBase + "cookie: {accept: v1}\n", "cookie.accept: must be a list of strings (line 3)"},
		{"cookie_format unknown, old spelling", configBase + "cookie_format: v3\n", `cookie.format: must be v2, v1 or dare, got "v3" (written cookie_format, its deprecated spelling)`},
		{"cookie_accept not a list, old spelling", configBase + "cookie_accept: v1\n", "cookie.accept: must be a list of strings (line 3)"},
		{"session.max_lifetime too short", configBase + "session: {max_lifetime: 30s}\n", `session.max_lifetime: must be between 1m and`},
		{"session.max_lifetime too long", configBase + "session: {max_lifetime: 721h}\n", `session.max_lifetime: must be between`},
		{"session.max_lifetime not a duration", configBase + "session: {max_lifetime: 12}\n", `session.max_lifetime: invalid duration "12"`},
		{"session unknown key", configBase + "session: {idle: 1h}\n", "session.idle"},
		{"upstream missing", configBase + "routes: [{path_prefix: /a/}]\n", "routes[0].upstream: is required"},
		{"upstream null", configBase + "routes: [{path_prefix: /a/, upstream: }]\n", "routes[0].upstream: is required"},
		{"upstream empty list", configBase + "routes: [{path_prefix: /a/, upstream: []}]\n", "routes[0].upstream: needs at least one upstream URL"},
		{"upstream mapping", configBase + "routes: [{path_prefix: /a/, upstream: {url: http://a}}]\n", "routes[0].upstream: must be a URL or a list of URLs"},
		{"upstream list of lists", configBase + "routes: [{path_prefix: /a/, upstream: [http://a, [http://b]]}]\n", "routes[0].upstream[1]: must be a URL"},
		{"upstream scheme", configBase + "routes:\n- {path_prefix: /a/, upstream: http://a}\n- {path_prefix: /b/, upstream: \"ftp://b\"}\n", "routes[1].upstream: \"ftp://b\" must start with http:// or https://"},
		{"upstream without scheme", configBase + "routes: [{path_prefix: /a/, upstream: \"127.0.0.1:9000\"}]\n", "routes[0].upstream: \"127.0.0.1:9000\" is not a valid URL (want http://host[:port]): "},
		{"upstream relative", configBase + "routes: [{path_prefix: /a/, upstream: /b}]\n", "routes[0].upstream: \"/b\" must start with http:// or https://"},
		{"upstream userinfo", configBase + "routes: [{path_prefix: /a/, upstream: \"http://user:s3cret@b\"}]\n", "routes[0].upstream: must not contain \"@\""},
		{"upstream no host", configBase + "routes: [{path_prefix: /a/, upstream: \"http://:80\"}]\n", "routes[0].upstream: \"http://:80\" has no host"},
		{"upstream query", configBase + "routes: [{path_prefix: /a/, upstream: \"http://b?x=1\"}]\n", "routes[0].upstream: \"http://b?x=1\" must not have a query"},
		{"upstream fragment", configBase + "routes: [{path_prefix: /a/, upstream: \"http://b#x\"}]\n", "routes[0].upstream: \"http://b#x\" must not have a fragment"},
		{"upstream path", configBase + "routes: [{path_prefix: /a/, upstream: \"http://b/api\"}]\n", "routes[0].upstream: \"http://b/api\" must not have a path"},
		{"upstream port 0", configBase + "routes: [{path_prefix: /a/, upstream: \"http://b:0\"}]\n", "routes[0].upstream: \"http://b:0\" has an invalid port"},
		{"upstream port too big", configBase + "routes: [{path_prefix: /a/, upstream: \"http://b:70000\"}]\n", "routes[0].upstream: \"http://b:70000\" has an invalid port"},
		{"upstream empty port", configBase + "routes: [{path_prefix: /a/, upstream: \"http://b:\"}]\n", "routes[0].upstream: \"http://b:\" has an empty port"},
		{"upstream space", configBase + "routes: [{path_prefix: /a/, upstream: \"http://b /\"}]\n", "routes[0].upstream: \"http://b /\" must not contain whitespace"},
		{"upstream repeated", configBase + "routes: [{path_prefix: /a/, upstream: [\"http://b\", \"http://B:80/\"]}]\n", "routes[0].upstream[1]: \"http://B:80/\" repeats upstream \"http://b\""},

		// timeouts
		{"read not a duration", configBase + "timeouts: {read: 3 seconds}\n", `timeouts.read: invalid duration "3 seconds"`},
		{"write zero", configBase + "timeouts: {write: 0s}\n", `timeouts.write: must be greater than zero, got "0s"`},
		{"idle negative", configBase + "timeouts: {idle: -1s}\n", `timeouts.idle: must be greater than zero, got "-1s"`},
		{"upstream without unit", configBase + "timeouts: {upstream: 30}\n", `timeouts.upstream: invalid duration "30"`},
		{"shutdown empty", configBase + "timeouts: {shutdown: \"\"}\n", `timeouts.shutdown: invalid duration ""`},
		{"park too short", configBase + "timeouts: {park: 10ms}\n", `timeouts.park: must be 0 (off) or at least 100ms, got "10ms"`},
		{"park negative", configBase + "timeouts: {park: -1s}\n", `timeouts.park: must be between 0s and 1h, got "-1s"`},

		// limits
		{"header limit too small", configBase + "limits: {max_request_header_bytes: 4095}\n", "limits.max_request_header_bytes: must be between 4096 and 1048576, got 4095"},
		{"header limit too big", configBase + "limits: {max_request_header_bytes: 1048577}\n", "limits.max_request_header_bytes: must be between 4096 and 1048576, got 1048577"},
		{"body limit zero", configBase + "limits: {max_body_bytes: 0}\n", "limits.max_body_bytes: must be between 1 and 1073741824, got 0"},
		{"body limit too big", configBase + "limits: {max_body_bytes: 1073741825}\n", "limits.max_body_bytes: must be between 1 and 1073741824, got 1073741825"},

		// listen and metrics_listen
		{"listen without port", configBase + "listen: localhost\n", `listen: "localhost" must be host:port or unix:/absolute/path`},
		{"listen empty", configBase + "listen: \"\"\n", `listen: "" must be host:port`},
		{"listen named port", configBase + "listen: 127.0.0.1:http\n", `listen: "127.0.0.1:http" must have a port from 0 to 65535`},
		{"listen port too big", configBase + "listen: 127.0.0.1:65536\n", `listen: "127.0.0.1:65536" must have a port from 0 to 65535`},
		{"listen relative socket", configBase + "listen: unix:proxy.sock\n", `listen: "unix:proxy.sock" must name a socket by its absolute path`},
		{"listen space", configBase + "listen: \"127.0.0.1 :80\"\n", `listen: "127.0.0.1 :80" must not contain whitespace`},
		{"metrics_listen bad", configBase + "metrics_listen: \"9101\"\n", `metrics_listen: "9101" must be host:port`},
		{"metrics_listen same", configBase + "listen: 127.0.0.1:8081\nmetrics_listen: 127.0.0.1:8081\n", `metrics_listen: must differ from listen`},
		{"metrics_listen same default", configBase + "metrics_listen: 127.0.0.1:8081\n", `metrics_listen: must differ from listen`},
		{"metrics_listen same socket", configBase + "listen: unix:/run/p.sock\nmetrics_listen: unix:/run/p.sock\n", `metrics_listen: must differ from listen`},

		// log
		{"log level", configBase + "log: {level: verbose}\n", `log.level: must be debug, info, warn or error, got "verbose"`},
		{"log level upper case", configBase + "log: {level: INFO}\n", `log.level: must be debug, info, warn or error, got "INFO"`},
		{"log format", configBase + "log: {format: text}\n", `log.format: must be json or console, got "text"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml), nil)
			settingstest.Refused(t, err, tt.want, configTestKey[:7], configTestKey[len(configTestKey)-7:], badKey[:7], "s3cret")
			if !strings.HasPrefix(err.Error(), "proxy: config: ") {
				t.Errorf("error %q does not start with \"proxy: config: \"", err)
			}
		})
	}
}

func TestParseConfigKeySources(t *testing.T) {
	newer, older := newConfigTestKey(), newConfigTestKey()
	file := bintest.WriteFiles(t, map[string]string{"keys": "# cookie keys, newest first\n\n  " + newer + "  \r\n# retired next month\n" + older + "\n", "bad": newer + "\n" + older[:40] + "\n"})
	keysFile, badFile := file("keys"), file("bad")
	origins := "trusted_web_origins: [\"http://a\"]\n"

	tests := []struct {
		name      string
		yaml      string
		env       map[string]string
		wantFirst string // the sealing key, when the config is valid
		wantLen   int
		wantErr   string
	}{
		{name: "list", yaml: "encryption_keys: [" + newer + ", " + older + "]\n" + origins, wantFirst: newer, wantLen: 2},
		{name: "file", yaml: "encryption_keys_file: " + keysFile + "\n" + origins, wantFirst: newer, wantLen: 2},
		{name: "env", yaml: origins, env: map[string]string{"TH_ENCRYPTION_KEYS": " " + newer + " , " + older}, wantFirst: newer, wantLen: 2},
		{name: "env one key", yaml: origins, env: map[string]string{"TH_ENCRYPTION_KEYS": older}, wantFirst: older, wantLen: 1},
		{name: "env empty means unset", yaml: "encryption_keys: [" + newer + "]\n" + origins, env: map[string]string{"TH_ENCRYPTION_KEYS": ""}, wantFirst: newer, wantLen: 1},
		{name: "none", yaml: origins, env: map[string]string{"OTHER": newer},
			wantErr: "proxy: config: encryption_keys: no cookie encryption keys: set encryption_keys, encryption_keys_file or the environment variable TH_ENCRYPTION_KEYS"},
		{name: "list and env", yaml: "encryption_keys: [" + newer + "]\n" + origins, env: map[string]string{"TH_ENCRYPTION_KEYS": older},
			wantErr: "proxy: config: encryption_keys: keys given by both encryption_keys and TH_ENCRYPTION_KEYS: use exactly one source"},
		{name: "file and env", yaml: "encryption_keys_file: " + keysFile + "\n" + origins, env: map[string]string{"TH_ENCRYPTION_KEYS": older},
			wantErr: "proxy: config: encryption_keys: keys given by both encryption_keys_file and TH_ENCRYPTION_KEYS"},
		{name: "all three", yaml: "encryption_keys: [" + newer + "]\nencryption_keys_file: " + keysFile + "\n" + origins, env: map[string]string{"TH_ENCRYPTION_KEYS": older},
			wantErr: "keys given by both encryption_keys and encryption_keys_file and TH_ENCRYPTION_KEYS"},
		{name: "bad key in env", yaml: origins, env: map[string]string{"TH_ENCRYPTION_KEYS": newer + "," + older[:40]},
			wantErr: "proxy: config: TH_ENCRYPTION_KEYS: crypto: key 2 must be 64 hex characters (32 bytes), got 40 characters"},
		{name: "trailing comma in env", yaml: origins, env: map[string]string{"TH_ENCRYPTION_KEYS": newer + ","},
			wantErr: "proxy: config: TH_ENCRYPTION_KEYS: crypto: key 2 must be 64 hex characters"},
		{name: "bad key in file", yaml: "encryption_keys_file: " + badFile + "\n" + origins,
			wantErr: "proxy: config: encryption_keys_file: crypto: key 2 must be 64 hex characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.yaml), settingstest.Env(tt.env))
			if tt.wantErr != "" {
				settingstest.Refused(t, err, tt.wantErr, newer[:7], older[:7])
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Keys.Len() != tt.wantLen {
				t.Errorf("Keys.Len() = %d, want %d", c.Keys.Len(), tt.wantLen)
			}
			settingstest.SealsWith(t, c.Keys, tt.wantFirst)
		})
	}
}

func TestLoadConfigExample(t *testing.T) {
	c, err := LoadConfig("../deploy/oauth-proxy.example.yaml", settingstest.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8081" || c.MetricsListen != "127.0.0.1:9101" {
		t.Errorf("Listen, MetricsListen = %q, %q; want 127.0.0.1:8081, 127.0.0.1:9101", c.Listen, c.MetricsListen)
	}
	if len(c.Routes) != 1 || c.Routes[0].PathPrefix != "/api/" || c.Routes[0].Upstreams[0].Addr != "127.0.0.1:9000" {
		t.Errorf("Routes = %+v, want /api/ to 127.0.0.1:9000", c.Routes)
	}
	// The example shows the defaults it says it shows.
	if !reflect.DeepEqual(c.TrustedProxies, defaultTrustedProxies) || c.AllowTokens || len(c.AllowTokenSchemes) != 0 {
		t.Errorf("TrustedProxies %v, AllowTokens %v, AllowTokenSchemes %v; want the defaults", c.TrustedProxies, c.AllowTokens, c.AllowTokenSchemes)
	}
	settingstest.SealsWith(t, c.Keys, configTestKey)
	// The example is written in the shape both daemons share.
	if c.Warnings != nil {
		t.Errorf("the example uses deprecated settings: %q", c.Warnings)
	}
}

// TestParseConfigOldSpellings: the spellings from before the proxy and the
// agent shared one shape (issue #16) give the same Config, with one warning
// each naming the new spelling.
func TestParseConfigOldSpellings(t *testing.T) {
	old, err := ParseConfig([]byte(configBase+"cookie_name_prefix: app\ncookie_format: v1\ncookie_accept: [dare]\ncookie: {host_prefix: true}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := ParseConfig([]byte(configBase+"cookie: {prefix: app, format: v1, accept: [dare], name_prefix: host}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"cookie_name_prefix (line 3) is deprecated: write cookie.prefix",
		"cookie_format (line 4) is deprecated: write cookie.format",
		"cookie_accept (line 5) is deprecated: write cookie.accept",
		"cookie.host_prefix: true is deprecated: write cookie.name_prefix: host",
	}
	if !reflect.DeepEqual(old.Warnings, want) || cur.Warnings != nil {
		t.Errorf("warnings %q and %q, want %q and none", old.Warnings, cur.Warnings, want)
	}
	old.Keys, cur.Keys, old.Warnings = nil, nil, nil
	if !reflect.DeepEqual(old, cur) {
		t.Errorf("old spelling:\n%+v\nnew spelling:\n%+v", old, cur)
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"), nil)
	if err == nil || !strings.HasPrefix(err.Error(), "proxy: config: open ") {
		t.Errorf("LoadConfig of a missing file: error %v, want one starting with \"proxy: config: open \"", err)
	}
}

// TestParseConfigWorker: in a worker of a set, the addresses are those its
// supervisor gives in the environment, and the TCP port is shared.
func TestParseConfigWorker(t *testing.T) {
	env := map[string]string{workers.EnvWorker: "1", workers.EnvListen: "unix:/run/p.sock.1", workers.EnvMetrics: "unix:/tmp/w/1.sock"}
	c, err := ParseConfig([]byte(configBase+"listen: unix:/run/p.sock\nworkers: 2\n"), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "unix:/run/p.sock.1" || c.MetricsListen != "unix:/tmp/w/1.sock" || c.Worker != "1" || c.Workers != 2 {
		t.Errorf("Listen %q, MetricsListen %q, Worker %q, Workers %d", c.Listen, c.MetricsListen, c.Worker, c.Workers)
	}
	defer func(n int) { startProcs = n }(startProcs)
	startProcs = 1 // as in a worker, run with GOMAXPROCS=1
	if c, err := ParseConfig([]byte(configBase+"workers: auto\n"), func(k string) string { return env[k] }); err != nil || c.Worker != "1" {
		t.Errorf("workers: auto in a worker (GOMAXPROCS=1): %v", err)
	}
}

// TestParseConfigStrayWorkerEnv: the workers' variables in the environment
// of a process the file does not make a set, or one without the other, are
// refused instead of moving listen and dropping metrics_listen.
func TestParseConfigStrayWorkerEnv(t *testing.T) {
	for _, c := range []struct{ name, file, metrics, want string }{
		{"no metrics variable", "workers: 2\n", "", "proxy: config: workers: TH_PROXY_WORKER is set without TH_PROXY_WORKER_LISTEN and TH_PROXY_WORKER_METRICS"},
		{"no metrics variable, workers 1", "workers: 1\n", "", "proxy: config: workers: TH_PROXY_WORKER is set without TH_PROXY_WORKER_LISTEN and TH_PROXY_WORKER_METRICS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{workers.EnvWorker: "1", workers.EnvListen: "127.0.0.1:18555", workers.EnvMetrics: c.metrics}
			_, err := ParseConfig([]byte(configBase+"listen: 127.0.0.1:8081\nmetrics_listen: 127.0.0.1:9101\n"+c.file), func(k string) string { return env[k] })
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error %v, want one starting with %q", err, c.want)
			}
		})
	}
	// A worker whose set's file was edited to workers: 1 (restarted after a
	// crash before the set is) serves on where the supervisor says; that the
	// variables come from a supervisor, cmd/oauth-proxy checks (its pipe).
	env := map[string]string{workers.EnvWorker: "1", workers.EnvListen: "127.0.0.1:18555", workers.EnvMetrics: "unix:/tmp/w/1.sock"}
	c, err := ParseConfig([]byte(configBase+"listen: 127.0.0.1:8081\nmetrics_listen: 127.0.0.1:9101\nworkers: 1\n"), func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("a worker with workers: 1 in its text: %v", err)
	}
	if c.Listen != "127.0.0.1:18555" || c.MetricsListen != "unix:/tmp/w/1.sock" {
		t.Errorf("a worker with workers: 1 in its text: listen %q, metrics_listen %q", c.Listen, c.MetricsListen)
	}
}
