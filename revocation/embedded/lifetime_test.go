package embedded

import (
	"testing"
	"time"
)

// TestSetMaxLifetime: a reload that raises session.max_lifetime (an
// application with a longer one added, issue #15) makes the entries
// recorded afterwards without an Expires live the new lifetime; entries
// recorded before keep theirs, in memory, in the file and after a reopen
// with the shorter lifetime; a lifetime that is not positive is refused
// and changes nothing. Without SetMaxLifetime the second entry expires
// after an hour.
func TestSetMaxLifetime(t *testing.T) {
	dir := t.TempDir()
	c := &clock{}
	c.unix.Store(1000)
	l := open(t, dir, c) // 1 h
	before := revoke(t, l, sid("before"))
	if err := l.SetMaxLifetime(24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	after := revoke(t, l, sid("after"))
	if before.Expires != 1000+3600 || after.Expires != 1000+24*3600 {
		t.Fatalf("Expires %d and %d, want At + 1h before the change and At + 24h after it", before.Expires, after.Expires)
	}
	for _, d := range []time.Duration{0, -time.Hour} {
		if err := l.SetMaxLifetime(d); err == nil {
			t.Errorf("SetMaxLifetime(%v) accepted", d)
		}
	}
	if got := revoke(t, l, sid("refused")); got.Expires != got.At+24*3600 {
		t.Errorf("after a refused SetMaxLifetime an entry expires at At+%ds, want At+24h", got.Expires-got.At)
	}
	l.Close()

	c.unix.Store(1000 + 2*3600) // past the old lifetime
	again := open(t, dir, c)    // reopened with 1 h, as an agent restarted on an old file
	entries, _, _, _ := again.snapshot(0)
	if len(entries) != 2 || entries[0].Digest != after.Digest || entries[0].Expires != after.Expires {
		t.Fatalf("after a reopen past the old lifetime: %+v, want the two entries recorded with 24 h", entries)
	}
}
