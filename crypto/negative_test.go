package crypto

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// mustFail asserts that cookie does not open and that the failure is the one
// opaque error, with dst left as it was.
func mustFail(t *testing.T, ring *Keyring, what string, cookie []byte) {
	t.Helper()
	dst := []byte("prefix")
	got, err := ring.Open(dst, cookie)
	if !errors.Is(err, ErrOpen) || err != ErrOpen {
		t.Fatalf("%s: Open error = %v, want ErrOpen", what, err)
	}
	if string(got) != "prefix" {
		t.Fatalf("%s: Open changed dst to %q", what, got)
	}
}

// validCookies returns one valid cookie per format and DARE suite, with the
// ring that opens them all.
func validCookies(t *testing.T) (*Keyring, map[string][]byte) {
	t.Helper()
	ring := newTestRing(t, 2)
	plain := bytes.Repeat([]byte("token."), 20)
	out := map[string][]byte{}
	v1, err := ring.Seal(nil, plain, FormatV1)
	if err != nil {
		t.Fatal(err)
	}
	out["v1"] = v1
	for name, suite := range map[string]byte{"dare-aes": dareAESGCM, "dare-chacha": dareChaCha} {
		raw, err := sealDARE(ring.keys[0].key, plain, ring.rand, []byte{suite})
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b64.AppendEncode(nil, raw)
	}
	for name, c := range out {
		if _, err := ring.Open(nil, c); err != nil {
			t.Fatalf("%s: the unmodified cookie does not open: %v", name, err)
		}
	}
	return ring, out
}

func TestOpenRejectsEveryFlippedBit(t *testing.T) {
	ring, cookies := validCookies(t)
	for name, cookie := range cookies {
		raw, _ := b64.DecodeString(string(cookie))
		for i := range raw {
			for bit := range 8 {
				mut := bytes.Clone(raw)
				mut[i] ^= 1 << bit
				mustFail(t, ring, name+": decoded byte "+strconv.Itoa(i)+" bit "+strconv.Itoa(bit), b64.AppendEncode(nil, mut))
			}
		}
		// Every character swapped for another of the alphabet; the last
		// character's spare low bits make some swaps non-canonical encodings,
		// which the strict decoder refuses as well.
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		for i := range cookie {
			mut := bytes.Clone(cookie)
			mut[i] = alphabet[(strings.IndexByte(alphabet, cookie[i])+1)%64]
			mustFail(t, ring, name+": character "+strconv.Itoa(i)+" changed", mut)
		}
	}
}

func TestOpenRejectsEveryTruncation(t *testing.T) {
	ring, cookies := validCookies(t)
	for name, cookie := range cookies {
		for n := range len(cookie) {
			mustFail(t, ring, name+": cookie cut to "+strconv.Itoa(n)+" characters", cookie[:n])
		}
		raw, _ := b64.DecodeString(string(cookie))
		for n := range len(raw) {
			mustFail(t, ring, name+": decoded cookie cut to "+strconv.Itoa(n)+" bytes", b64.AppendEncode(nil, raw[:n]))
		}
		// One byte too many is as wrong as one too few.
		mustFail(t, ring, name+": a byte appended", b64.AppendEncode(nil, append(raw, 0)))
	}
}

func TestOpenRejectsVersionBytes(t *testing.T) {
	ring, cookies := validCookies(t)
	for name, cookie := range cookies {
		raw, _ := b64.DecodeString(string(cookie))
		for v := range 256 {
			if v == int(raw[0]) {
				continue
			}
			mut := bytes.Clone(raw)
			mut[0] = byte(v)
			mustFail(t, ring, name+": version byte "+strconv.Itoa(v), b64.AppendEncode(nil, mut))
		}
	}
}

func TestOpenRejectsMalformed(t *testing.T) {
	ring, cookies := validCookies(t)
	v1 := string(cookies["v1"])
	dare := string(cookies["dare-aes"])
	raw, _ := b64.DecodeString(dare)
	notFinal := bytes.Clone(raw)
	notFinal[4] &^= dareFinal
	badSuite := bytes.Clone(raw)
	badSuite[1] = 2
	suiteSwapped := bytes.Clone(raw)
	suiteSwapped[1] = dareChaCha
	tests := []struct {
		name   string
		cookie string
	}{
		{"empty", ""},
		{"one character", "A"},
		{"padded with =", v1 + "="},
		{"padded with ==", v1 + "=="},
		{"padding inside", v1[:8] + "=" + v1[9:]},
		{"standard alphabet +", strings.ReplaceAll(strings.ReplaceAll(v1, "-", "+"), "_", "/") + "+/"},
		{"space inside", v1[:10] + " " + v1[10:]},
		{"LF inside", v1[:10] + "\n" + v1[10:]},
		{"CR inside", v1[:10] + "\r" + v1[10:]},
		{"trailing LF", v1 + "\n"},
		{"dot", v1[:10] + "." + v1[11:]},
		{"NUL", v1[:10] + "\x00" + v1[11:]},
		{"non-ASCII", v1[:10] + "\xc3\xa9" + v1[12:]},
		{"quoted", `"` + v1 + `"`},
		{"percent-encoded", v1[:10] + "%41" + v1[13:]},
		{"dare not final", b64.EncodeToString(notFinal)},
		{"dare unknown suite", b64.EncodeToString(badSuite)},
		{"dare wrong suite", b64.EncodeToString(suiteSwapped)},
		{"two dare packages", dare + dare},
		{"v1 twice", v1 + v1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { mustFail(t, ring, tt.name, []byte(tt.cookie)) })
	}
}

func TestOpenRejectsWrongKey(t *testing.T) {
	_, cookies := validCookies(t)
	other := newTestRing(t, 3)
	for name, cookie := range cookies {
		mustFail(t, other, name, cookie)
	}
	spec, err := ParseKeyring(otherTestKey)
	if err != nil {
		t.Fatal(err)
	}
	mustFail(t, spec, "contract test vector with another key", []byte(specCookie))
}
