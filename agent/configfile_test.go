package agent_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/agent"
	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/internal/settings/settingstest"
)

// configKey is the public TEST key of docs/contract.md. Never use it anywhere but
// in tests.
const configKey = "7b99279ab87533d3c238db874a842a91ee26a76027f3c03c317504963d2c9926"

// configSecret is the client secret of the test configurations; no error
// message may quote it.
const configSecret = "s3cret-client-Passw0rd"

// configRequired holds every setting without a default; error cases append
// to it, or replace one of its lines.
const configRequired = "issuer: https://login.example.com\n" +
	"client_id: spa-client\n" +
	"client_secret: " + configSecret + "\n" +
	"redirect_uri: http://www.example.localhost:3000/\n" +
	"encryption_keys: [\"" + configKey + "\"]\n" +
	"trusted_web_origins: [\"http://www.example.localhost:3000\"]\n"

// without returns configRequired without the lines of the settings named.
func without(names ...string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(configRequired, "\n") {
		name, _, _ := strings.Cut(line, ":")
		if line != "" && !slices.Contains(names, name) {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// replace returns configRequired with the line of setting set to value.
func replace(setting, value string) string {
	return without(setting) + setting + ": " + value + "\n"
}

func TestParseConfigFull(t *testing.T) {
	// Fresh keys: a published test key is refused beside public origins.
	sealing, older := string(crypto.GenerateKey().AppendHex(nil)), string(crypto.GenerateKey().AppendHex(nil))
	yaml := `
listen: unix:/run/tokenhandler/agent.sock
base_path: /auth/agent
metrics_listen: 127.0.0.1:9100
issuer: https://login.example.com/tenant/
authorization_endpoint: https://login.example.com/authorize?tenant=a
token_endpoint: https://login.example.com/token
userinfo_endpoint: https://login.example.com/userinfo
jwks_uri: https://keys.example.com/jwks.json
end_session_endpoint: https://login.example.com/logout
pushed_authorization_request_endpoint: https://login.example.com/par
revocation_endpoint: https://login.example.com/revoke
client_id: my-client
client_secret: "` + configSecret + `"
client_auth_method: client_secret_post
redirect_uri: https://www.example.com/callback?x=1
post_logout_redirect_uri: https://www.example.com/bye
scope: "openid   profile email offline_access"
userinfo_method: POST
extra_params_allowed: [prompt, resource]
cookie: {prefix: my_app-1, domain: Example.COM, base_path: /app, name_prefix: none, same_site: lax, max_age: 12h, format: dare, accept: [v1]}
session: {max_lifetime: 8h}
encryption_keys: ["` + sealing + `", "` + older + `"]
trusted_web_origins: ["https://www.example.com", "http://www.example.localhost:3000"]
cors: {enabled: false}
par: always
id_token: {allowed_algs: [ES384, EdDSA, PS512], clock_skew: 5m}
refresh: {grace_period: 0s}
logout: {revoke_refresh_token: true}
timeouts: {read: 1s, write: 2s, idle: 3m, as: 500ms, shutdown: 1h}
log: {level: debug, format: console}
`
	got := parse(t, yaml)
	if got.Keys.Len() != 2 {
		t.Errorf("Keys.Len() = %d, want 2", got.Keys.Len())
	}
	settingstest.SealsWith(t, got.Keys, sealing)
	want := agent.Config{
		Listen:        "unix:/run/tokenhandler/agent.sock",
		MetricsListen: "127.0.0.1:9100",
		BasePath:      "/auth/agent",
		Issuer:        "https://login.example.com/tenant/",
		Endpoints: agent.Endpoints{
			Authorization: "https://login.example.com/authorize?tenant=a",
			Token:         "https://login.example.com/token",
			Userinfo:      "https://login.example.com/userinfo",
			JWKSURI:       "https://keys.example.com/jwks.json",
			EndSession:    "https://login.example.com/logout",
			PAR:           "https://login.example.com/par",
			Revocation:    "https://login.example.com/revoke",
		},
		ClientID:              "my-client",
		ClientSecret:          configSecret,
		ClientAuthMethod:      "client_secret_post",
		RedirectURI:           "https://www.example.com/callback?x=1",
		PostLogoutRedirectURI: "https://www.example.com/bye",
		Scope:                 "openid profile email offline_access",
		UserinfoMethod:        "POST",
		ExtraParamsAllowed:    []string{"prompt", "resource"},
		CookieNamePrefix:      "my_app-1",
		Cookie:                agent.Cookie{Domain: "example.com", BasePath: "/app", SameSite: "lax", MaxAge: 12 * time.Hour},
		CookieFormat:          crypto.FormatDARE,
		CookieAccept:          []crypto.Format{crypto.FormatV1},
		Session:               agent.Session{MaxLifetime: 8 * time.Hour},
		TrustedWebOrigins:     []string{"https://www.example.com", "http://www.example.localhost:3000"},
		CORSEnabled:           false,
		PAR:                   "always",
		IDToken:               agent.IDToken{AllowedAlgs: []string{"ES384", "EdDSA", "PS512"}, ClockSkew: 5 * time.Minute},
		Refresh:               agent.Refresh{GracePeriod: 0},
		Logout:                agent.Logout{RevokeRefreshToken: true},
		Timeouts:              agent.Timeouts{ServerTimeouts: settings.ServerTimeouts{Read: time.Second, Write: 2 * time.Second, Idle: 3 * time.Minute, Shutdown: time.Hour}, AS: 500 * time.Millisecond},
		Log:                   agent.Log{Level: zerolog.DebugLevel, Format: "console"},
	}
	got.Keys = nil
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("ParseConfig:\n got %+v\nwant %+v", *got, want)
	}
}

// TestParseConfigOldSpellings: the spellings from before the agent and the
// proxy shared one shape (issue #16) give the same Config, with one
// warning each that names the new spelling.
func TestParseConfigOldSpellings(t *testing.T) {
	for _, tt := range []struct {
		name, old, new string
		warnings       []string
	}{
		{"cookie_name_prefix", "cookie_name_prefix: app\n", "cookie: {prefix: app}\n", []string{"cookie_name_prefix (line 7) is deprecated: write cookie.prefix"}},
		{"cookie_format", "cookie_format: v1\n", "cookie: {format: v1}\n", []string{"cookie_format (line 7) is deprecated: write cookie.format"}},
		{"cookie_accept", "cookie_accept: [v1]\n", "cookie: {accept: [v1]}\n", []string{"cookie_accept (line 7) is deprecated: write cookie.accept"}},
		{"cors_enabled", "cors_enabled: false\n", "cors: {enabled: false}\n", []string{"cors_enabled (line 7) is deprecated: write cors.enabled"}},
		{"host_prefix", "cookie: {host_prefix: true}\n", "cookie: {name_prefix: host}\n", []string{"cookie.host_prefix: true is deprecated: write cookie.name_prefix: host"}},
		{"all of them, beside a cookie section", "cookie_name_prefix: app\ncookie_format: v1\ncookie_accept: [dare]\ncors_enabled: false\ncookie: {same_site: lax, host_prefix: false}\n",
			"cookie: {same_site: lax, prefix: app, format: v1, accept: [dare], name_prefix: none}\ncors: {enabled: false}\n",
			[]string{"cors_enabled (line 10)", "cookie_name_prefix (line 7)", "cookie_format (line 8)", "cookie_accept (line 9)", "cookie.host_prefix: false"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			old := parse(t, configRequired+tt.old)
			cur := parse(t, configRequired+tt.new)
			if cur.Warnings != nil {
				t.Errorf("the new spelling warns: %q", cur.Warnings)
			}
			if len(old.Warnings) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %q", old.Warnings, tt.warnings)
			}
			for i, w := range tt.warnings {
				if !strings.HasPrefix(old.Warnings[i], w) {
					t.Errorf("warning %q, want it to start with %q", old.Warnings[i], w)
				}
			}
			old.Keys, cur.Keys, old.Warnings = nil, nil, nil
			if !reflect.DeepEqual(old, cur) {
				t.Errorf("old spelling:\n%+v\nnew spelling:\n%+v", old, cur)
			}
		})
	}
}

func TestParseConfigDefaults(t *testing.T) {
	got := parse(t, configRequired)
	settingstest.SealsWith(t, got.Keys, configKey)
	want := agent.Config{
		Listen:             "127.0.0.1:8080",
		BasePath:           "/oauth-agent",
		Issuer:             "https://login.example.com",
		ClientID:           "spa-client",
		ClientSecret:       configSecret,
		ClientAuthMethod:   "client_secret_basic",
		RedirectURI:        "http://www.example.localhost:3000/",
		Scope:              "openid profile",
		UserinfoMethod:     "GET",
		ExtraParamsAllowed: agent.DefaultExtraParamsAllowed,
		CookieNamePrefix:   "example",
		Cookie:             agent.Cookie{BasePath: "/", SameSite: "strict"},
		CookieFormat:       crypto.FormatV2,
		Session:            agent.Session{MaxLifetime: 12 * time.Hour},
		TrustedWebOrigins:  []string{"http://www.example.localhost:3000"},
		CORSEnabled:        true,
		PAR:                "auto",
		IDToken:            agent.IDToken{AllowedAlgs: []string{"RS256", "PS256", "ES256", "EdDSA"}, ClockSkew: 30 * time.Second},
		Refresh:            agent.Refresh{GracePeriod: 5 * time.Second},
		Logout:             agent.Logout{RevokeRefreshToken: true},
		Timeouts:           agent.Timeouts{ServerTimeouts: settings.ServerTimeouts{Read: 30 * time.Second, Write: 30 * time.Second, Idle: 120 * time.Second, Shutdown: 30 * time.Second}, AS: 10 * time.Second},
		Log:                agent.Log{Level: zerolog.InfoLevel, Format: "json"},
	}
	got.Keys = nil
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("ParseConfig:\n got %+v\nwant %+v", *got, want)
	}

	// Empty sections keep the defaults too.
	got = parse(t, configRequired+"cookie:\nid_token:\nrefresh:\nlogout:\ntimeouts:\nlog:\n")
	got.Keys = nil
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("ParseConfig with empty sections:\n got %+v\nwant %+v", *got, want)
	}
}

func TestParseConfigAccepts(t *testing.T) {
	endpoints := "authorization_endpoint: https://as.example.com/authorize\n" +
		"token_endpoint: https://as.example.com/token\n" +
		"jwks_uri: https://as.example.com/jwks\n"
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *agent.Config)
	}{
		{"the three endpoints overridden", configRequired + endpoints, func(t *testing.T, c *agent.Config) {
			if c.Endpoints.JWKSURI != "https://as.example.com/jwks" {
				t.Errorf("Endpoints %+v", c.Endpoints)
			}
		}},
		{"scope without openid: plain OAuth 2.0", configRequired + "scope: \"api:read  offline_access\"\n", func(t *testing.T, c *agent.Config) {
			if c.Scope != "api:read offline_access" {
				t.Errorf("Scope %q", c.Scope)
			}
		}},
		{"no extraParams allowed", configRequired + "extra_params_allowed: []\n", func(t *testing.T, c *agent.Config) {
			if c.ExtraParamsAllowed == nil || len(c.ExtraParamsAllowed) != 0 {
				t.Errorf("ExtraParamsAllowed %#v, want empty and not nil (nil is the default list)", c.ExtraParamsAllowed)
			}
		}},
		{"http issuer on localhost", replace("issuer", "http://localhost:8443"), nil},
		{"http issuer on 127.0.0.1", replace("issuer", "http://127.0.0.1:8443/realms/x"), nil},
		{"http issuer on ::1", replace("issuer", "http://[::1]:8443"), nil},
		{"http issuer on *.localhost", replace("issuer", "http://login.example.localhost:8443"), nil},
		{"http endpoint on the local machine", configRequired + "token_endpoint: http://login.example.localhost:8080/token\n", nil},
		{"name_prefix host with the defaults", configRequired + "cookie: {name_prefix: host, base_path: /}\n", func(t *testing.T, c *agent.Config) {
			if c.Cookie.NamePrefix != browser.NamePrefixHost || c.Cookie.BasePath != "/" || c.Cookie.Domain != "" {
				t.Errorf("Cookie %+v", c.Cookie)
			}
		}},
		{"name_prefix host-http", configRequired + "cookie: {name_prefix: host-http}\n", func(t *testing.T, c *agent.Config) {
			if c.Cookie.NamePrefix != browser.NamePrefixHostHTTP {
				t.Errorf("Cookie %+v", c.Cookie)
			}
		}},
		{"bounds", configRequired + "id_token: {clock_skew: 0s}\nrefresh: {grace_period: 10s}\ncookie: {max_age: 9600h}\n", func(t *testing.T, c *agent.Config) {
			if c.IDToken.ClockSkew != 0 || c.Refresh.GracePeriod != 10*time.Second || c.Cookie.MaxAge != 9600*time.Hour {
				t.Errorf("IDToken %+v, Refresh %+v, Cookie %+v", c.IDToken, c.Refresh, c.Cookie)
			}
		}},
		{"every algorithm", configRequired + "id_token: {allowed_algs: [RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA]}\n", nil},
		{"listeners on port 0", configRequired + "listen: 127.0.0.1:0\nmetrics_listen: 127.0.0.1:0\n", nil},
		{"no post-logout redirect", configRequired + "post_logout_redirect_uri: \"\"\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parse(t, tt.yaml)
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // the message must contain this, after "agent: config: "
	}{
		// The file and its decoding.
		{"empty", "", "the file is empty"},
		{"not a mapping", "- a\n", "the file must be a YAML mapping"},
		{"two documents", configRequired + "---\n" + configRequired, "several YAML documents"},
		{"unknown setting", configRequired + "client_sceret: x\n", `unknown setting "client_sceret" (line 7)`},
		{"unknown nested setting", configRequired + "cookie: {samesite: lax}\n", `unknown setting "cookie.samesite"`},
		{"set twice", configRequired + "client_id: other\n", "client_id: set twice (lines 2 and 7)"},
		{"secret of the wrong type", replace("client_secret", "["+configSecret+"]"), "client_secret: must be a string"},
		{"wrong type", configRequired + "cors: {enabled: sometimes}\n", "cors.enabled: must be true or false"},
		{"wrong type, old spelling", configRequired + "cors_enabled: sometimes\n", "cors.enabled: must be true or false (line 7)"},
		{"old and new spelling", configRequired + "cors_enabled: true\ncors: {enabled: true}\n", "cors_enabled (line 7) and cors.enabled (line 8) are the same setting: keep cors.enabled"},
		{"near a known setting", configRequired + "trusted_web_origin: [\"http://www.example.localhost:3000\"]\n", `unknown setting "trusted_web_origin" (line 7): did you mean trusted_web_origins?`},
		{"near a known section setting", configRequired + "cookie: {same-site: lax}\n", `unknown setting "cookie.same-site" (line 7): did you mean cookie.same_site?`},
		{"cors settings of the proxy", configRequired + "cors: {max_age: 60}\n", `unknown setting "cors.max_age" (line 7)`},

		// Listeners and paths.
		{"listen", configRequired + "listen: localhost\n", `listen: "localhost" must be host:port`},
		{"listen socket", configRequired + "listen: unix:agent.sock\n", `listen: "unix:agent.sock" must name a socket by its absolute path, as unix:/run/tokenhandler/agent.sock`},
		{"metrics_listen", configRequired + "metrics_listen: \"9100\"\n", `metrics_listen: "9100" must be host:port`},
		{"metrics_listen same as listen", configRequired + "metrics_listen: 127.0.0.1:8080\n", "metrics_listen: must differ from listen"},
		{"base_path relative", configRequired + "base_path: oauth-agent\n", `base_path: "oauth-agent" must start with "/"`},
		{"base_path trailing slash", configRequired + "base_path: /oauth-agent/\n", `base_path: "/oauth-agent/" must not end with "/"`},
		{"base_path root", configRequired + "base_path: /\n", `base_path: "/" must not end with "/"`},
		{"base_path query", configRequired + "base_path: /a?b\n", `base_path: "/a?b" must not contain a query`},
		{"base_path space", configRequired + "base_path: \"/a b\"\n", `base_path: "/a b" must not contain whitespace`},
		{"base_path semicolon", configRequired + "base_path: \"/a;b\"\n", `base_path: "/a;b" must not contain ';'`},

		// The Authorization Server.
		{"no issuer", without("issuer"), "issuer: is required: ID tokens are verified against it"},
		{"no issuer, with every endpoint", without("issuer") + "authorization_endpoint: https://a/x\ntoken_endpoint: https://a/y\njwks_uri: https://a/j\n", "issuer: is required"},
		{"http token endpoint elsewhere", configRequired + "token_endpoint: http://idp.internal:8080/token\n", `token_endpoint: "http://idp.internal:8080/token" must use https`},
		{"issuer relative", replace("issuer", "/realms/x"), `issuer: "/realms/x" must start with http:// or https://`},
		{"issuer scheme", replace("issuer", "ftp://login.example.com"), `issuer: "ftp://login.example.com" must start with http:// or https://`},
		{"issuer http", replace("issuer", "http://login.example.com"), `issuer: "http://login.example.com" must use https`},
		{"issuer http localhost lookalike", replace("issuer", "http://localhost.example.com"), `issuer: "http://localhost.example.com" must use https`},
		{"issuer query", replace("issuer", "https://login.example.com/?tenant=a"), `issuer: "https://login.example.com/?tenant=a" must not have a query`},
		{"issuer fragment", replace("issuer", "https://login.example.com/#x"), `issuer: "https://login.example.com/#x" must not have a fragment`},
		{"issuer no host", replace("issuer", "https:///x"), `issuer: "https:///x" has no host`},
		{"issuer userinfo", replace("issuer", "https://admin:"+configSecret+"@login.example.com"), `issuer: must not contain "@"`},
		{"issuer port", replace("issuer", "https://login.example.com:0"), `issuer: "https://login.example.com:0" has an invalid port`},
		{"authorization_endpoint", configRequired + "authorization_endpoint: /authorize\n", `authorization_endpoint: "/authorize" must start with http:// or https://`},
		{"token_endpoint", configRequired + "token_endpoint: \"https://a/token#x\"\n", `token_endpoint: "https://a/token#x" must not have a fragment`},
		{"userinfo_endpoint", configRequired + "userinfo_endpoint: \"userinfo\"\n", `userinfo_endpoint: "userinfo" must start with http:// or https://`},
		{"jwks_uri", configRequired + "jwks_uri: \"https://a b/jwks\"\n", `jwks_uri: "https://a b/jwks" must not contain whitespace`},
		{"end_session_endpoint", configRequired + "end_session_endpoint: ws://a/logout\n", `end_session_endpoint: "ws://a/logout" must start with http:// or https://`},
		{"pushed_authorization_request_endpoint", configRequired + "pushed_authorization_request_endpoint: \"https://:443/par\"\n", `pushed_authorization_request_endpoint: "https://:443/par" has no host`},
		{"revocation_endpoint", configRequired + "revocation_endpoint: \"https://u:" + configSecret + "@a/revoke\"\n", `revocation_endpoint: must not contain "@"`},

		// The client.
		{"no client_id", without("client_id"), "client_id: is required"},
		{"empty client_id", replace("client_id", `""`), "client_id: is required"},
		{"client_id control character", replace("client_id", `"a\tb"`), "client_id: must not contain control characters"},
		{"no client secret", without("client_secret"), "client_secret: no client secret: set client_secret, client_secret_file or the environment variable TH_CLIENT_SECRET"},
		{"empty client secret", replace("client_secret", `""`), "client_secret: must not be empty"},
		{"client secret twice", configRequired + "client_secret_file: /etc/secret\n", "client_secret: secret given by both client_secret and client_secret_file: use exactly one source"},
		{"client_auth_method", configRequired + "client_auth_method: private_key_jwt\n", `client_auth_method: must be client_secret_basic or client_secret_post, got "private_key_jwt"`},
		{"no redirect_uri", without("redirect_uri"), "redirect_uri: is required"},
		{"redirect_uri relative", replace("redirect_uri", "/callback"), `redirect_uri: "/callback" must start with http:// or https://`},
		{"redirect_uri fragment", replace("redirect_uri", `"http://www.example.localhost:3000/#x"`), `redirect_uri: "http://www.example.localhost:3000/#x" must not have a fragment`},
		{"post_logout_redirect_uri", configRequired + "post_logout_redirect_uri: www.example.com\n", `post_logout_redirect_uri: "www.example.com" must start with http:// or https://`},
		{"scope empty", configRequired + "scope: \"  \"\n", `scope: must name at least one scope`},
		{"userinfo_method", configRequired + "userinfo_method: get\n", `userinfo_method: must be GET or POST, got "get"`},
		{"extra_params_allowed reserved", configRequired + "extra_params_allowed: [prompt, redirect_uri]\n", `extra_params_allowed[1]: "redirect_uri" is set by the agent`},
		{"extra_params_allowed scope", configRequired + "extra_params_allowed: [scope]\n", `extra_params_allowed[0]: "scope" is set by the agent`},
		{"extra_params_allowed reserved in other case", configRequired + "extra_params_allowed: [prompt, Redirect_Uri]\n", `extra_params_allowed[1]: "Redirect_Uri" is set by the agent`},
		{"extra_params_allowed SCOPE", configRequired + "extra_params_allowed: [SCOPE]\n", `extra_params_allowed[0]: "SCOPE" is set by the agent`},
		{"extra_params_allowed repeated in other case", configRequired + "extra_params_allowed: [prompt, Prompt]\n", `extra_params_allowed[1]: "Prompt" repeats extra_params_allowed[0]`},
		{"extra_params_allowed empty name", configRequired + "extra_params_allowed: [\"\"]\n", `extra_params_allowed[0]: "" is not a parameter name`},
		{"extra_params_allowed space", configRequired + "extra_params_allowed: [\"a b\"]\n", `extra_params_allowed[0]: "a b" is not a parameter name`},
		{"extra_params_allowed repeated", configRequired + "extra_params_allowed: [prompt, prompt]\n", `extra_params_allowed[1]: "prompt" repeats extra_params_allowed[0]`},
		{"scope character", configRequired + "scope: \"openid pro\\\"file\"\n", `scope: "openid pro\"file" holds a character`},

		// Cookies and keys.
		{"cookie.prefix", configRequired + "cookie: {prefix: a.b}\n", `cookie.prefix: "a.b" may hold only`},
		{"cookie_name_prefix", configRequired + "cookie_name_prefix: a.b\n", `cookie.prefix: "a.b" may hold only ASCII letters, digits, '-' and '_' (written cookie_name_prefix, its deprecated spelling)`},
		{"cookie.same_site none", configRequired + "cookie: {same_site: none}\n", `cookie.same_site: must be strict or lax, got "none"`},
		{"cookie.same_site case", configRequired + "cookie: {same_site: Strict}\n", `cookie.same_site: must be strict or lax, got "Strict"`},
		{"cookie.base_path relative", configRequired + "cookie: {base_path: app}\n", `cookie.base_path: "app" must start with "/"`},
		{"cookie.base_path semicolon", configRequired + "cookie: {base_path: \"/a;Domain=evil\"}\n", `cookie.base_path: "/a;Domain=evil" must not contain`},
		{"cookie.domain scheme", configRequired + "cookie: {domain: \"https://example.com\"}\n", `cookie.domain: "https://example.com" must be a bare host name, without scheme or path`},
		{"cookie.domain port", configRequired + "cookie: {domain: \"example.com:443\"}\n", `cookie.domain: "example.com:443" must be a bare host name, without a port`},
		{"cookie.domain leading dot", configRequired + "cookie: {domain: .example.com}\n", `cookie.domain: ".example.com" must not start with "."`},
		{"cookie.domain label", configRequired + "cookie: {domain: \"a..b\"}\n", `cookie.domain: "a..b" is not a valid host name`},
		{"cookie.domain character", configRequired + "cookie: {domain: \"a_b.com\"}\n", `cookie.domain: "a_b.com" is not a valid host name`},
		{"host with a domain", configRequired + "cookie: {name_prefix: host, domain: example.com}\n", "cookie.domain: must be empty when cookie.name_prefix is host"},
		{"host-http with a domain", configRequired + "cookie: {name_prefix: host-http, domain: example.com}\n", "cookie.domain: must be empty when cookie.name_prefix is host-http"},
		{"name_prefix unknown", configRequired + "cookie: {name_prefix: __Host-}\n", `cookie.name_prefix: must be none, host or host-http, got "__Host-"`},
		{"host_prefix beside name_prefix", configRequired + "cookie: {name_prefix: host-http, host_prefix: true}\n", `cookie.host_prefix and cookie.name_prefix are the same setting: keep cookie.name_prefix`},
		{"host_prefix agreeing with name_prefix", configRequired + "cookie: {name_prefix: host, host_prefix: true}\n", `cookie.host_prefix and cookie.name_prefix are the same setting`},
		{"host with a base_path", configRequired + "cookie: {name_prefix: host, base_path: /app}\n", `cookie.base_path: must be "/" when cookie.name_prefix is host: __Host- cookies have Path=/, got "/app"`},
		{"cookie.max_age negative", configRequired + "cookie: {max_age: -1s}\n", `cookie.max_age: must be between 0s and 9600h, got "-1s"`},
		{"cookie.max_age too long", configRequired + "cookie: {max_age: 9601h}\n", `cookie.max_age: must be between 0s and 9600h, got "9601h"`},
		{"cookie.max_age fraction", configRequired + "cookie: {max_age: 1500ms}\n", `cookie.max_age: must be a whole number of seconds, got "1500ms"`},
		{"cookie.max_age word", configRequired + "cookie: {max_age: forever}\n", `cookie.max_age: invalid duration "forever"`},
		{"cookie.format", configRequired + "cookie: {format: v3}\n", `cookie.format: must be v2, v1 or dare, got "v3"`},
		{"cookie.accept", configRequired + "cookie: {accept: [v1, V2]}\n", `cookie.accept[1]: must be v2, v1 or dare, got "V2"`},
		{"cookie_format", configRequired + "cookie_format: v3\n", `cookie.format: must be v2, v1 or dare, got "v3" (written cookie_format, its deprecated spelling)`},
		{"max_lifetime too short", configRequired + "session: {max_lifetime: 30s}\n", `session.max_lifetime: must be between 1m and 720h, got "30s"`},
		{"no keys", without("encryption_keys"), "encryption_keys: no cookie encryption keys: set encryption_keys, encryption_keys_file or the environment variable TH_ENCRYPTION_KEYS"},
		{"bad key", replace("encryption_keys", "[\""+configKey[:60]+"\"]"), "encryption_keys: crypto: key 1 must be 64 hex characters"},
		{"keys twice", configRequired + "encryption_keys_file: /etc/keys\n", "encryption_keys: keys given by both encryption_keys and encryption_keys_file"},
		{"keys as a string", replace("encryption_keys", configKey), "encryption_keys: must be a list of strings"},
		// The published test key only for a browser on this machine: a
		// public redirect URI or origin is production behind NGINX.
		{"published key, public redirect_uri", replace("redirect_uri", "https://app.example.com/callback"), "encryption_keys: key 1 is a published test key"},
		{"published key, public post-logout URI", configRequired + "post_logout_redirect_uri: https://app.example.com/\n", "encryption_keys: key 1 is a published test key"},
		{"published key, public origin", replace("trusted_web_origins", `["https://app.example.com"]`), "encryption_keys: key 1 is a published test key"},

		// Origins.
		{"no origins", without("trusted_web_origins"), "trusted_web_origins: at least one origin is required"},
		{"origin with a path", replace("trusted_web_origins", `["http://www.example.localhost:3000/"]`), `trusted_web_origins[0]: "http://www.example.localhost:3000/" must not have a path`},
		{"origin wildcard", replace("trusted_web_origins", `["*"]`), `trusted_web_origins[0]: "*" is not allowed`},

		// Protocol options.
		{"par", configRequired + "par: sometimes\n", `par: must be auto, always or never, got "sometimes"`},
		{"alg none", configRequired + "id_token: {allowed_algs: [RS256, none]}\n", `id_token.allowed_algs[1]: "none" is not allowed: ID tokens must be signed`},
		{"alg None", configRequired + "id_token: {allowed_algs: [None]}\n", `id_token.allowed_algs[0]: "None" is not allowed`},
		{"alg HMAC", configRequired + "id_token: {allowed_algs: [HS256]}\n", `id_token.allowed_algs[0]: "HS256" is not supported: want one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA`},
		{"alg case", configRequired + "id_token: {allowed_algs: [rs256]}\n", `id_token.allowed_algs[0]: "rs256" is not supported`},
		{"alg repeated", configRequired + "id_token: {allowed_algs: [ES256, RS256, ES256]}\n", `id_token.allowed_algs[2]: "ES256" repeats id_token.allowed_algs[0]`},
		{"no algs", configRequired + "id_token: {allowed_algs: []}\n", "id_token.allowed_algs: must list at least one algorithm"},
		{"clock_skew too big", configRequired + "id_token: {clock_skew: 6m}\n", `id_token.clock_skew: must be between 0s and 5m, got "6m"`},
		{"clock_skew negative", configRequired + "id_token: {clock_skew: -1s}\n", `id_token.clock_skew: must be between 0s and 5m, got "-1s"`},
		{"grace_period too big", configRequired + "refresh: {grace_period: 11s}\n", `refresh.grace_period: must be between 0s and 10s, got "11s"`},
		{"grace_period not a duration", configRequired + "refresh: {grace_period: 30}\n", `refresh.grace_period: invalid duration "30"`},
		{"revoke_refresh_token", configRequired + "logout: {revoke_refresh_token: yes please}\n", "logout.revoke_refresh_token: must be true or false"},

		// Timeouts and logging.
		{"timeouts.read", configRequired + "timeouts: {read: 0s}\n", `timeouts.read: must be greater than zero, got "0s"`},
		{"timeouts.write", configRequired + "timeouts: {write: -1s}\n", `timeouts.write: must be greater than zero`},
		{"timeouts.idle", configRequired + "timeouts: {idle: later}\n", `timeouts.idle: invalid duration "later"`},
		{"timeouts.as", configRequired + "timeouts: {as: 0s}\n", `timeouts.as: must be greater than zero`},
		{"timeouts.shutdown", configRequired + "timeouts: {shutdown: \"\"}\n", `timeouts.shutdown: invalid duration ""`},
		{"log.level", configRequired + "log: {level: trace}\n", `log.level: must be debug, info, warn or error, got "trace"`},
		{"log.format", configRequired + "log: {format: text}\n", `log.format: must be json or console, got "text"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := agent.ParseConfig([]byte(tt.yaml), nil)
			settingstest.Refused(t, err, tt.want, configSecret, configSecret[:8], configKey[:7], configKey[len(configKey)-7:])
			if !strings.HasPrefix(err.Error(), "agent: config: ") {
				t.Errorf("error %q does not start with \"agent: config: \"", err)
			}
		})
	}
}

func TestParseConfigSecretSources(t *testing.T) {
	newer, older := string(crypto.GenerateKey().AppendHex(nil)), string(crypto.GenerateKey().AppendHex(nil))
	file := bintest.WriteFiles(t, map[string]string{"secret": configSecret + "\n", "empty": "", "keys": "# newest first\n" + newer + "\n\n" + older + "\n"})
	secretFile, emptySecretFile, keysFile := file("secret"), file("empty"), file("keys")
	noSecret := without("client_secret")
	noKeys := without("encryption_keys")

	tests := []struct {
		name       string
		yaml       string
		env        map[string]string
		wantSecret string
		wantKey    string // the sealing key
		wantLen    int
		wantErr    string
	}{
		{name: "secret in the file", yaml: configRequired, wantSecret: configSecret, wantKey: configKey, wantLen: 1},
		{name: "secret from client_secret_file", yaml: noSecret + "client_secret_file: " + secretFile + "\n", wantSecret: configSecret, wantKey: configKey, wantLen: 1},
		{name: "secret from TH_CLIENT_SECRET", yaml: noSecret, env: map[string]string{"TH_CLIENT_SECRET": configSecret}, wantSecret: configSecret, wantKey: configKey, wantLen: 1},
		{name: "empty TH_CLIENT_SECRET is unset", yaml: configRequired, env: map[string]string{"TH_CLIENT_SECRET": ""}, wantSecret: configSecret, wantKey: configKey, wantLen: 1},
		{name: "keys from encryption_keys_file", yaml: noKeys + "encryption_keys_file: " + keysFile + "\n", wantSecret: configSecret, wantKey: newer, wantLen: 2},
		{name: "keys from TH_ENCRYPTION_KEYS", yaml: noKeys, env: map[string]string{"TH_ENCRYPTION_KEYS": older + "," + newer}, wantSecret: configSecret, wantKey: older, wantLen: 2},
		{name: "both secrets from the environment", yaml: without("client_secret", "encryption_keys"), env: map[string]string{"TH_CLIENT_SECRET": configSecret, "TH_ENCRYPTION_KEYS": newer}, wantSecret: configSecret, wantKey: newer, wantLen: 1},

		{name: "secret in the file and TH_CLIENT_SECRET", yaml: configRequired, env: map[string]string{"TH_CLIENT_SECRET": "other"},
			wantErr: "agent: config: client_secret: secret given by both client_secret and TH_CLIENT_SECRET: use exactly one source"},
		{name: "client_secret_file and TH_CLIENT_SECRET", yaml: noSecret + "client_secret_file: " + secretFile + "\n", env: map[string]string{"TH_CLIENT_SECRET": configSecret},
			wantErr: "agent: config: client_secret: secret given by both client_secret_file and TH_CLIENT_SECRET"},
		{name: "missing client_secret_file", yaml: noSecret + "client_secret_file: " + file("nonexistent") + "\n",
			wantErr: "agent: config: client_secret_file: open " + file("nonexistent")},
		{name: "empty client_secret_file", yaml: noSecret + "client_secret_file: " + emptySecretFile + "\n",
			wantErr: "agent: config: client_secret_file: " + emptySecretFile + " holds no secret"},
		{name: "keys in the file and TH_ENCRYPTION_KEYS", yaml: configRequired, env: map[string]string{"TH_ENCRYPTION_KEYS": newer},
			wantErr: "agent: config: encryption_keys: keys given by both encryption_keys and TH_ENCRYPTION_KEYS"},
		{name: "bad key in TH_ENCRYPTION_KEYS", yaml: noKeys, env: map[string]string{"TH_ENCRYPTION_KEYS": newer + "," + older[:50]},
			wantErr: "agent: config: TH_ENCRYPTION_KEYS: crypto: key 2 must be 64 hex characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := agent.ParseConfig([]byte(tt.yaml), settingstest.Env(tt.env))
			if tt.wantErr != "" {
				settingstest.Refused(t, err, tt.wantErr, configSecret, newer[:7], older[:7])
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.ClientSecret != tt.wantSecret {
				t.Errorf("ClientSecret is not the one given (%d bytes, want %d)", len(c.ClientSecret), len(tt.wantSecret))
			}
			if c.Keys.Len() != tt.wantLen {
				t.Errorf("Keys.Len() = %d, want %d", c.Keys.Len(), tt.wantLen)
			}
			settingstest.SealsWith(t, c.Keys, tt.wantKey)
		})
	}
}

func TestLoadConfigExample(t *testing.T) {
	c, err := agent.LoadConfig("../deploy/oauth-agent.example.yaml", settingstest.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.MetricsListen != "127.0.0.1:9100" || c.BasePath != "/oauth-agent" {
		t.Errorf("Listen, MetricsListen, BasePath = %q, %q, %q", c.Listen, c.MetricsListen, c.BasePath)
	}
	if c.Issuer != "http://login.example.localhost:8443" || c.ClientID != "spa-client" || c.ClientSecret == "" {
		t.Errorf("Issuer %q, ClientID %q, secret set: %v", c.Issuer, c.ClientID, c.ClientSecret != "")
	}
	// The example shows the defaults: it must read as the defaults do.
	if c.Scope != "openid profile" || c.UserinfoMethod != "GET" || !slices.Equal(c.ExtraParamsAllowed, agent.DefaultExtraParamsAllowed) || c.Cookie != (agent.Cookie{BasePath: "/", SameSite: "strict"}) || c.CookieFormat != crypto.FormatV2 ||
		len(c.CookieAccept) != 0 || c.Session.MaxLifetime != 12*time.Hour || !c.Logout.RevokeRefreshToken ||
		c.PAR != "auto" || !c.CORSEnabled || c.IDToken.ClockSkew != 30*time.Second || c.Refresh.GracePeriod != 5*time.Second ||
		c.Timeouts != (agent.Timeouts{ServerTimeouts: settings.ServerTimeouts{Read: 30 * time.Second, Write: 30 * time.Second, Idle: 120 * time.Second, Shutdown: 30 * time.Second}, AS: 10 * time.Second}) ||
		c.Log != (agent.Log{Level: zerolog.InfoLevel, Format: "json"}) {
		t.Errorf("the example departs from the defaults: %+v", c)
	}
	if !reflect.DeepEqual(c.IDToken.AllowedAlgs, []string{"RS256", "PS256", "ES256", "EdDSA"}) {
		t.Errorf("IDToken.AllowedAlgs = %v", c.IDToken.AllowedAlgs)
	}
	settingstest.SealsWith(t, c.Keys, configKey)
	// The example is written in the shape both daemons share.
	if c.Warnings != nil {
		t.Errorf("the example uses deprecated settings: %q", c.Warnings)
	}
}

// TestLoadConfigNamesTheFile: a YAML error names the file and the line.
func TestLoadConfigNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte(configRequired+"cookie:\n\tprefix: app\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := agent.LoadConfig(path, nil)
	if want := "agent: config: " + path + ": line 8: "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %v, want it to start with %q", err, want)
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := agent.LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"), nil)
	if err == nil || !strings.HasPrefix(err.Error(), "agent: config: open ") {
		t.Errorf("LoadConfig of a missing file: error %v, want one starting with \"agent: config: open \"", err)
	}
}

// parse is agent.ParseConfig of yaml without environment, failing the
// test on an error.
func parse(t *testing.T, yaml string) *agent.Config {
	t.Helper()
	c, err := agent.ParseConfig([]byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
