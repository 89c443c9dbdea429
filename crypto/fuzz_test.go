package crypto

import (
	"bytes"
	"testing"

	"github.com/minio/sio"
)

// fuzzRing opens every vector in testdata.
func fuzzRing(t testing.TB) *Keyring {
	r, err := ParseKeyring(otherTestKey, specKey)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// FuzzOpen: no input panics, and whatever opens re-seals, in the same format,
// into a cookie that opens to the same plaintext.
func FuzzOpen(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add([]byte(v.Cookie))
	}
	f.Add([]byte(""))
	f.Add([]byte("AQ"))
	f.Add([]byte(specCookie + "="))
	ring := fuzzRing(f)
	f.Fuzz(func(t *testing.T, cookie []byte) {
		plain, err := ring.Open(nil, cookie)
		if err != nil {
			if err != ErrOpen || plain != nil {
				t.Fatalf("Open failed with %v and %d bytes, want ErrOpen and dst unchanged", err, len(plain))
			}
			return
		}
		raw, err := b64.DecodeString(string(cookie))
		if err != nil {
			t.Fatalf("Open accepted a cookie that strict base64url refuses: %v", err)
		}
		if !bytes.Equal(b64.AppendEncode(nil, raw), cookie) {
			t.Fatal("Open accepted a non-canonical encoding")
		}
		resealed, err := ring.Seal(nil, plain, Format(raw[0]))
		if err != nil {
			t.Fatalf("re-seal: %v", err)
		}
		again, err := ring.Open(nil, resealed)
		if err != nil || !bytes.Equal(again, plain) {
			t.Fatalf("re-sealed cookie opens to %d bytes, %v; want the same %d bytes", len(again), err, len(plain))
		}
	})
}

// FuzzDAREDifferential: our allocation-free DARE decoder and sio.DecryptBuffer,
// the format's reference implementation, make the same decision with the same
// plaintext on every input. The one designed difference: a cookie is exactly
// one package, so a valid stream of several packages, which sio accepts, we
// refuse.
//
// A random input almost never carries a valid tag, so with seal set the input
// is a plaintext that sio seals first (with suite's low bit as the cipher
// suite), and flip, when non-zero, XORs one byte of the package; that walks the
// accepting paths too.
func FuzzDAREDifferential(f *testing.F) {
	for _, v := range loadVectors(f) {
		if v.Suite != nil {
			raw, _ := b64.DecodeString(v.Cookie)
			f.Add(raw, false, byte(0), uint16(0), byte(0))
		}
	}
	f.Add([]byte{0x20}, false, byte(0), uint16(0), byte(0))
	f.Add(make([]byte, dareHeaderSize+tagSize+1), false, byte(0), uint16(0), byte(0))
	f.Add([]byte("a token"), true, byte(0), uint16(0), byte(0))
	f.Add([]byte("a token"), true, byte(1), uint16(3), byte(0x80))
	ring, err := ParseKeyring(otherTestKey)
	if err != nil {
		f.Fatal(err)
	}
	key := ring.keys[0].key
	f.Fuzz(func(t *testing.T, raw []byte, seal bool, suite byte, at uint16, flip byte) {
		if seal {
			var err error
			nonce := bytes.Repeat([]byte{suite}, nonceSize)
			if raw, err = sealDARE(key, raw, bytes.NewReader(nonce), []byte{suite & 1}); err != nil {
				return // empty or oversized plaintext
			}
			raw[int(at)%len(raw)] ^= flip
		}
		ours, ourErr := ring.openDARE(nil, raw)
		if ourErr != nil && ourErr != ErrOpen {
			t.Fatalf("openDARE error %v, want ErrOpen", ourErr)
		}
		viaOpen, openErr := ring.Open(nil, b64.AppendEncode(nil, raw))
		if len(raw) > 0 && raw[0] == byte(FormatDARE) && ((openErr == nil) != (ourErr == nil) || !bytes.Equal(viaOpen, ours)) {
			t.Fatalf("Open and openDARE disagree: %v vs %v", openErr, ourErr)
		}

		theirs, theirErr := sioDecrypt(key, raw)
		switch {
		case ourErr == nil && theirErr != nil:
			t.Fatalf("we open what sio refuses (%v)", theirErr)
		case ourErr == nil && !bytes.Equal(ours, theirs):
			t.Fatal("we and sio open to different plaintexts")
		case ourErr != nil && theirErr == nil && isOnePackage(raw):
			t.Fatal("sio opens a single package that we refuse")
		}
	})
}

// isOnePackage reports whether raw's length is exactly that of the package
// its first header describes.
func isOnePackage(raw []byte) bool {
	if len(raw) < dareHeaderSize {
		return false
	}
	n := int(raw[2]) | int(raw[3])<<8 + 1
	return len(raw) == dareHeaderSize+n+tagSize
}

// sioDecrypt runs sio.DecryptBuffer on raw. sio slices a header before it
// checks the length (it panics on inputs shorter than one header), so those
// count as refused without asking it.
func sioDecrypt(k Key, raw []byte) ([]byte, error) {
	if len(raw) < dareHeaderSize {
		return nil, ErrOpen
	}
	return sio.DecryptBuffer(nil, raw[:len(raw):len(raw)], sio.Config{
		Key:        k.b[:],
		MinVersion: sio.Version20,
		MaxVersion: sio.Version20,
	})
}

// TestDAREMultiPackageRefused pins the designed difference from sio: a valid
// two-package stream opens in sio and not in ours.
func TestDAREMultiPackageRefused(t *testing.T) {
	ring := newTestRing(t, 1)
	key := ring.keys[0].key
	var stream bytes.Buffer
	if _, err := sio.Encrypt(&stream, bytes.NewReader(make([]byte, MaxDAREPlaintext+10)), sio.Config{Key: key.b[:], MinVersion: sio.Version20}); err != nil {
		t.Fatal(err)
	}
	if _, err := sioDecrypt(key, stream.Bytes()); err != nil {
		t.Fatalf("sio refuses its own stream: %v", err)
	}
	if _, err := ring.Open(nil, b64.AppendEncode(nil, stream.Bytes())); err != ErrOpen {
		t.Fatalf("Open of a two-package stream = %v, want ErrOpen", err)
	}
}
