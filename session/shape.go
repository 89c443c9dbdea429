package session

import (
	"encoding/base64"

	"github.com/tokenhandler/tokenhandler/crypto"
)

// WellFormed reports whether cookie, a value that did not open, has the
// shape of one the Codec could have sealed: strict unpadded base64url
// (crypto/FORMAT.md), a first byte naming a format the Codec reads, and at
// least that format's overhead (the v2 trailer included). Such a value most
// likely failed its tag because no configured key sealed it: the agent and
// the proxy do not share their keys, or the key that sealed it has left the
// ring. It may also be a genuine cookie put in another cookie's place, or a
// well-formed forgery: Open's one opaque error cannot tell, and WellFormed
// does not try; it says only that the value is not garbage.
//
// WellFormed looks at the encoding and the first bytes only, decrypts
// nothing, allocates nothing and never panics. It is safe for concurrent
// use.
func (c *Codec) WellFormed(cookie []byte) bool {
	if len(cookie) < 4 || len(cookie)%4 == 1 {
		return false
	}
	for _, b := range cookie {
		if !(b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	// The last group's spare bits must be zero, as Open's strict decoder
	// wants; the first group holds the format byte.
	var buf [3]byte
	if tail := len(cookie) % 4; tail != 0 {
		if _, err := strict.Decode(buf[:], cookie[len(cookie)-tail:]); err != nil {
			return false
		}
	}
	if _, err := strict.Decode(buf[:], cookie[:4]); err != nil {
		return false
	}
	f := crypto.Format(buf[0])
	if c.accept&formatBit(f) == 0 {
		return false
	}
	n := strict.DecodedLen(len(cookie))
	switch f {
	case crypto.FormatV2:
		return n >= gcmOverhead+TrailerSize
	case crypto.FormatDARE:
		return n >= dareOverhead+1
	}
	return n >= gcmOverhead
}

var strict = base64.RawURLEncoding.Strict()

// The bytes a format adds to the value it seals (crypto/FORMAT.md): v1 and
// v2 a version byte, a 12-byte nonce and a 16-byte tag; DARE a 16-byte
// header and a 16-byte tag.
const (
	gcmOverhead  = 1 + 12 + 16
	dareOverhead = 16 + 16
)
