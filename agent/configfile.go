package agent

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/internal/settings"
)

// LoadConfig reads the YAML file at path and returns the validated
// configuration, as [ParseConfig] does.
func LoadConfig(path string, getenv func(string) string) (*Config, error) {
	return settings.Load("agent: config", path, getenv, (*fileConfig).config, appsSpec)
}

// ParseConfig parses and validates YAML configuration text (contract §7, and
// deploy/oauth-agent.example.yaml for every setting). It returns a Config
// with defaults applied, or an error that starts with "agent: config: " and
// names the setting by its YAML path, such as "id_token.allowed_algs[1]".
// Errors never quote the client secret or key material.
//
// The client secret comes from exactly one of client_secret,
// client_secret_file and the environment variable TH_CLIENT_SECRET; the keys
// from exactly one of encryption_keys, encryption_keys_file and
// TH_ENCRYPTION_KEYS. getenv reads the environment (usually os.Getenv; nil
// means an empty environment).
func ParseConfig(data []byte, getenv func(string) string) (*Config, error) {
	return settings.Parse("agent: config", data, getenv, (*fileConfig).config, appsSpec)
}

// appsSpec is how the agent's file lists applications (issue #15): every
// setting is an application's but these, the process's.
var appsSpec = settings.AppsSpec[*Config]{
	ProcessWide: []string{"listen", "metrics_listen", "log", "revocation", "timeouts", "allow_shared_keys"},
	Alternatives: [][]string{
		{"encryption_keys", "encryption_keys_file", "$" + settings.KeySource.Env},
		{"client_secret", "client_secret_file", "$" + secretSource.Env},
	},
	// The endpoints given at the top level are the top level's issuer's.
	Replaces: map[string][]string{"issuer": {"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
		"end_session_endpoint", "pushed_authorization_request_endpoint", "revocation_endpoint"}},
	Check: checkSecrets,
	About: func(c *Config) settings.AppAbout {
		return settings.AppAbout{Keys: c.Keys, CookiePrefix: c.CookieNamePrefix, BasePath: c.BasePath, Unbound: settings.Unbound(c.CookieFormat, c.CookieAccept), Origins: c.TrustedWebOrigins}
	},
	Top: func(first *Config) *Config {
		return &Config{Listen: first.Listen, MetricsListen: first.MetricsListen, Log: first.Log, Revocation: first.Revocation, Timeouts: first.Timeouts}
	},
}

// checkSecrets refuses a client secret given once for several
// applications (at the top level or in TH_CLIENT_SECRET) that would go to
// more than one provider: each provider would learn another's client's
// secret.
func checkSecrets(apps []settings.App[*Config], top []string, getenv func(string) string) error {
	given := ""
	switch {
	case slices.Contains(top, secretSource.Setting), slices.Contains(top, secretSource.FileSetting):
		given = "the top level's client secret"
	case getenv != nil && getenv(secretSource.Env) != "":
		given = secretSource.Env
	default:
		return nil
	}
	first := -1
	for i, a := range apps {
		if slices.Contains(a.Own, secretSource.Setting) || slices.Contains(a.Own, secretSource.FileSetting) {
			continue
		}
		if first < 0 {
			first = i
		} else if a.Config.Issuer != apps[first].Config.Issuer || a.Config.Endpoints.Token != apps[first].Config.Endpoints.Token {
			return settings.Errorf(fmt.Sprintf("apps[%d].client_secret", i), "is %s, which apps[%d] (%s) sends to another provider (%s): give each application of its own provider its own client_secret_file", given, first, apps[first].Name, apps[first].Config.Issuer)
		}
	}
	return nil
}

// secretSource is where the client secret may come from.
var secretSource = settings.Source{
	Setting:     "client_secret",
	FileSetting: "client_secret_file",
	Env:         "TH_CLIENT_SECRET",
	What:        "client secret",
}

// idTokenAlgs are the JWS algorithms an ID token may be signed with (RFC
// 7518 §3.1, RFC 8037 §3.1): asymmetric only. HMAC would make the client
// secret a signing key, and "none" no signature at all.
var idTokenAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// fileConfig is the configuration file as written. Pointers tell a setting
// left out (nil: use the default) from one given, even as "" or false. The
// settings the proxy has too are declared in package settings (contract §7).
type fileConfig struct {
	settings.Deprecations
	settings.Shared `yaml:",inline"`

	BasePath *string `yaml:"base_path"`

	Issuer                string `yaml:"issuer"`
	AuthorizationEndpoint string `yaml:"authorization_endpoint"`
	TokenEndpoint         string `yaml:"token_endpoint"`
	UserinfoEndpoint      string `yaml:"userinfo_endpoint"`
	JWKSURI               string `yaml:"jwks_uri"`
	EndSessionEndpoint    string `yaml:"end_session_endpoint"`
	PAREndpoint           string `yaml:"pushed_authorization_request_endpoint"`
	RevocationEndpoint    string `yaml:"revocation_endpoint"`

	ClientID              string   `yaml:"client_id"`
	ClientSecret          *string  `yaml:"client_secret"`
	ClientSecretFile      *string  `yaml:"client_secret_file"`
	ClientAuthMethod      *string  `yaml:"client_auth_method"`
	RedirectURI           string   `yaml:"redirect_uri"`
	PostLogoutRedirectURI string   `yaml:"post_logout_redirect_uri"`
	Scope                 *string  `yaml:"scope"`
	UserinfoMethod        *string  `yaml:"userinfo_method"`
	ExtraParamsAllowed    []string `yaml:"extra_params_allowed"`

	Cookie fileCookie    `yaml:"cookie"`
	CORS   settings.CORS `yaml:"cors"`

	PAR      *string      `yaml:"par"`
	IDToken  fileIDToken  `yaml:"id_token"`
	Refresh  fileRefresh  `yaml:"refresh"`
	Logout   fileLogout   `yaml:"logout"`
	Timeouts fileTimeouts `yaml:"timeouts"`
}

// Renames are the settings the file may still spell as before issue #16.
func (*fileConfig) Renames() []settings.Rename {
	return append([]settings.Rename{{Old: "cors_enabled", New: "cors.enabled"}}, settings.SharedRenames...)
}

type fileCookie struct {
	settings.Cookie `yaml:",inline"`
	Domain          string             `yaml:"domain"`
	BasePath        *string            `yaml:"base_path"`
	SameSite        *string            `yaml:"same_site"`
	MaxAge          *settings.Duration `yaml:"max_age"`
}

type fileIDToken struct {
	AllowedAlgs []string           `yaml:"allowed_algs"`
	ClockSkew   *settings.Duration `yaml:"clock_skew"`
}

type fileRefresh struct {
	GracePeriod *settings.Duration `yaml:"grace_period"`
}

type fileLogout struct {
	RevokeRefreshToken *bool `yaml:"revoke_refresh_token"`
}

type fileTimeouts struct {
	settings.Timeouts `yaml:",inline"`
	AS                *settings.Duration `yaml:"as"`
}

// config validates f and converts it, applying defaults. Its errors come
// without the "agent: config: " prefix.
func (f *fileConfig) config(getenv func(string) string) (*Config, error) {
	c := &Config{
		BasePath: settings.ValueOr(f.BasePath, "/oauth-agent"),
		Issuer:   f.Issuer,
		Endpoints: Endpoints{
			Authorization: f.AuthorizationEndpoint,
			Token:         f.TokenEndpoint,
			Userinfo:      f.UserinfoEndpoint,
			JWKSURI:       f.JWKSURI,
			EndSession:    f.EndSessionEndpoint,
			PAR:           f.PAREndpoint,
			Revocation:    f.RevocationEndpoint,
		},
		ClientID:              f.ClientID,
		ClientAuthMethod:      settings.ValueOr(f.ClientAuthMethod, "client_secret_basic"),
		RedirectURI:           f.RedirectURI,
		PostLogoutRedirectURI: f.PostLogoutRedirectURI,
		Cookie: Cookie{
			Domain:   strings.ToLower(f.Cookie.Domain),
			BasePath: settings.ValueOr(f.Cookie.BasePath, "/"),
			SameSite: settings.ValueOr(f.Cookie.SameSite, "strict"),
		},
		CORSEnabled: f.CORS.On(),
		PAR:         settings.ValueOr(f.PAR, "auto"),
		Logout:      Logout{RevokeRefreshToken: settings.ValueOr(f.Logout.RevokeRefreshToken, true)},
	}
	var err error

	// It is also a cookie Path (contract §4).
	if err := (settings.PathRule{Slash: -1, NoDotDot: true, Cookie: true}).Check("base_path", c.BasePath); err != nil {
		return nil, err
	}

	if err := f.checkAuthorizationServer(); err != nil {
		return nil, err
	}

	if c.ClientID == "" {
		return nil, settings.Errorf("client_id", "is required")
	}
	if strings.ContainsFunc(c.ClientID, unicode.IsControl) {
		return nil, settings.Errorf("client_id", "must not contain control characters")
	}
	if c.ClientSecret, err = secretSource.Secret(f.ClientSecret, f.ClientSecretFile, getenv); err != nil {
		return nil, err
	}
	switch c.ClientAuthMethod {
	case "client_secret_basic", "client_secret_post":
	default:
		return nil, settings.Errorf("client_auth_method", "must be client_secret_basic or client_secret_post, got %q", c.ClientAuthMethod)
	}
	if c.RedirectURI == "" {
		return nil, settings.Errorf("redirect_uri", "is required, as http://www.example.localhost:3000/")
	}
	if err := checkURL("redirect_uri", c.RedirectURI, settings.URLRule{}); err != nil {
		return nil, err
	}
	if c.PostLogoutRedirectURI != "" {
		if err := checkURL("post_logout_redirect_uri", c.PostLogoutRedirectURI, settings.URLRule{}); err != nil {
			return nil, err
		}
	}
	if c.Scope, err = checkScope(settings.ValueOr(f.Scope, "openid profile")); err != nil {
		return nil, err
	}
	if c.UserinfoMethod, err = checkUserinfoMethod(f.UserinfoMethod); err != nil {
		return nil, err
	}
	if c.ExtraParamsAllowed, err = checkExtraParamsAllowed(f.ExtraParamsAllowed); err != nil {
		return nil, err
	}

	cookie, err := f.Cookie.Cookie.Parse(&f.Deprecations)
	if err != nil {
		return nil, err
	}
	c.CookieNamePrefix, c.Cookie.NamePrefix, c.CookieFormat, c.CookieAccept = cookie.Prefix, cookie.NamePrefix, cookie.Format, cookie.Accept
	if c.Cookie.MaxAge, err = f.Cookie.check(c.Cookie.NamePrefix); err != nil {
		return nil, err
	}
	if f.Revocation.Feed != nil {
		// The agent serves the feed; proxies follow it.
		return nil, settings.Errorf("revocation.feed", "is the proxy's setting: the agent serves the feed on metrics_listen at /revocations")
	}
	// After the redirect URIs are checked: a published test key is allowed
	// only for browsers on this machine.
	shared, err := f.Shared.Parse("127.0.0.1:8080", "/run/tokenhandler/agent.sock", getenv, c.RedirectURI, c.PostLogoutRedirectURI)
	if err != nil {
		return nil, err
	}
	// Without a revocation section the Config keeps the zero value, which
	// means the same as the defaults: the embedded store in memory.
	c.Listen, c.MetricsListen, c.TrustedWebOrigins, c.Keys = shared.Listen, shared.MetricsListen, shared.TrustedWebOrigins, shared.Keys
	c.Session.MaxLifetime, c.Log, c.Revocation = shared.MaxLifetime, shared.Log, shared.Revocation
	c.AllowSharedKeys = f.AllowSharedKeys

	switch c.PAR {
	case "auto", "always", "never":
	default:
		return nil, settings.Errorf("par", "must be auto, always or never, got %q", c.PAR)
	}

	if c.IDToken.AllowedAlgs, err = checkAllowedAlgs(f.IDToken.AllowedAlgs); err != nil {
		return nil, err
	}
	if c.IDToken.ClockSkew, err = f.IDToken.ClockSkew.Range("id_token.clock_skew", 30*time.Second, 0, 5*time.Minute); err != nil {
		return nil, err
	}
	if c.Refresh.GracePeriod, err = f.Refresh.GracePeriod.Range("refresh.grace_period", DefaultGracePeriod, 0, 10*time.Second); err != nil {
		return nil, err
	}

	if c.Timeouts.ServerTimeouts, err = f.Timeouts.Timeouts.Parse("timeouts"); err != nil {
		return nil, err
	}
	if c.Timeouts.AS, err = f.Timeouts.AS.Positive("timeouts.as", 10*time.Second); err != nil {
		return nil, err
	}

	c.Warnings = f.Warnings()
	return c, nil
}

// checkAuthorizationServer checks the issuer and the endpoint overrides.
// Without an issuer there is no discovery, so the endpoints every login
// needs must be given.
func (f *fileConfig) checkAuthorizationServer() error {
	if f.Issuer == "" {
		// Even with every endpoint given, ID tokens are checked against it.
		return settings.Errorf("issuer", "is required: ID tokens are verified against it")
	}
	// OpenID Connect Discovery 1.0 §3: https, no query.
	if err := checkURL("issuer", f.Issuer, settings.URLRule{NoQuery: true, HTTPSUnlessLoopback: true}); err != nil {
		return err
	}
	for _, e := range []struct{ setting, value string }{
		{"authorization_endpoint", f.AuthorizationEndpoint},
		{"token_endpoint", f.TokenEndpoint},
		{"userinfo_endpoint", f.UserinfoEndpoint},
		{"jwks_uri", f.JWKSURI},
		{"end_session_endpoint", f.EndSessionEndpoint},
		{"pushed_authorization_request_endpoint", f.PAREndpoint},
		{"revocation_endpoint", f.RevocationEndpoint},
	} {
		if e.value != "" {
			// The token endpoint gets the client secret, the others the
			// user's tokens: https, but on the local machine.
			if err := checkURL(e.setting, e.value, settings.URLRule{HTTPSUnlessLoopback: true}); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkURL checks the URL setting s against rule (RFC 6749 §3.1, §3.1.2).
func checkURL(setting, s string, rule settings.URLRule) error {
	if _, err := rule.Check(s); err != nil {
		return settings.Errorf(setting, "%w", err)
	}
	return nil
}

// checkScope requires at least one scope token, each made of the
// characters RFC 6749 §3.3 allows, and returns them separated by single
// spaces. Without "openid" (OpenID Connect Core §3.1.2.1) the agent logs in
// as a plain OAuth 2.0 client: see openIDScope.
func checkScope(s string) (string, error) {
	tokens := strings.Fields(s)
	if len(tokens) == 0 {
		return "", settings.Errorf("scope", "must name at least one scope, as \"openid profile\"")
	}
	for _, tok := range tokens {
		for _, c := range []byte(tok) {
			if c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
				return "", settings.Errorf("scope", "%q holds a character RFC 6749 §3.3 does not allow in a scope", s)
			}
		}
	}
	return strings.Join(tokens, " "), nil
}

// openIDScope reports whether scope asks for OpenID Connect: then the token
// response must carry an ID token; without it, one that carries none starts
// an OAuth-only session.
func openIDScope(scope string) bool { return slices.Contains(strings.Fields(scope), "openid") }

// checkUserinfoMethod accepts GET (the default) or POST.
func checkUserinfoMethod(m *string) (string, error) {
	switch v := settings.ValueOr(m, "GET"); v {
	case "GET", "POST":
		return v, nil
	default:
		return "", settings.Errorf("userinfo_method", "must be GET or POST, got %q", v)
	}
}

// checkExtraParamsAllowed returns the extraParams allow-list: the default
// when left out, none when given as []. A parameter the agent sets itself
// is refused rather than ignored, so that the file does not claim an SPA
// may set what it never can.
func checkExtraParamsAllowed(names []string) ([]string, error) {
	if names == nil {
		return slices.Clone(DefaultExtraParamsAllowed), nil
	}
	return slices.Clone(names), settings.CheckList("extra_params_allowed", names, strings.EqualFold, func(name string) error {
		switch {
		case name == "" || settings.HasSpaceOrControl(name):
			return fmt.Errorf("%q is not a parameter name", name)
		case reserved(name):
			return fmt.Errorf("%q is set by the agent and cannot come from the SPA", name)
		}
		return nil
	})
}

// check validates the cookie section and returns its max_age. Host-prefix
// cookies have Path=/ and no Domain (RFC 6265bis §4.1.3.2); a setting that
// contradicts that is refused rather than ignored (contract §4).
func (fc *fileCookie) check(mode browser.NamePrefix) (time.Duration, error) {
	if fc.Domain != "" {
		if err := checkCookieDomain(fc.Domain); err != nil {
			return 0, err
		}
	}
	base := settings.ValueOr(fc.BasePath, "/")
	if err := (settings.PathRule{Cookie: true}).Check("cookie.base_path", base); err != nil {
		return 0, err
	}
	if mode.Host() {
		if fc.Domain != "" {
			return 0, settings.Errorf("cookie.domain", "must be empty when cookie.name_prefix is %s: __Host- cookies have no Domain", mode)
		}
		if base != "/" {
			return 0, settings.Errorf("cookie.base_path", "must be \"/\" when cookie.name_prefix is %s: __Host- cookies have Path=/, got %q", mode, base)
		}
	}
	switch s := settings.ValueOr(fc.SameSite, "strict"); s {
	case "strict", "lax":
	default:
		return 0, settings.Errorf("cookie.same_site", "must be strict or lax, got %q", s)
	}
	// Browsers cap Max-Age at 400 days (RFC 6265bis §5.6.2).
	maxAge, err := fc.MaxAge.Range("cookie.max_age", 0, 0, 400*24*time.Hour)
	if err != nil {
		return 0, err
	}
	if maxAge%time.Second != 0 {
		return 0, settings.Errorf("cookie.max_age", "must be a whole number of seconds, got %q", fc.MaxAge)
	}
	return maxAge, nil
}

// checkCookieDomain accepts a bare host name, as example.com: what the
// cookie's Domain attribute holds.
func checkCookieDomain(d string) error {
	const setting = "cookie.domain"
	switch {
	case strings.Contains(d, "://") || strings.Contains(d, "/"):
		return settings.Errorf(setting, "%q must be a bare host name, without scheme or path", d)
	case strings.Contains(d, ":"):
		return settings.Errorf(setting, "%q must be a bare host name, without a port", d)
	case strings.HasPrefix(d, "."):
		return settings.Errorf(setting, "%q must not start with \".\": write the bare host name", d)
	case len(d) > 253:
		return settings.Errorf(setting, "must be at most 253 characters, got %d", len(d))
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return settings.Errorf(setting, "%q is not a valid host name", d)
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return settings.Errorf(setting, "%q is not a valid host name", d)
			}
		}
	}
	return nil
}

// checkAllowedAlgs returns the ID-token signing algorithms, the default when
// the setting was left out.
func checkAllowedAlgs(algs []string) ([]string, error) {
	const setting = "id_token.allowed_algs"
	if algs == nil {
		return []string{"RS256", "PS256", "ES256", "EdDSA"}, nil
	}
	if len(algs) == 0 {
		return nil, settings.Errorf(setting, "must list at least one algorithm")
	}
	return algs, settings.CheckList(setting, algs, settings.Same, func(alg string) error {
		if strings.EqualFold(alg, "none") {
			return fmt.Errorf("%q is not allowed: ID tokens must be signed", alg)
		}
		if !slices.Contains(idTokenAlgs, alg) {
			return fmt.Errorf("%q is not supported: want one of %s", alg, strings.Join(idTokenAlgs, ", "))
		}
		return nil
	})
}
