package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"
)

// This file is a second implementation of cookie format v2, written from
// crypto/FORMAT.md alone and sharing no code with the package: it builds the
// associated data, the trailer, the base64url text and the digests by hand,
// and uses crypto/cipher directly. The known-answer vectors are made with it
// (with fixed nonces), and FuzzOpenV2Differential holds Codec.Open to it.

// TEST KEYS, public on purpose: never use one in a deployment. The first is
// the contract §3 vector's key, the second counts up.
const (
	testKeyA = "7b99279ab87533d3c238db874a842a91ee26a76027f3c03c317504963d2c9926"
	testKeyB = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
)

// refLabel starts the associated data (FORMAT.md, "v2").
const refLabel = "tokenhandler cookie v2"

// refAD is the associated data of a v2 cookie: label ‖ 0x00 ‖ purpose ‖ chunks.
func refAD(purpose, chunks byte) []byte {
	ad := []byte(refLabel)
	return append(ad, 0x00, purpose, chunks)
}

// refEnvelope is the trailer's fields, as FORMAT.md names them.
type refEnvelope struct {
	id               [16]byte
	started, expires int64
	sid, sub         [16]byte
}

func (e refEnvelope) trailer() []byte {
	t := make([]byte, 64)
	copy(t[0:16], e.id[:])
	binary.BigEndian.PutUint64(t[16:24], uint64(e.started))
	binary.BigEndian.PutUint64(t[24:32], uint64(e.expires))
	copy(t[32:48], e.sid[:])
	copy(t[48:64], e.sub[:])
	return t
}

func (e refEnvelope) envelope() Envelope {
	return Envelope{ID: e.id, Started: e.started, Expires: e.expires, SID: e.sid, Sub: e.sub}
}

func refGCM(t testing.TB, keyHex string) cipher.AEAD {
	t.Helper()
	key, err := hex.DecodeString(keyHex)
	if err != nil || len(key) != 32 {
		t.Fatalf("bad test key: %v", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return gcm
}

// refSealRaw returns the decoded v2 cookie: 0x02 ‖ nonce ‖ GCM(value ‖ trailer) ‖ tag.
func refSealRaw(gcm cipher.AEAD, nonce []byte, purpose, chunks byte, env refEnvelope, value []byte) []byte {
	plain := append(append([]byte{}, value...), env.trailer()...)
	raw := append([]byte{0x02}, nonce...)
	return gcm.Seal(raw, nonce, plain, refAD(purpose, chunks))
}

const refAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// refEncode is unpadded base64url (RFC 4648 §5), six bits at a time.
func refEncode(raw []byte) string {
	out := make([]byte, 0, (len(raw)*8+5)/6)
	var acc uint32
	bits := 0
	for _, b := range raw {
		acc = acc<<8 | uint32(b)
		bits += 8
		for bits >= 6 {
			bits -= 6
			out = append(out, refAlphabet[acc>>bits&63])
		}
	}
	if bits > 0 {
		out = append(out, refAlphabet[acc<<(6-bits)&63])
	}
	return string(out)
}

// refDecode is strict unpadded base64url: only the 64 characters of the
// alphabet, no length of 1 mod 4, and the last character's spare bits zero.
func refDecode(s []byte) ([]byte, bool) {
	if len(s)%4 == 1 {
		return nil, false
	}
	out := make([]byte, 0, len(s)*6/8)
	var acc uint32
	bits := 0
	for _, c := range s {
		v := -1
		for i := range len(refAlphabet) {
			if refAlphabet[i] == c {
				v = i
				break
			}
		}
		if v < 0 {
			return nil, false
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
		}
	}
	if acc&(1<<bits-1) != 0 { // spare bits of the last character
		return nil, false
	}
	return out, true
}

// refOpen opens a v2 cookie of purpose p and chunk count chunks with the
// first of gcms that authenticates it, step by step as FORMAT.md's
// "Opening" says.
func refOpen(gcms []cipher.AEAD, cookie []byte, p, chunks int) ([]byte, Envelope, bool) {
	if p < 1 || p > 5 || chunks < 0 || chunks > 8 {
		return nil, Envelope{}, false
	}
	raw, ok := refDecode(cookie)
	if !ok || len(raw) < 1+12+64+16 || raw[0] != 0x02 {
		return nil, Envelope{}, false
	}
	for _, gcm := range gcms {
		plain, err := gcm.Open(nil, raw[1:13], raw[13:], refAD(byte(p), byte(chunks)))
		if err != nil {
			continue
		}
		n := len(plain) - 64
		tr := plain[n:]
		var e Envelope
		copy(e.ID[:], tr[0:16])
		e.Started = int64(binary.BigEndian.Uint64(tr[16:24]))
		e.Expires = int64(binary.BigEndian.Uint64(tr[24:32]))
		copy(e.SID[:], tr[32:48])
		copy(e.Sub[:], tr[48:64])
		return plain[:n], e, true
	}
	return nil, Envelope{}, false
}

// refDigest is FORMAT.md's H(kind, issuer, v): the first 16 bytes of
// SHA-256 over three length-prefixed strings.
func refDigest(kind, issuer, v string) [16]byte {
	var msg []byte
	for _, s := range []string{"tokenhandler " + kind, issuer, v} {
		msg = binary.BigEndian.AppendUint32(msg, uint32(len(s)))
		msg = append(msg, s...)
	}
	sum := sha256.Sum256(msg)
	return [16]byte(sum[:16])
}

func TestReferenceBase64(t *testing.T) {
	for n := range 40 {
		raw := make([]byte, n)
		for i := range raw {
			raw[i] = byte(i*53 + n)
		}
		enc := refEncode(raw)
		if want := b64url(raw); enc != want {
			t.Fatalf("%d bytes: refEncode %q, base64 %q", n, enc, want)
		}
		dec, ok := refDecode([]byte(enc))
		if !ok || string(dec) != string(raw) {
			t.Fatalf("%d bytes: refDecode failed", n)
		}
	}
	for _, bad := range []string{"A", "AB=", "AB\n", "A+", "AB/C", "AB C", "AF", "AAB"} {
		if _, ok := refDecode([]byte(bad)); ok {
			t.Errorf("refDecode accepted %q", bad)
		}
	}
}
