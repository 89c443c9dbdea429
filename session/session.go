// Package session is the envelope every token-handler cookie carries in
// cookie format v2: what the cookie is for (its [Purpose], and how many
// chunks it was split into), which login session it belongs to (an [ID]
// minted at login, the same in every cookie of the session), when that
// session started, when this cookie stops being valid, and what a
// back-channel logout looks for (the OpenID Provider's sid and the subject,
// hashed).
//
// The purpose is the v2 cookie's associated data, so a value sealed for one
// purpose never opens as another: it fails with the same [crypto.ErrOpen] as
// any damaged cookie. The rest is a fixed-size trailer inside the encrypted
// plaintext, after the value, so the value opens in place. crypto/FORMAT.md
// has the layout byte by byte.
//
// Cookies in formats v1 and DARE carry no envelope. A [Codec] reads them
// only when told to (during a migration, or in a deployment that must stay
// byte-compatible with the reference token handler) and then reports the
// format, so that callers check such values by their shape instead.
package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tokenhandler/tokenhandler/crypto"
)

// Purpose says what a cookie holds. Its value is part of every v2 cookie's
// associated data; the numbers never change meaning.
type Purpose uint8

// The purposes, in the order of the cookies' names: P-login, P-at, P-auth,
// P-id and P-csrf.
const (
	Login Purpose = iota + 1
	AccessToken
	RefreshToken
	IDToken
	CSRF
	purposeEnd
)

var purposeNames = [purposeEnd]string{"", "login", "at", "auth", "id", "csrf"}

// String returns the cookie-name suffix of p ("at", "csrf", …).
func (p Purpose) String() string {
	if p == 0 || p >= purposeEnd {
		return fmt.Sprintf("Purpose(%d)", uint8(p))
	}
	return purposeNames[p]
}

// ParsePurpose parses a cookie-name suffix: login, at, auth, id or csrf.
func ParsePurpose(s string) (Purpose, error) {
	for p := Login; p < purposeEnd; p++ {
		if purposeNames[p] == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("session: unknown purpose %q (want login, at, auth, id or csrf)", s)
}

// MaxChunks is the most chunks a cookie value may be split into; it equals
// browser.MaxChunks.
const MaxChunks = 8

// ID identifies one login session: 128 random bits minted when the login
// finishes. It may be copied and compared with ==.
type ID [16]byte

// NewID returns a fresh random ID.
func NewID() ID {
	var id ID
	rand.Read(id[:]) // never fails; it crashes the program instead
	return id
}

// Digest is a truncated SHA-256 of an identifier the OpenID Provider gave
// (see [HashSID] and [HashSub]); the envelope never holds the identifier
// itself.
type Digest [16]byte

// HashSID returns the digest of the OpenID Provider's session id sid
// (OpenID Connect Front-/Back-Channel Logout), scoped to issuer.
func HashSID(issuer, sid string) Digest { return digest("sid", issuer, sid) }

// HashSub returns the digest of the subject sub, scoped to issuer.
func HashSub(issuer, sub string) Digest { return digest("sub", issuer, sub) }

func digest(kind, issuer, v string) Digest {
	h := sha256.New()
	for _, s := range []string{"tokenhandler " + kind, issuer, v} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	var d Digest
	copy(d[:], h.Sum(nil))
	return d
}

// Envelope is what a v2 cookie says about its session. It is plain data and
// may be copied.
type Envelope struct {
	ID      ID
	Started int64  // Unix seconds: when the session's login finished
	Expires int64  // Unix seconds: the cookie is refused from this second on
	SID     Digest // HashSID of the ID token's sid; zero when it had none
	Sub     Digest // HashSub of the ID token's iss and sub; zero for P-login
}

// TrailerSize is the size of the envelope inside a v2 cookie's plaintext.
const TrailerSize = 16 + 8 + 8 + 16 + 16

// Live reports whether a cookie with this envelope may be used at Unix time
// now when sessions last at most maxLifetime seconds from their start: now
// is before Expires and before Started + maxLifetime. The second bound is
// the server's own, whatever a cookie was sealed with. (It is written as
// Started > now-maxLifetime so that no Started, however far in the past,
// overflows the subtraction into a live cookie.)
func (e *Envelope) Live(now, maxLifetime int64) bool {
	return now < e.Expires && e.Started > now-maxLifetime
}

func (e *Envelope) appendTrailer(dst []byte) []byte {
	dst = append(dst, e.ID[:]...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.Started))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.Expires))
	dst = append(dst, e.SID[:]...)
	return append(dst, e.Sub[:]...)
}

func (e *Envelope) readTrailer(t []byte) {
	_ = t[TrailerSize-1]
	copy(e.ID[:], t[0:16])
	e.Started = int64(binary.BigEndian.Uint64(t[16:24]))
	e.Expires = int64(binary.BigEndian.Uint64(t[24:32]))
	copy(e.SID[:], t[32:48])
	copy(e.Sub[:], t[48:64])
}

// adPrefix starts every v2 cookie's associated data; purpose and chunk
// count follow.
const adPrefix = "tokenhandler cookie v2\x00"

// ads[p][n] is the associated data of purpose p split into n chunks (0: not
// chunked). Built once so that Open passes the AEAD a slice that was never
// on a caller's stack and so allocates nothing.
var ads = appADs("")

// associatedData returns the associated data a v2 cookie of purpose p,
// split into chunks chunks (0 when not split), is sealed with when it
// belongs to the application named app (apps[i].name, issue #15):
// "tokenhandler cookie v2" ‖ 0x00 ‖ p ‖ chunks ‖ app. The name follows the
// chunk count, so that a cookie sealed for one application never opens for
// another, even under a key both share. The name "" adds nothing: a file
// without apps seals exactly what it sealed before.
func associatedData(app string, p Purpose, chunks int) []byte {
	return append(append([]byte(adPrefix), byte(p), byte(chunks)), app...)
}

// adTable is the associated data of every purpose and chunk count.
type adTable = [purposeEnd][MaxChunks + 1][]byte

// appADs builds the table of the application named app.
func appADs(app string) *adTable {
	var t adTable
	for p := Login; p < purposeEnd; p++ {
		for n := range MaxChunks + 1 {
			t[p][n] = associatedData(app, p, n)
		}
	}
	return &t
}

// formatBit maps the formats a Codec may accept to bits.
func formatBit(f crypto.Format) uint8 {
	switch f {
	case crypto.FormatV1:
		return 1
	case crypto.FormatV2:
		return 2
	case crypto.FormatDARE:
		return 4
	}
	return 0
}

// Codec seals cookie values in one format and opens those of the formats it
// accepts, with one key ring.
//
// A Codec is immutable after NewCodec and safe for concurrent use; use it by
// pointer.
type Codec struct {
	keys   *crypto.Keyring
	write  crypto.Format
	accept uint8
	app    string
	ads    *adTable // ads, or the application's (WithApp)
}

// NewCodec returns a Codec that seals in format write (the zero Format means
// v2, the token handler's default) and opens write and every format in
// accept. v2 cookies are always accepted: they carry their own binding.
func NewCodec(keys *crypto.Keyring, write crypto.Format, accept ...crypto.Format) (*Codec, error) {
	if keys == nil {
		return nil, errors.New("session: a codec needs a key ring")
	}
	if write == 0 {
		write = crypto.FormatV2
	}
	c := &Codec{keys: keys, write: write, accept: formatBit(write) | formatBit(crypto.FormatV2), ads: ads}
	if formatBit(write) == 0 {
		return nil, fmt.Errorf("session: cannot write format %s", write)
	}
	for _, f := range accept {
		if formatBit(f) == 0 {
			return nil, fmt.Errorf("session: cannot read format %s", f)
		}
		c.accept |= formatBit(f)
	}
	return c, nil
}

// WithApp returns a Codec like c whose v2 cookies belong to the
// application named app (associatedData): it seals them bound to app
// and opens no other application's. v1 and DARE cookies carry no binding
// and open as before. WithApp("") returns c.
func (c *Codec) WithApp(app string) *Codec {
	if app == c.app {
		return c
	}
	a := *c
	a.app, a.ads = app, appADs(app)
	return &a
}

// Writes returns the format the Codec seals in.
func (c *Codec) Writes() crypto.Format { return c.write }

// Keys returns the Codec's key ring.
func (c *Codec) Keys() *crypto.Keyring { return c.keys }

// SealedLen returns the length of the cookie value Seal makes of an n-byte
// value, so that a caller can decide how many chunks to split it into
// before sealing.
func (c *Codec) SealedLen(n int) int {
	switch c.write {
	case crypto.FormatV2:
		n += TrailerSize + gcmOverhead
	case crypto.FormatDARE:
		n += dareOverhead
	default:
		n += gcmOverhead
	}
	return base64.RawURLEncoding.EncodedLen(n)
}

// Seal seals value for purpose p with envelope env, to be split into chunks
// chunks (0 when it is not split), and appends the cookie value to dst. In
// formats v1 and DARE the purpose, chunk count and envelope are not
// recorded.
func (c *Codec) Seal(dst []byte, p Purpose, chunks int, env *Envelope, value []byte) ([]byte, error) {
	if c.write != crypto.FormatV2 {
		return c.keys.Seal(dst, value, c.write)
	}
	if p == 0 || p >= purposeEnd || chunks < 0 || chunks > MaxChunks {
		return dst, fmt.Errorf("session: internal error: purpose %d, chunks %d", p, chunks)
	}
	plain := make([]byte, 0, len(value)+TrailerSize)
	plain = env.appendTrailer(append(plain, value...))
	out, err := c.keys.SealAD(dst, plain, crypto.FormatV2, c.ads[p][chunks])
	clear(plain)
	return out, err
}

// Open opens cookie, the value of a cookie of purpose p reassembled from
// chunks chunks (0 when it was not split), appends the value to dst and
// returns it with the format it was sealed in. For a v2 cookie it fills env;
// for a v1 or DARE cookie (only when accepted) it zeroes env: such a value
// says nothing about its purpose or session, and the caller must check its
// shape. Every failure, a wrong purpose or chunk count included, returns dst
// unchanged and [crypto.ErrOpen].
//
// Open allocates nothing when dst has room for the value plus
// [TrailerSize] bytes; it is safe for concurrent use and never panics.
func (c *Codec) Open(dst, cookie []byte, p Purpose, chunks int, env *Envelope) ([]byte, crypto.Format, error) {
	if p == 0 || p >= purposeEnd || chunks < 0 || chunks > MaxChunks {
		return dst, 0, crypto.ErrOpen
	}
	out, f, err := c.keys.OpenAD(dst, cookie, c.ads[p][chunks])
	if err != nil {
		return dst, 0, err
	}
	if c.accept&formatBit(f) == 0 {
		clear(out[len(dst):])
		return dst, 0, crypto.ErrOpen
	}
	if f != crypto.FormatV2 {
		*env = Envelope{}
		return out, f, nil
	}
	n := len(out) - TrailerSize
	if n < len(dst) {
		clear(out[len(dst):])
		return dst, 0, crypto.ErrOpen
	}
	env.readTrailer(out[n:])
	clear(out[n:])
	return out[:n], f, nil
}
