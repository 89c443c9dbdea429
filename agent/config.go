package agent

import (
	"time"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/revocation"
)

// Config is the validated configuration of the oauth-agent binary (contract §7).
// Build one with LoadConfig or ParseConfig, which apply the defaults noted
// beside each field and refuse anything invalid, naming the setting.
//
// A Config is plain data and may be copied; copies share its slices and its
// Keyring. It is read-only once built and may be shared by any number of
// goroutines.
type Config struct {
	// AppSet names the application and lists those of a file with apps
	// (issue #15), with the warnings of the file.
	settings.AppSet[*Config]
	Listen        string // "host:port" or "unix:/abs/path.sock"; default "127.0.0.1:8080"
	MetricsListen string // same forms; "" (default) = no metrics/health listener
	BasePath      string // default "/oauth-agent"; starts with "/", no trailing "/"

	// Issuer is the Authorization Server's issuer identifier, required: ID
	// tokens are verified against it, and its discovery document
	// (/.well-known/openid-configuration) is fetched at start.
	Issuer string
	// Endpoints override what discovery says.
	Endpoints Endpoints

	ClientID         string
	ClientSecret     string // from client_secret, client_secret_file or TH_CLIENT_SECRET
	ClientAuthMethod string // "client_secret_basic" (default) or "client_secret_post"
	RedirectURI      string
	// PostLogoutRedirectURI goes into the end-session URL; "" leaves it out.
	PostLogoutRedirectURI string
	// Scope is the scope requested at login; default "openid profile".
	// Without "openid" the agent is a plain OAuth 2.0 client: a token
	// response without an ID token then starts an OAuth-only session (no
	// P-id, no /claims, no id_token_hint); with "openid" an ID token is
	// required (OpenID Connect Core §3.1.3.3).
	Scope string
	// UserinfoMethod is how /userInfo calls the AS's UserInfo endpoint:
	// "GET" (the default, also for "") or "POST" with an empty form body.
	// Both send the access token in the Authorization header (RFC 6750
	// §2.1); OpenID Connect Core §5.3.1 makes the OP accept both.
	UserinfoMethod string
	// ExtraParamsAllowed are the authorization request parameters the SPA
	// may add with login/start's extraParams; nil means
	// DefaultExtraParamsAllowed, empty none. A parameter the agent sets
	// itself (client_id, redirect_uri, scope, state, nonce, code_challenge,
	// ...: params.go) is never taken from the SPA, listed or not.
	ExtraParamsAllowed []string

	CookieNamePrefix string // YAML cookie.prefix; default "example"
	Cookie           Cookie
	// CookieFormat (YAML cookie.format) is the format cookies are written
	// in: FormatV2 (the default, also for the zero value), FormatV1
	// (byte-compatible with the reference token handler) or FormatDARE.
	CookieFormat crypto.Format
	// CookieAccept (YAML cookie.accept) are formats read besides
	// CookieFormat, during a migration; v2 is always read. See
	// docs/compatibility.md for what v1 and DARE cookies cannot protect
	// against.
	CookieAccept []crypto.Format
	Keys         *crypto.Keyring // from encryption_keys, encryption_keys_file or TH_ENCRYPTION_KEYS
	Session      Session

	TrustedWebOrigins []string
	CORSEnabled       bool // YAML cors.enabled; default true

	PAR      string // "auto" (default: when the AS requires it), "always" or "never"
	IDToken  IDToken
	Refresh  Refresh
	Logout   Logout
	Timeouts Timeouts
	Log      Log

	// Revocation is the revocation section (issue #13): the store
	// back-channel logouts are recorded in and proxies follow. The zero
	// value is the embedded store in memory. Changes wait for a restart.
	Revocation settings.RevocationSettings
	// RevocationStore, when not nil, is used instead of the store
	// Revocation names: the agent records back-channel logouts in it and
	// follows it, and does not close it. Tests set it; the configuration
	// file cannot.
	RevocationStore revocation.Store

	// Coordinator, when not nil, makes refresh-token grants single-flight
	// across the agents that share it (a *revocation/redis.Store when
	// revocation.store is redis); nil: within this process only.
	Coordinator RefreshCoordinator

	// Now returns the current time; nil means time.Now. Tests set it; the
	// configuration file cannot.
	Now func() time.Time
}

// Applications returns the applications c serves: c.Apps, or c itself for
// a file without apps.
func (c *Config) Applications() []*Config {
	if len(c.Apps) == 0 {
		return []*Config{c}
	}
	return c.Apps
}

// Endpoints are the Authorization Server's endpoints given explicitly; ""
// means "from discovery".
type Endpoints struct {
	Authorization string
	Token         string
	Userinfo      string
	JWKSURI       string
	EndSession    string
	PAR           string // pushed_authorization_request_endpoint
	Revocation    string
}

// Cookie holds the cookie attributes (contract §4).
type Cookie struct {
	Domain   string // "" = host-only cookies
	BasePath string // default "/": Path of P-at, P-csrf, P-login
	// NamePrefix is cookie.name_prefix: with
	// host or host-http the names become __Host-P-... or __Host-Http-P-...,
	// which need BasePath "/" and no Domain.
	NamePrefix browser.NamePrefix
	SameSite   string        // "strict" (default) or "lax"
	MaxAge     time.Duration // 0 (default) = session cookies
}

// Session bounds a login session.
type Session struct {
	// MaxLifetime is how long a session lasts at most from its login,
	// whatever the browser keeps: v2 cookies carry the start, and every
	// endpoint refuses an older one with session_expired. Default 12h (also
	// for the zero value).
	MaxLifetime time.Duration
}

// IDToken are the ID-token validation rules.
type IDToken struct {
	AllowedAlgs []string      // default RS256, PS256, ES256, EdDSA; never "none"
	ClockSkew   time.Duration // default 30s, at most 5m
}

// Refresh configures refresh single-flight.
type Refresh struct {
	// GracePeriod is how long a finished refresh's result is handed to
	// other requests of the same session that send the refresh token it
	// replaced (tabs that raced it). Default 5s, at most 10s; 0 turns it off.
	GracePeriod time.Duration
}

// Logout configures logout.
type Logout struct {
	// RevokeRefreshToken revokes the refresh token at logout (RFC 7009) when
	// the AS has a revocation endpoint; P-auth then has Path <base>. The
	// configuration file's default is true.
	RevokeRefreshToken bool
}

// Timeouts of the listener, of a shutdown (settings.ServerTimeouts: read,
// write, idle and shutdown, shutdown_delay) and of every back-channel call.
// It may be copied.
type Timeouts struct {
	settings.ServerTimeouts
	AS time.Duration // default 10s: each call to the Authorization Server
}

// Log is the logging configuration: level (default info) and format
// ("json", the default, or "console"), as the proxy's.
type Log = settings.LogSettings
