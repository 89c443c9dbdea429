//go:build !race

package revocation

import (
	"strconv"
	"testing"

	"github.com/tokenhandler/tokenhandler/session"
)

// TestRevokedNoAllocs: the proxy asks on every request, so asking allocates
// nothing, with an empty set and with 100,000 entries.
func TestRevokedNoAllocs(t *testing.T) {
	s := NewSet()
	env := session.Envelope{SID: session.HashSID(iss, "live"), Sub: session.HashSub(iss, "alice"), Started: 100}
	if n := testing.AllocsPerRun(1000, func() { s.Revoked(&env, 200) }); n != 0 {
		t.Errorf("empty set: %v allocations", n)
	}
	for i := range 100_000 {
		s.Add(Entry{Kind: BySID, Digest: session.HashSID(iss, strconv.Itoa(i)), Expires: 1 << 40})
	}
	if n := testing.AllocsPerRun(1000, func() { s.Revoked(&env, 200) }); n != 0 {
		t.Errorf("100,000 entries: %v allocations", n)
	}
}

func BenchmarkRevoked(b *testing.B) {
	for _, n := range []int{0, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			s := NewSet()
			for i := range n {
				s.Add(Entry{Kind: BySID, Digest: session.HashSID(iss, strconv.Itoa(i)), Expires: 1 << 40})
			}
			env := session.Envelope{SID: session.HashSID(iss, "live"), Sub: session.HashSub(iss, "alice"), Started: 100}
			b.ReportAllocs()
			for b.Loop() {
				s.Revoked(&env, 200)
			}
		})
	}
}
