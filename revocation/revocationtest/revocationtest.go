// Package revocationtest holds what every revocation store's tests check the
// same way: that Follow delivers entries and stops when its context ends. Only
// tests import it.
package revocationtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/revocation"
)

// Follow runs s.Follow(set) until the test ends, and then checks that it
// returns context.Canceled within stopWithin of its context's end.
func Follow(t testing.TB, s revocation.Store, set *revocation.Set, stopWithin time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Follow(ctx, set) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Follow returned %v, want context.Canceled", err)
			}
		case <-time.After(stopWithin):
			t.Errorf("Follow did not return within %v of its context's end", stopWithin)
		}
	})
}
