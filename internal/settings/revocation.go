package settings

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"
	"unicode"
)

// The revocation stores (issue #13), the values of revocation.store.
const (
	// StoreEmbedded: the agent keeps the list (under state_dir) and serves
	// it as a feed on its ops listener; proxies follow the feed.
	StoreEmbedded = "embedded"
	// StoreRedis: every agent and proxy shares one Redis (or Valkey).
	StoreRedis = "redis"
	// StoreOff: no revocation list; back-channel logouts are refused.
	StoreOff = "off"
)

// MinFailClosedAfter is the least revocation.fail_closed_after but 0: a
// proxy's list is confirmed current every few seconds (the embedded feed
// answers a poll at least every 5 s, Redis is pinged every second), so
// anything shorter would refuse requests while every store is up.
const MinFailClosedAfter = 10 * time.Second

// DefaultRedisKeyPrefix is revocation.redis.key_prefix when left out.
const DefaultRedisKeyPrefix = "tokenhandler:"

// Revocation is the revocation section both daemons read, as written
// (issue #13):
//
//	revocation:
//	  store: embedded          # embedded (default) | redis | off
//	  state_dir: ""            # agent, embedded: where the list persists; "" = memory only
//	  feed: ""                 # proxy, embedded: the agent's ops listener, as http://127.0.0.1:9100
//	  fail_closed_after: 0s    # 0 = fail open; else 503 once the list is staler than this
//	  redis: {address: "", username: "", password_file: "", tls: false, key_prefix: "tokenhandler:"}
//
// It may be copied.
type Revocation struct {
	Store           *string         `yaml:"store"`
	StateDir        *string         `yaml:"state_dir"`
	Feed            *string         `yaml:"feed"`
	FailClosedAfter *Duration       `yaml:"fail_closed_after"`
	Redis           RedisRevocation `yaml:"redis"`
}

// RedisRevocation is the section revocation.redis as written. It may be
// copied.
type RedisRevocation struct {
	Address      *string `yaml:"address"`
	Username     *string `yaml:"username"`
	PasswordFile *string `yaml:"password_file"`
	TLS          *bool   `yaml:"tls"`
	KeyPrefix    *string `yaml:"key_prefix"`
}

// RevocationSettings are the checked settings of a [Revocation] section,
// with the defaults applied. It may be copied.
type RevocationSettings struct {
	Store    string // StoreEmbedded (default), StoreRedis or StoreOff
	StateDir string // an absolute path, or "" (memory only); only with StoreEmbedded
	Feed     string // an http or https URL without user information, query or fragment, or ""; only with StoreEmbedded
	// FailClosedAfter > 0: a proxy answers 503 once its list is staler
	// than this; 0 serves with the list it has (fail open).
	FailClosedAfter time.Duration
	Redis           RedisSettings // only with StoreRedis
}

// RedisSettings are the checked settings of revocation.redis. It may be
// copied; never log it, Password is a secret.
type RedisSettings struct {
	Address   string // host:port
	Username  string // "" = none (or Redis's default user)
	Password  string // read from password_file; "" = none
	TLS       bool
	KeyPrefix string // default DefaultRedisKeyPrefix
}

// Parse checks the section and applies the defaults; setting is the
// section's path, as "revocation". A setting that does not apply to the
// store chosen (state_dir or feed with redis, a redis section with
// embedded) is an error rather than silently ignored. The Redis password
// file is read here; errors never quote it.
func (r Revocation) Parse(setting string) (RevocationSettings, error) {
	var s RevocationSettings
	s.Store = ValueOr(r.Store, StoreEmbedded)
	switch s.Store {
	case StoreEmbedded, StoreRedis, StoreOff:
	default:
		return s, Errorf(setting+".store", "must be embedded, redis or off, got %q", s.Store)
	}
	var err error
	if s.FailClosedAfter, err = r.FailClosedAfter.OffOrAtLeast(setting+".fail_closed_after", 0, MinFailClosedAfter, "fail open"); err != nil {
		return s, fmt.Errorf("%w: the list is confirmed current only every few seconds", err)
	}
	if s.Store != StoreEmbedded {
		if r.StateDir != nil {
			return s, Errorf(setting+".state_dir", "applies only to store: embedded (store is %s)", s.Store)
		}
		if r.Feed != nil {
			return s, Errorf(setting+".feed", "applies only to store: embedded (store is %s)", s.Store)
		}
	}
	if s.Store != StoreRedis && r.Redis != (RedisRevocation{}) {
		return s, Errorf(setting+".redis", "applies only to store: redis (store is %s)", s.Store)
	}
	if s.Store == StoreOff && s.FailClosedAfter > 0 {
		return s, Errorf(setting+".fail_closed_after", "needs a store: with store off there is no list to be stale")
	}
	if d := ValueOr(r.StateDir, ""); d != "" {
		if strings.ContainsFunc(d, unicode.IsControl) {
			return s, Errorf(setting+".state_dir", "must not contain control characters")
		}
		if !filepath.IsAbs(d) {
			return s, Errorf(setting+".state_dir", "%q must be an absolute path", d)
		}
		s.StateDir = filepath.Clean(d)
	}
	if f := ValueOr(r.Feed, ""); f != "" {
		if _, err := feedRule.Check(f); err != nil {
			return s, Errorf(setting+".feed", "%w", err)
		}
		s.Feed = strings.TrimSuffix(f, "/")
	}
	if s.Store == StoreRedis {
		if s.Redis, err = r.Redis.parse(setting + ".redis"); err != nil {
			return s, err
		}
	}
	return s, nil
}

// feedRule: the feed is not authenticated, and whoever answers it decides
// what the proxy's list holds (an empty one, say). Plain http is for the
// agent's ops listener on this machine; anything else needs https. A path
// is a prefix the feed is served under.
var feedRule = URLRule{NoQuery: true, HTTPSUnlessLoopback: true,
	Example: "http://127.0.0.1:9100 (the agent's metrics_listen)", OrElse: "store: redis for many machines"}

// parse checks revocation.redis; setting is its path.
func (r RedisRevocation) parse(setting string) (RedisSettings, error) {
	var s RedisSettings
	s.Address = ValueOr(r.Address, "")
	if s.Address == "" {
		return s, Errorf(setting+".address", "is required with store: redis, as 127.0.0.1:6379")
	}
	if HasSpaceOrControl(s.Address) {
		return s, Errorf(setting+".address", "%q must not contain whitespace or control characters", s.Address)
	}
	host, port, err := net.SplitHostPort(s.Address)
	if err != nil || host == "" {
		return s, Errorf(setting+".address", "%q must be host:port, as 127.0.0.1:6379", s.Address)
	}
	if n, ok := ParsePort(port); !ok || n == 0 {
		return s, Errorf(setting+".address", "%q must have a port from 1 to 65535", s.Address)
	}
	s.Username = ValueOr(r.Username, "")
	if HasSpaceOrControl(s.Username) {
		return s, Errorf(setting+".username", "must not contain whitespace or control characters")
	}
	if r.PasswordFile != nil {
		// With the checks of every secret file: refused when group or
		// others may read it.
		src := Source{FileSetting: setting + ".password_file", What: "Redis password"}
		if s.Password, err = src.readSecret(*r.PasswordFile, "password"); err != nil {
			return s, err
		}
	}
	s.TLS = ValueOr(r.TLS, false)
	s.KeyPrefix = ValueOr(r.KeyPrefix, DefaultRedisKeyPrefix)
	if s.KeyPrefix == "" || HasSpaceOrControl(s.KeyPrefix) {
		return s, Errorf(setting+".key_prefix", "must be non-empty, without whitespace or control characters")
	}
	return s, nil
}
