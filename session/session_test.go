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

// TestAppBinding: under one key ring, a v2 cookie sealed for one
// application opens for that application alone, and a file without apps
// (app "") keeps the associated data it always had, so its cookies still
// open after an upgrade.
func TestAppBinding(t *testing.T) {
	plain := testCodec(t, crypto.FormatV2, crypto.FormatV1)
	shop, admin := plain.WithApp("shop"), plain.WithApp("admin")
	if plain.WithApp("") != plain || shop.app != "shop" || plain.app != "" {
		t.Fatal("WithApp: wrong codec")
	}
	env := Envelope{ID: NewID(), Started: 1, Expires: 2}
	codecs := map[string]*Codec{"": plain, "shop": shop, "admin": admin, "shop2": plain.WithApp("shop2")}
	for sealer, sc := range codecs {
		cookie, err := sc.Seal(nil, AccessToken, 0, &env, []byte("tok"))
		if err != nil {
			t.Fatal(err)
		}
		for opener, oc := range codecs {
			var got Envelope
			out, _, err := oc.Open(nil, cookie, AccessToken, 0, &got)
			if want := sealer == opener; (err == nil) != want {
				t.Errorf("sealed for %q, opened for %q: err %v, want opened %v", sealer, opener, err, want)
			} else if want && string(out) != "tok" {
				t.Errorf("sealed for %q: opened %q", sealer, out)
			}
		}
	}
	// v1 carries no binding: it opens wherever v1 is accepted.
	v1, err := plain.Keys().Seal(nil, []byte("tok"), crypto.FormatV1)
	if err != nil {
		t.Fatal(err)
	}
	if _, f, err := shop.Open(nil, v1, AccessToken, 0, new(Envelope)); err != nil || f != crypto.FormatV1 {
		t.Errorf("v1 cookie at an application: %v, %v", f, err)
	}
}
