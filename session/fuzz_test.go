package session

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/tokenhandler/tokenhandler/crypto"
)

// FuzzOpenV2Differential holds Codec.Open to the reference decoder
// (reference_test.go, written from FORMAT.md): for every input, purpose and
// chunk count both accept or both refuse, and when they accept they give the
// same value and the same envelope. The codec reads v2 only, so a valid v1 or
// DARE cookie must be refused as the reference refuses it.
//
// A random input almost never carries a valid tag, so with seal set the
// input is a value that the reference encoder seals first (as purpose sp in
// sn chunks, with the envelope fields given, under the first or second key),
// and flip, when non-zero, XORs one byte of the result at at; opening as op
// in on chunks then walks the accepting paths and the purpose checks.
func FuzzOpenV2Differential(f *testing.F) {
	for _, v := range loadVectors(f) {
		p, _ := ParsePurpose(v.Purpose)
		f.Add([]byte(v.Cookie), false, byte(0), int8(0), byte(p), int8(v.Chunks), uint16(0), byte(0), int64(0), int64(0))
		f.Add([]byte(v.Value), true, byte(p), int8(v.Chunks), byte(p), int8(v.Chunks), uint16(0), byte(0), v.Envelope.Started, v.Envelope.Expires)
	}
	f.Add([]byte("a token"), true, byte(AccessToken), int8(0), byte(IDToken), int8(0), uint16(0), byte(0), int64(1), int64(2))
	f.Add([]byte("a token"), true, byte(CSRF), int8(2), byte(CSRF), int8(3), uint16(0), byte(0), int64(1), int64(2))
	f.Add([]byte("a token"), true, byte(RefreshToken), int8(0), byte(RefreshToken), int8(0), uint16(0), byte(0x80), int64(-1), int64(1<<62))
	f.Add([]byte("a token"), true, byte(0), int8(0), byte(0), int8(0), uint16(5), byte(1), int64(0), int64(0))
	f.Add([]byte(""), true, byte(Login), int8(-1), byte(Login), int8(-1), uint16(0), byte(0), int64(0), int64(0))
	ring, err := crypto.ParseKeyring(testKeyA, testKeyB)
	if err != nil {
		f.Fatal(err)
	}
	for _, format := range []crypto.Format{crypto.FormatV1, crypto.FormatDARE} {
		legacy, err := ring.Seal(nil, bytes.Repeat([]byte("v"), 70), format)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(legacy, false, byte(0), int8(0), byte(AccessToken), int8(0), uint16(0), byte(0), int64(0), int64(0))
	}
	f.Add([]byte("Ag"), false, byte(0), int8(0), byte(AccessToken), int8(0), uint16(0), byte(0), int64(0), int64(0))
	codec, err := NewCodec(ring, crypto.FormatV2)
	if err != nil {
		f.Fatal(err)
	}
	gcms := refGCMs(f, testKeyA, testKeyB)
	f.Fuzz(func(t *testing.T, data []byte, seal bool, sp byte, sn int8, op byte, on int8, at uint16, flip byte, started, expires int64) {
		cookie := data
		if seal {
			env := refEnvelope{started: started, expires: expires, sid: refDigest("sid", "iss", string(data)), sub: refDigest("sub", "iss", string(data))}
			binary.BigEndian.PutUint16(env.id[:], at)
			env.id[15] = flip
			nonce := bytes.Repeat([]byte{flip}, 12)
			raw := refSealRaw(gcms[flip&1], nonce, sp, byte(sn), env, data)
			raw[int(at)%len(raw)] ^= flip
			cookie = []byte(refEncode(raw))
		}
		wantValue, wantEnv, wantOK := refOpen(gcms, cookie, int(op), int(on))

		dst := make([]byte, 4, 4+len(cookie))
		copy(dst, "dst:")
		env := Envelope{Started: 7}
		out, format, err := codec.Open(dst, cookie, Purpose(op), int(on), &env)
		switch {
		case err != nil && err != crypto.ErrOpen:
			t.Fatalf("Open error %v, want ErrOpen", err)
		case (err == nil) != wantOK:
			t.Fatalf("Open accepts: %v, the reference: %v", err == nil, wantOK)
		case err != nil && (string(out) != "dst:" || format != 0 || env != (Envelope{Started: 7})):
			t.Fatalf("a refused cookie changed dst (%q), the format (%v) or the envelope (%+v)", out, format, env)
		case err == nil && (format != crypto.FormatV2 || string(out[:4]) != "dst:" || !bytes.Equal(out[4:], wantValue) || env != wantEnv):
			t.Fatalf("Open gives %v, %d value bytes, %+v; the reference %d bytes, %+v", format, len(out)-4, env, len(wantValue), wantEnv)
		}
	})
}
