package settings

import (
	"time"
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
