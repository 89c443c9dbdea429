package settings

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
)

// The settings both daemons have are declared once, here, and embedded in
// each daemon's file struct, so that they are spelt the same in both files
// (contract §7): [Shared] at the top level (listeners, keys, web origins,
// and the sections session, log and revocation), and the sections cors,
// cookie and timeouts, to which a daemon adds its own settings by embedding
// the shared struct with `yaml:",inline"`.

// Shared are the settings both daemons have that neither extends. A
// daemon's file struct embeds it with `yaml:",inline"`. It may be copied.
type Shared struct {
	// The cookie encryption keys, from one of these settings or the
	// environment variable TH_ENCRYPTION_KEYS: KeySource.
	EncryptionKeys     []string   `yaml:"encryption_keys"`
	EncryptionKeysFile *string    `yaml:"encryption_keys_file"`
	Listen             *string    `yaml:"listen"`
	MetricsListen      string     `yaml:"metrics_listen"`
	TrustedWebOrigins  []string   `yaml:"trusted_web_origins"`
	Session            Session    `yaml:"session"`
	Log                Log        `yaml:"log"`
	Revocation         Revocation `yaml:"revocation"`
	// AllowSharedKeys lets the applications of a file with apps share a
	// key (issue #15); a process-wide setting, meaningless without apps.
	AllowSharedKeys bool `yaml:"allow_shared_keys"`
}

// SharedSettings are the checked settings of [Shared], with the defaults
// applied. It may be copied; it shares TrustedWebOrigins and Keys.
type SharedSettings struct {
	Listen, MetricsListen string
	TrustedWebOrigins     []string
	Keys                  *crypto.Keyring
	MaxLifetime           time.Duration // session.max_lifetime
	Log                   LogSettings
	// Revocation is the zero value when the file has no revocation
	// section, which each daemon reads as it documents.
	Revocation RevocationSettings
}

// Parse checks the shared settings and applies the defaults. listen is
// the daemon's default listen address, socket the socket path its messages
// suggest, as "/run/tokenhandler/proxy.sock". The key ring is built after
// the web origins are checked: a published test key is allowed only when
// the listeners, the origins and urls (the daemon's other browser URLs,
// checked already) are all on this machine.
func (s Shared) Parse(listen, socket string, getenv func(string) string, urls ...string) (SharedSettings, error) {
	c := SharedSettings{Listen: ValueOr(s.Listen, listen), MetricsListen: s.MetricsListen, TrustedWebOrigins: s.TrustedWebOrigins}
	if err := CheckListeners(c.Listen, c.MetricsListen, socket); err != nil {
		return c, err
	}
	if err := CheckWebOrigins("trusted_web_origins", c.TrustedWebOrigins); err != nil {
		return c, err
	}
	var err error
	if c.Keys, err = KeySource.Keyring(s.EncryptionKeys, s.EncryptionKeysFile, getenv, []string{c.Listen, c.MetricsListen}, slices.Concat(urls, c.TrustedWebOrigins)); err != nil {
		return c, err
	}
	if c.MaxLifetime, err = s.Session.Parse("session"); err != nil {
		return c, err
	}
	if c.Log, err = s.Log.Parse("log"); err != nil {
		return c, err
	}
	if s.Revocation != (Revocation{}) {
		if c.Revocation, err = s.Revocation.Parse("revocation"); err != nil {
			return c, err
		}
	}
	return c, nil
}

// KeySource is where the cookie encryption keys may come from.
var KeySource = Source{
	Setting:     "encryption_keys",
	FileSetting: "encryption_keys_file",
	Env:         "TH_ENCRYPTION_KEYS",
	What:        "cookie encryption keys",
}

// CORS is what both daemons read of the cors section: {enabled: true}. The
// proxy adds its lists and max_age. It may be copied.
type CORS struct {
	Enabled *bool `yaml:"enabled"` // default true
}

// On reports whether CORS is on: cors.enabled, default true.
func (c CORS) On() bool { return ValueOr(c.Enabled, true) }

// Cookie is what both daemons read of the cookie section: the names'
// prefix, the __Host- mode, and the format. The agent adds the cookies'
// attributes. It may be copied; it shares Accept.
type Cookie struct {
	// Prefix names the cookies <prefix>-at, ... (before issue #16 the
	// top-level cookie_name_prefix).
	Prefix *string `yaml:"prefix"`
	// NamePrefix is none, host or host-http; HostPrefix is its older
	// spelling (true is host), read with a warning.
	NamePrefix *string `yaml:"name_prefix"`
	HostPrefix *bool   `yaml:"host_prefix"`
	// Format and Accept were the top-level cookie_format and cookie_accept.
	Format *string  `yaml:"format"`
	Accept []string `yaml:"accept"`
}

// CookieSettings are the checked settings of a [Cookie] section, with the
// defaults applied. It may be copied; it shares Accept.
type CookieSettings struct {
	Prefix     string             // default browser.DefaultPrefix, "example"
	NamePrefix browser.NamePrefix // default none
	Format     crypto.Format      // default v2
	Accept     []crypto.Format    // formats read besides Format: see Parse
}

// Parse checks the section and applies the defaults. cookie.host_prefix,
// the older spelling of cookie.name_prefix (true means host, false none),
// is read with a warning added to d; both given are an error, as for every
// renamed setting. Left out, cookie.accept is empty with format v2 and
// [v1, dare] with v1 or dare, which read each other as before v2 existed;
// v2 cookies are always read (session.NewCodec).
func (c Cookie) Parse(d *Deprecations) (CookieSettings, error) {
	var s CookieSettings
	s.Prefix = ValueOr(c.Prefix, browser.DefaultPrefix)
	if err := browser.CheckPrefix(s.Prefix); err != nil {
		return s, Errorf("cookie.prefix", "%w", err)
	}
	var err error
	switch {
	case c.HostPrefix != nil && c.NamePrefix != nil:
		return s, errors.New("cookie.host_prefix and cookie.name_prefix are the same setting: keep cookie.name_prefix and remove cookie.host_prefix, its deprecated spelling")
	case c.HostPrefix != nil && *c.HostPrefix:
		d.Deprecated("cookie.host_prefix: true", "cookie.name_prefix: host")
		s.NamePrefix = browser.NamePrefixHost
	case c.HostPrefix != nil:
		d.Deprecated("cookie.host_prefix: false", "cookie.name_prefix: none")
	case c.NamePrefix != nil:
		if s.NamePrefix, err = browser.ParseNamePrefix(*c.NamePrefix); err != nil {
			return s, Errorf("cookie.name_prefix", "%w", err)
		}
	}
	if s.Format, err = crypto.ParseFormat(ValueOr(c.Format, "v2")); err != nil {
		return s, Errorf("cookie.format", "must be v2, v1 or dare, got %q", *c.Format)
	}
	if c.Accept == nil && s.Format != crypto.FormatV2 {
		s.Accept = []crypto.Format{crypto.FormatV1, crypto.FormatDARE}
	}
	for i, a := range c.Accept {
		f, err := crypto.ParseFormat(a)
		if err != nil {
			return s, Errorf(fmt.Sprintf("cookie.accept[%d]", i), "must be v2, v1 or dare, got %q", a)
		}
		s.Accept = append(s.Accept, f)
	}
	return s, nil
}

// Timeouts is what both daemons read of the timeouts section: the
// listener's read, write and idle timeouts and the steps of a shutdown.
// Each daemon adds the timeouts of its calls. It may be copied.
type Timeouts struct {
	Read     *Duration `yaml:"read"`     // default 30s
	Write    *Duration `yaml:"write"`    // default 30s
	Idle     *Duration `yaml:"idle"`     // default 120s
	Shutdown *Duration `yaml:"shutdown"` // default 30s: how long SIGTERM waits for requests in flight
	// ShutdownDelay, default 0s, 0 to 10m: how long the listener keeps
	// serving after SIGTERM, with /readyz answering 503, before the drain.
	ShutdownDelay *Duration `yaml:"shutdown_delay"`
}

// ServerTimeouts are the checked durations of a [Timeouts] section, with
// the defaults of [Timeouts]; each daemon's Timeouts embeds them. It may be
// copied.
type ServerTimeouts struct {
	Read, Write, Idle, Shutdown time.Duration
	ShutdownDelay               time.Duration // 0 (the default) to 10m
}

// Parse checks the timeouts, each greater than zero but shutdown_delay (0
// or more), and applies the defaults; setting is the section's path, as
// "timeouts".
func (t Timeouts) Parse(setting string) (ServerTimeouts, error) {
	var s ServerTimeouts
	for _, d := range []struct {
		name  string
		value *Duration
		def   time.Duration
		dst   *time.Duration
	}{
		{"read", t.Read, 30 * time.Second, &s.Read},
		{"write", t.Write, 30 * time.Second, &s.Write},
		{"idle", t.Idle, 120 * time.Second, &s.Idle},
		{"shutdown", t.Shutdown, 30 * time.Second, &s.Shutdown},
	} {
		var err error
		if *d.dst, err = d.value.Positive(setting+"."+d.name, d.def); err != nil {
			return s, err
		}
	}
	var err error
	s.ShutdownDelay, err = t.ShutdownDelay.Range(setting+".shutdown_delay", 0, 0, 10*time.Minute)
	return s, err
}
