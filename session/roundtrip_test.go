package session

import (
	"bytes"
	"testing"

	"github.com/tokenhandler/tokenhandler/crypto"
)

// TestRoundTripSizes seals and opens values of the sizes where something
// could go wrong: empty, one byte, every size around the first base64
// groups (value and trailer together cross them at every residue mod 3),
// around 4 KiB and around 64 KiB (the largest pooled scratch buffer). Each
// cookie has exactly the length SealedLen promised, opens with the
// reference decoder to the same value and envelope, and opens with Codec
// appended to what dst held.
func TestRoundTripSizes(t *testing.T) {
	c := vectorCodec(t, testKeyA, testKeyB)
	gcms := refGCMs(t, testKeyA, testKeyB)
	value := make([]byte, 70_000)
	for i := range value {
		value[i] = byte(i*7 + i>>8)
	}
	var sizes []int
	for n := range 40 {
		sizes = append(sizes, n)
	}
	for _, b := range []int{1 << 12, 1<<16 - 93, 1 << 16} { // 1<<16-93: the raw cookie is exactly 64 KiB
		for n := b - 4; n <= b+4; n++ {
			sizes = append(sizes, n)
		}
	}
	env := Envelope{ID: NewID(), Started: 1_700_000_000, Expires: 1_700_043_200, SID: HashSID("i", "s"), Sub: HashSub("i", "u")}
	for _, n := range sizes {
		for _, p := range []Purpose{AccessToken, IDToken} {
			chunks := n % (MaxChunks + 1)
			cookie, err := c.Seal([]byte("keep:"), p, chunks, &env, value[:n])
			if err != nil {
				t.Fatalf("size %d: Seal: %v", n, err)
			}
			if string(cookie[:5]) != "keep:" {
				t.Fatalf("size %d: Seal did not append to dst", n)
			}
			cookie = cookie[5:]
			if len(cookie) != c.SealedLen(n) {
				t.Fatalf("size %d: %d characters, SealedLen says %d", n, len(cookie), c.SealedLen(n))
			}
			if cookie[0] != 'A' || cookie[1] < 'g' || cookie[1] > 'v' {
				t.Fatalf("size %d: a v2 cookie starts with 0x02 (\"Ag\"…\"Av\"), got %q", n, cookie[:2])
			}
			got, gotEnv, ok := refOpen(gcms, cookie, int(p), chunks)
			if !ok || !bytes.Equal(got, value[:n]) || gotEnv != env {
				t.Fatalf("size %d: the reference decoder opens %v, %d bytes, %+v", n, ok, len(got), gotEnv)
			}
			dst := make([]byte, 3, 3+n+TrailerSize)
			copy(dst, "dst")
			var e Envelope
			out, f, err := c.Open(dst, cookie, p, chunks, &e)
			if err != nil || f != crypto.FormatV2 || !bytes.Equal(out[3:], value[:n]) || string(out[:3]) != "dst" || e != env {
				t.Fatalf("size %d: Open = %d bytes, %v, %v, %+v", n, len(out), f, err, e)
			}
			if bytes.Count(dst[len(out):cap(dst)], []byte{0}) != cap(dst)-len(out) {
				t.Fatalf("size %d: Open left the trailer in dst's spare capacity", n)
			}
		}
	}
}

// TestSealNeverRepeatsNonce: two seals of the same value, purpose and
// envelope differ (fresh random nonce each time).
func TestSealNeverRepeatsNonce(t *testing.T) {
	c := vectorCodec(t, testKeyA)
	env := Envelope{ID: NewID(), Expires: 1}
	a, _ := c.Seal(nil, CSRF, 0, &env, []byte("same"))
	b, _ := c.Seal(nil, CSRF, 0, &env, []byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals gave the same cookie")
	}
}

func TestSealRefusesBadPurposeAndChunks(t *testing.T) {
	c := vectorCodec(t, testKeyA)
	for _, tc := range []struct {
		p      Purpose
		chunks int
	}{{0, 0}, {purposeEnd, 0}, {255, 0}, {AccessToken, -1}, {AccessToken, MaxChunks + 1}} {
		if out, err := c.Seal([]byte("d"), tc.p, tc.chunks, &Envelope{}, []byte("v")); err == nil || string(out) != "d" {
			t.Errorf("Seal(%d, %d) = %q, %v; want an error and dst unchanged", tc.p, tc.chunks, out, err)
		}
	}
}
