package settings

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a duration setting, written as a Go duration string such as
// "30s". It decodes itself (it is a yaml.Unmarshaler), so a section declares
// it as a *Duration field, nil when the setting was left out, and the
// daemon's conversion only checks its range with [Duration.Positive] or
// [Duration.Range]. It keeps the text as written, which its messages quote.
// The zero value is 0s; a Duration may be copied.
type Duration struct {
	d    time.Duration
	text string
}

// UnmarshalYAML decodes a scalar such as 30s. Its errors quote the text;
// Parse puts the setting's path in front of them.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("must be a Go duration such as 30s (line %d)", n.Line)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("invalid duration %q (write a Go duration such as 30s)", n.Value)
	}
	*d = Duration{v, n.Value}
	return nil
}

// String returns the duration as written.
func (d *Duration) String() string { return d.text }

// Or returns the duration, or def when d is nil (the setting was left out).
func (d *Duration) Or(def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.d
}

// Positive returns the duration, or def when d is nil; a duration given
// must be greater than zero. setting is its path, for the message.
func (d *Duration) Positive(setting string, def time.Duration) (time.Duration, error) {
	if d != nil && d.d <= 0 {
		return 0, Errorf(setting, "must be greater than zero, got %q", d.text)
	}
	return d.Or(def), nil
}

// Range returns the duration, or def when d is nil; a duration given must
// lie between lo and hi, both included. setting is its path, for the message.
func (d *Duration) Range(setting string, def, lo, hi time.Duration) (time.Duration, error) {
	if d != nil && (d.d < lo || d.d > hi) {
		return 0, Errorf(setting, "must be between %s and %s, got %q", formatDuration(lo), formatDuration(hi), d.text)
	}
	return d.Or(def), nil
}

// OffOrAtLeast returns the duration, or def when d is nil; a duration
// given must be 0 (what off means, named in the message) or at least lo.
// setting is its path, for the message.
func (d *Duration) OffOrAtLeast(setting string, def, lo time.Duration, off string) (time.Duration, error) {
	if d != nil && d.d != 0 && d.d < lo {
		return 0, Errorf(setting, "must be 0 (%s) or at least %s, got %q", off, formatDuration(lo), d.text)
	}
	return d.Or(def), nil
}

// formatDuration writes d as an operator would: 5m rather than 5m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
