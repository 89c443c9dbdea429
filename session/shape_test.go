package session

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/crypto"
)

// TestWellFormed: cookies sealed under another key are well-formed, in every
// format the codec reads and no other; garbage, damaged encodings and values
// shorter than their format's overhead are not.
func TestWellFormed(t *testing.T) {
	other := testCodec(t, crypto.FormatV1, crypto.FormatDARE) // another key ring
	env := Envelope{ID: NewID(), Started: 1, Expires: 2}
	v2, _ := testCodec(t, crypto.FormatV2).Seal(nil, AccessToken, 0, &env, []byte("token"))
	emptyV2, _ := testCodec(t, crypto.FormatV2).Seal(nil, CSRF, 0, &env, nil)
	v1, _ := other.Seal(nil, AccessToken, 0, nil, []byte("token"))
	emptyV1, _ := other.Keys().Seal(nil, nil, crypto.FormatV1)
	dare, _ := other.Keys().Seal(nil, []byte("t"), crypto.FormatDARE)

	v2Only := testCodec(t, crypto.FormatV2)
	all := testCodec(t, crypto.FormatV2, crypto.FormatV1, crypto.FormatDARE)
	for _, tc := range []struct {
		name    string
		cookie  string
		v2, all bool
	}{
		{"v2", string(v2), true, true},
		{"v2, empty value", string(emptyV2), true, true},
		{"v1", string(v1), false, true},
		{"v1, empty value", string(emptyV1), false, true},
		{"dare", string(dare), false, true},
		{"v2 one byte short of its trailer", string(v2[:b64len(gcmOverhead+TrailerSize-1)]), false, false},
		{"v1 one byte short", string(emptyV1[:b64len(gcmOverhead-1)]), false, false},
		{"empty", "", false, false},
		{"a word", "garbage", false, false},
		{"a JWT", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", false, false},
		{"padded", string(v2) + "==", false, false},
		{"standard alphabet", strings.ReplaceAll(strings.ReplaceAll(string(v2), "-", "+"), "_", "/") + "+/", false, false},
		{"a line break", string(v2[:40]) + "\r\n" + string(v2[40:]), false, false},
		{"a length of 1 mod 4", string(v2) + strings.Repeat("A", 5-len(v2)%4), false, false},
		{"version 0x03", withVersion(v2, 3), false, false},
		{"version 0x00", withVersion(v2, 0), false, false},
		{"non-zero spare bits", spareBits(string(v2)), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := v2Only.WellFormed([]byte(tc.cookie)); got != tc.v2 {
				t.Errorf("v2 codec: WellFormed = %v, want %v", got, tc.v2)
			}
			if got := all.WellFormed([]byte(tc.cookie)); got != tc.all {
				t.Errorf("codec reading all formats: WellFormed = %v, want %v", got, tc.all)
			}
		})
	}
	if a := testing.AllocsPerRun(100, func() { v2Only.WellFormed(v2) }); a != 0 {
		t.Errorf("WellFormed allocates %.1f times", a)
	}
}

// withVersion returns cookie with its first byte replaced by v.
func withVersion(cookie []byte, v byte) string {
	raw, err := strict.DecodeString(string(cookie))
	if err != nil {
		panic(err)
	}
	raw[0] = v
	return strict.EncodeToString(raw)
}

// b64len is the base64url length of n bytes.
func b64len(n int) int { return (n*8 + 5) / 6 }

// spareBits sets the unused low bits of the last character of s, whose
// length is not a multiple of 4 ('A' is 0, 'B' is 1).
func spareBits(s string) string {
	if len(s)%4 == 0 {
		panic("spareBits: no spare bits")
	}
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", s[len(s)-1])
	return s[:len(s)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1])
}

// FuzzWellFormed: no input panics, and whatever WellFormed accepts the
// strict decoder Open uses decodes.
func FuzzWellFormed(f *testing.F) {
	c := testCodec(f, crypto.FormatV2, crypto.FormatV1, crypto.FormatDARE)
	env := Envelope{ID: NewID()}
	v2, _ := c.Seal(nil, AccessToken, 0, &env, []byte("token"))
	f.Add(v2)
	f.Add([]byte("AQ"))
	f.Add(bytes.Repeat([]byte("_"), 130))
	f.Fuzz(func(t *testing.T, cookie []byte) {
		if c.WellFormed(cookie) {
			if _, err := strict.DecodeString(string(cookie)); err != nil {
				t.Fatalf("WellFormed(%q) but it does not decode: %v", cookie, err)
			}
		}
	})
}
