package settings

import (
	"fmt"
	"time"

	"github.com/tokenhandler/tokenhandler/crypto"
)

// DefaultMaxLifetime is session.max_lifetime when left out: a working day.
const DefaultMaxLifetime = 12 * time.Hour

// MaxLifetimeSeconds is what both daemons check session envelopes against:
// d in whole seconds, or DefaultMaxLifetime when d is not positive (a
// configuration built in Go that left it out).
func MaxLifetimeSeconds(d time.Duration) int64 {
	if d <= 0 {
		d = DefaultMaxLifetime
	}
	return int64(d / time.Second)
}

// Session is the session section both daemons read: {max_lifetime: 12h}, how
// long a login session lasts at most from its start, whatever the browser
// keeps. It may be copied.
type Session struct {
	MaxLifetime *Duration `yaml:"max_lifetime"`
}

// Parse returns session.max_lifetime: 1m to 30 days, default 12h. setting is
// the section's path, as "session".
func (s Session) Parse(setting string) (time.Duration, error) {
	return s.MaxLifetime.Range(setting+".max_lifetime", DefaultMaxLifetime, time.Minute, 30*24*time.Hour)
}

// CookieFormats parses the settings cookie.format (the format written: v2,
// the default, v1 or dare) and cookie.accept (formats read besides it, for a
// migration). Left out, cookie.accept is empty with v2 and [v1, dare] with
// v1 or dare, which read each other as before v2 existed. v2 cookies are
// always read (session.NewCodec).
func CookieFormats(format *string, accept []string) (crypto.Format, []crypto.Format, error) {
	write, err := crypto.ParseFormat(ValueOr(format, "v2"))
	if err != nil {
		return 0, nil, Errorf("cookie.format", "must be v2, v1 or dare, got %q", *format)
	}
	var formats []crypto.Format
	if accept == nil && write != crypto.FormatV2 {
		formats = []crypto.Format{crypto.FormatV1, crypto.FormatDARE}
	}
	for i, s := range accept {
		f, err := crypto.ParseFormat(s)
		if err != nil {
			return 0, nil, Errorf(fmt.Sprintf("cookie.accept[%d]", i), "must be v2, v1 or dare, got %q", s)
		}
		formats = append(formats, f)
	}
	return write, formats, nil
}
