package session

import (
	"bytes"
	"math"
	"testing"

	"github.com/tokenhandler/tokenhandler/crypto"
)

func testCodec(t testing.TB, write crypto.Format, accept ...crypto.Format) *Codec {
	t.Helper()
	ring, err := crypto.NewKeyring(crypto.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCodec(ring, write, accept...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTripAndPurpose(t *testing.T) {
	c := testCodec(t, crypto.FormatV2)
	env := Envelope{ID: NewID(), Started: 1000, Expires: 2000, SID: HashSID("iss", "s"), Sub: HashSub("iss", "u")}
	for p := Login; p < purposeEnd; p++ {
		for _, chunks := range []int{0, 2, 8} {
			value := []byte("value-" + p.String())
			cookie, err := c.Seal(nil, p, chunks, &env, value)
			if err != nil {
				t.Fatal(err)
			}
			if len(cookie) != c.SealedLen(len(value)) {
				t.Errorf("SealedLen(%d) = %d, sealed %d", len(value), c.SealedLen(len(value)), len(cookie))
			}
			var got Envelope
			out, f, err := c.Open([]byte("x"), cookie, p, chunks, &got)
			if err != nil || f != crypto.FormatV2 || string(out) != "x"+string(value) || got != env {
				t.Fatalf("%s/%d: Open = %q, %v, %v, %+v", p, chunks, out, f, err, got)
			}
			for q := Purpose(0); q <= purposeEnd; q++ {
				for _, n := range []int{0, 1, 2, 8, 9} {
					if q == p && n == chunks {
						continue
					}
					if out, _, err := c.Open([]byte("x"), cookie, q, n, &got); err != crypto.ErrOpen || !bytes.Equal(out, []byte("x")) {
						t.Errorf("a %s/%d cookie opened as %s/%d: %q, %v", p, chunks, q, n, out, err)
					}
				}
			}
			if _, err := c.Keys().Open(nil, cookie); err != crypto.ErrOpen {
				t.Errorf("a v2 cookie opened without associated data: %v", err)
			}
		}
	}
}

func TestLegacyFormats(t *testing.T) {
	v2 := testCodec(t, crypto.FormatV2)
	v1cookie, _ := v2.Keys().Seal(nil, []byte("tok"), crypto.FormatV1)
	var env Envelope
	if _, _, err := v2.Open(nil, v1cookie, AccessToken, 0, &env); err != crypto.ErrOpen {
		t.Errorf("v2-only codec opened a v1 cookie: %v", err)
	}
	migrating, _ := NewCodec(v2.Keys(), crypto.FormatV2, crypto.FormatV1)
	env.ID = NewID()
	out, f, err := migrating.Open(nil, v1cookie, CSRF, 0, &env)
	if err != nil || f != crypto.FormatV1 || string(out) != "tok" || env != (Envelope{}) {
		t.Errorf("migrating codec: %q, %v, %v, %+v", out, f, err, env)
	}
	v1 := testCodec(t, crypto.FormatV1)
	cookie, _ := v1.Seal(nil, AccessToken, 0, &Envelope{}, []byte("tok"))
	if out, f, err := v1.Open(nil, cookie, RefreshToken, 3, &env); err != nil || f != crypto.FormatV1 || string(out) != "tok" {
		t.Errorf("v1 codec: %q, %v, %v", out, f, err)
	}
}

func TestLive(t *testing.T) {
	e := Envelope{Started: 100, Expires: 200}
	for _, tc := range []struct {
		now, max int64
		want     bool
	}{{150, 1000, true}, {199, 1000, true}, {200, 1000, false}, {150, 51, true}, {150, 50, false}} {
		if got := e.Live(tc.now, tc.max); got != tc.want {
			t.Errorf("Live(%d, %d) = %v", tc.now, tc.max, got)
		}
	}
	// A start time so far in the past that now-Started overflows int64
	// must not wrap around into a live session.
	ancient := Envelope{Started: math.MinInt64, Expires: math.MaxInt64}
	if ancient.Live(1_767_225_600, 12*3600) {
		t.Error("a session started at the minimum int64 is live")
	}
}
