package session

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/crypto"
)

// mustNotOpen asserts that cookie does not open as purpose p in chunks
// chunks, with the one opaque error, dst unchanged (spare capacity
// included) and the envelope untouched.
func mustNotOpen(t *testing.T, c *Codec, what string, cookie []byte, p Purpose, chunks int) {
	t.Helper()
	dst := make([]byte, 4, 4096)
	copy(dst, "dst:")
	env := Envelope{Started: 42}
	out, f, err := c.Open(dst, cookie, p, chunks, &env)
	if err != crypto.ErrOpen || f != 0 {
		t.Fatalf("%s: Open = %v, format %v; want ErrOpen", what, err, f)
	}
	if string(out) != "dst:" || &out[0] != &dst[0] || cap(out) != cap(dst) {
		t.Fatalf("%s: Open returned %q, not dst unchanged", what, out)
	}
	if bytes.Count(dst[4:cap(dst)], []byte{0}) != cap(dst)-4 {
		t.Fatalf("%s: Open left plaintext in dst's spare capacity", what)
	}
	if env != (Envelope{Started: 42}) {
		t.Fatalf("%s: Open changed the envelope to %+v", what, env)
	}
}

// negativeCookie is a valid 100-byte access-token cookie, in 2 chunks, and
// its codec.
func negativeCookie(t *testing.T) (*Codec, []byte) {
	t.Helper()
	c := vectorCodec(t, testKeyA, testKeyB)
	env := Envelope{ID: NewID(), Started: 1, Expires: 2, Sub: HashSub("i", "u")}
	cookie, err := c.Seal(nil, AccessToken, 2, &env, bytes.Repeat([]byte("tok"), 34)[:100])
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Open(nil, cookie, AccessToken, 2, new(Envelope)); err != nil {
		t.Fatalf("the unmodified cookie does not open: %v", err)
	}
	return c, cookie
}

func TestOpenV2RejectsEveryFlippedBit(t *testing.T) {
	c, cookie := negativeCookie(t)
	raw, _ := refDecode(cookie)
	for i := range raw {
		for bit := range 8 {
			mut := bytes.Clone(raw)
			mut[i] ^= 1 << bit
			mustNotOpen(t, c, "byte "+strconv.Itoa(i)+" bit "+strconv.Itoa(bit), []byte(refEncode(mut)), AccessToken, 2)
		}
	}
	for i := range cookie {
		mut := bytes.Clone(cookie)
		mut[i] = refAlphabet[(strings.IndexByte(refAlphabet, cookie[i])+1)%64]
		mustNotOpen(t, c, "character "+strconv.Itoa(i)+" changed", mut, AccessToken, 2)
	}
}

func TestOpenV2RejectsTruncationsAndTrailingBytes(t *testing.T) {
	c, cookie := negativeCookie(t)
	for n := range len(cookie) {
		mustNotOpen(t, c, "cut to "+strconv.Itoa(n)+" characters", cookie[:n], AccessToken, 2)
	}
	raw, _ := refDecode(cookie)
	for n := range len(raw) {
		mustNotOpen(t, c, "decoded cut to "+strconv.Itoa(n)+" bytes", []byte(refEncode(raw[:n])), AccessToken, 2)
	}
	for _, extra := range [][]byte{{0}, {0x02}, raw[len(raw)-16:], raw} {
		mustNotOpen(t, c, strconv.Itoa(len(extra))+" bytes appended", []byte(refEncode(append(bytes.Clone(raw), extra...))), AccessToken, 2)
	}
	for _, s := range []string{"=", "==", "\n", "\r\n", " ", "A", "AA"} {
		mustNotOpen(t, c, "text "+strconv.Quote(s)+" appended", append(bytes.Clone(cookie), s...), AccessToken, 2)
	}
	mustNotOpen(t, c, "the cookie twice", append(bytes.Clone(cookie), cookie...), AccessToken, 2)
}

func TestOpenV2RejectsVersionBytes(t *testing.T) {
	c, cookie := negativeCookie(t)
	raw, _ := refDecode(cookie)
	for v := range 256 {
		if v == 0x02 {
			continue
		}
		mut := bytes.Clone(raw)
		mut[0] = byte(v)
		mustNotOpen(t, c, "version byte "+strconv.Itoa(v), []byte(refEncode(mut)), AccessToken, 2)
	}
}

// TestOpenRelabelled: the version byte is the only difference between the
// v1 and v2 layouts, so each relabelled as the other must fail on its tag,
// under a codec that reads both.
func TestOpenRelabelled(t *testing.T) {
	ring, _ := crypto.ParseKeyring(testKeyA)
	migrating, err := NewCodec(ring, crypto.FormatV2, crypto.FormatV1, crypto.FormatDARE)
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := migrating.Seal(nil, CSRF, 0, &Envelope{ID: NewID()}, []byte("csrf-value"))
	v1, _ := ring.Seal(nil, bytes.Repeat([]byte("x"), 80), crypto.FormatV1) // long enough for a trailer
	for name, tc := range map[string]struct {
		cookie []byte
		to     byte
	}{"v2 as 0x01": {v2, 0x01}, "v1 as 0x02": {v1, 0x02}} {
		raw, _ := refDecode(tc.cookie)
		raw[0] = tc.to
		for p := Login; p < purposeEnd; p++ {
			for n := range MaxChunks + 1 {
				mustNotOpen(t, migrating, name+" as "+p.String()+"/"+strconv.Itoa(n), []byte(refEncode(raw)), p, n)
			}
		}
		if _, err := ring.Open(nil, []byte(refEncode(raw))); err != crypto.ErrOpen {
			t.Errorf("%s: Keyring.Open = %v, want ErrOpen", name, err)
		}
	}
}

// TestOpenV2RejectsShortPlaintext: a cookie sealed in layout v2 with the
// right associated data but a plaintext too short to hold the trailer
// authenticates, and must still be refused.
func TestOpenV2RejectsShortPlaintext(t *testing.T) {
	c, _ := negativeCookie(t)
	for n := range TrailerSize {
		cookie, err := c.Keys().SealAD(nil, make([]byte, n), crypto.FormatV2, associatedData("", IDToken, 0))
		if err != nil {
			t.Fatal(err)
		}
		mustNotOpen(t, c, strconv.Itoa(n)+"-byte plaintext", cookie, IDToken, 0)
	}
	cookie, _ := c.Keys().SealAD(nil, make([]byte, TrailerSize), crypto.FormatV2, associatedData("", IDToken, 0))
	if out, _, err := c.Open(nil, cookie, IDToken, 0, new(Envelope)); err != nil || len(out) != 0 {
		t.Fatalf("a bare trailer: Open = %d bytes, %v; want an empty value", len(out), err)
	}
}

func TestOpenV2RejectsWrongKeysAndLegacy(t *testing.T) {
	c, cookie := negativeCookie(t)
	other, _ := NewCodec(mustRing(t, crypto.GenerateKey(), crypto.GenerateKey()), crypto.FormatV2)
	mustNotOpen(t, other, "other keys", cookie, AccessToken, 2)
	for _, f := range []crypto.Format{crypto.FormatV1, crypto.FormatDARE} {
		legacy, err := c.Keys().Seal(nil, bytes.Repeat([]byte("x"), 100), f)
		if err != nil {
			t.Fatal(err)
		}
		mustNotOpen(t, c, f.String()+" under a v2-only codec", legacy, AccessToken, 0)
	}
	for _, s := range []string{"", "A", "Ag", "AgAA", strings.Repeat("A", 130), strings.Repeat("_", 200)} {
		mustNotOpen(t, c, strconv.Quote(s), []byte(s), AccessToken, 2)
	}
}

func mustRing(t testing.TB, keys ...crypto.Key) *crypto.Keyring {
	t.Helper()
	r, err := crypto.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
