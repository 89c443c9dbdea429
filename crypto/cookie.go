package crypto

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Format names a cookie's binary layout; its value is the layout's first byte.
type Format byte

const (
	// FormatV1 is 0x01 ‖ nonce(12) ‖ AES-256-GCM ciphertext ‖ tag(16), the
	// Curity-compatible layout. The zero Format seals as FormatV1.
	FormatV1 Format = 0x01
	// FormatV2 is 0x02 ‖ nonce(12) ‖ AES-256-GCM ciphertext ‖ tag(16) with
	// associated data the caller gives: the session envelope's format
	// (package session) binds every cookie to its purpose that way. It
	// cannot be sealed without associated data.
	FormatV2 Format = 0x02
	// FormatDARE is one MinIO DARE 2.0 package. It holds at most
	// [MaxDAREPlaintext] bytes and at least one.
	FormatDARE Format = 0x20
)

// MaxDAREPlaintext is the most one DARE 2.0 package, and so one DARE cookie,
// can hold.
const MaxDAREPlaintext = 1 << 16

// ParseFormat parses the configuration names "v1" and "dare".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "v1":
		return FormatV1, nil
	case "v2":
		return FormatV2, nil
	case "dare":
		return FormatDARE, nil
	}
	return 0, fmt.Errorf("crypto: unknown cookie format %q (want v2, v1 or dare)", s)
}

// String returns the configuration name of f.
func (f Format) String() string {
	switch f {
	case FormatV1, 0:
		return "v1"
	case FormatV2:
		return "v2"
	case FormatDARE:
		return "dare"
	}
	return fmt.Sprintf("Format(%#02x)", byte(f))
}

// ErrOpen is the one error Open returns, whatever was wrong with the cookie:
// its encoding, length, format, cipher suite, key or tag. It says nothing more
// on purpose.
var ErrOpen = errors.New("crypto: cannot open cookie")

const (
	v1Overhead = 1 + nonceSize + tagSize
	nonceSize  = 12
	tagSize    = 16
)

// b64 is strict unpadded base64url: '=' is outside its alphabet and non-zero
// trailing bits are refused. The standard decoder also skips '\r' and '\n';
// Open refuses those before decoding.
var b64 = base64.RawURLEncoding.Strict()

// Seal encrypts plaintext with the ring's first key in format f and appends
// the cookie value (unpadded base64url) to dst. The zero Format means
// [FormatV1]. [FormatV2] needs associated data: use [Keyring.SealAD]. Seal is
// safe for concurrent use.
func (r *Keyring) Seal(dst, plaintext []byte, f Format) ([]byte, error) {
	return r.SealAD(dst, plaintext, f, nil)
}

// errNoAD is SealAD's error for a FormatV2 cookie without associated data.
var errNoAD = errors.New("crypto: a v2 cookie needs associated data")

// SealAD is Seal with associated data: ad is authenticated, not encrypted,
// and not stored; Open must be given the same bytes. Only [FormatV2] takes
// associated data, and it requires some; the other formats refuse it.
func (r *Keyring) SealAD(dst, plaintext []byte, f Format, ad []byte) ([]byte, error) {
	var raw []byte
	var err error
	switch f {
	case FormatV1, 0, FormatDARE:
		if len(ad) > 0 {
			return dst, fmt.Errorf("crypto: format %s takes no associated data", f)
		}
		if f == FormatDARE {
			raw, err = r.sealDARE(plaintext)
		} else {
			raw, err = r.sealGCM(FormatV1, plaintext, nil)
		}
	case FormatV2:
		if len(ad) == 0 {
			return dst, errNoAD
		}
		raw, err = r.sealGCM(FormatV2, plaintext, ad)
	default:
		return dst, fmt.Errorf("crypto: cannot seal in unknown format %#02x", byte(f))
	}
	if err != nil {
		return dst, err
	}
	return b64.AppendEncode(dst, raw), nil
}

// sealGCM writes the v1 and v2 layout, which differ only in the version
// byte and in v2's associated data.
func (r *Keyring) sealGCM(f Format, plaintext, ad []byte) ([]byte, error) {
	raw := make([]byte, 1+nonceSize, v1Overhead+len(plaintext))
	raw[0] = byte(f)
	if _, err := io.ReadFull(r.rand, raw[1:]); err != nil {
		return nil, fmt.Errorf("crypto: reading a nonce: %w", err)
	}
	return r.keys[0].gcm.Seal(raw, raw[1:], plaintext, ad), nil
}

// Open decodes and decrypts a cookie value sealed by any key of the ring in
// format v1 or DARE, appends the plaintext to dst and returns the extended
// slice. On failure it returns dst unchanged and [ErrOpen]. A v2 cookie opens
// only with its associated data, through [Keyring.OpenAD].
//
// Open allocates nothing when cap(dst)-len(dst) is at least the plaintext's
// length (len(cookie)*3/4 always suffices) and the decoded cookie is at most
// [MaxPooled] bytes. It is safe for concurrent use and never panics.
func (r *Keyring) Open(dst, cookie []byte) ([]byte, error) {
	out, _, err := r.OpenAD(dst, cookie, nil)
	return out, err
}

// OpenAD is Open for every format, reporting which one opened. ad is the
// associated data a [FormatV2] cookie was sealed with; it is ignored for v1
// and DARE cookies, which carry none, so a caller that needs the binding ad
// expresses must check the returned format. It allocates no more than Open;
// ad must not escape the caller's control (a package-level table, say) for
// the call to stay allocation-free.
func (r *Keyring) OpenAD(dst, cookie, ad []byte) ([]byte, Format, error) {
	// The base64 package skips CR and LF; a cookie containing them is not
	// strict base64url.
	if len(cookie) == 0 || bytes.IndexByte(cookie, '\n') >= 0 || bytes.IndexByte(cookie, '\r') >= 0 {
		return dst, 0, ErrOpen
	}
	buf := acquire(b64.DecodedLen(len(cookie)))
	defer release(buf)
	n, err := b64.Decode(*buf, cookie)
	if err != nil {
		return dst, 0, ErrOpen
	}
	return r.open(dst, (*buf)[:n], ad)
}

// open dispatches on the format byte. raw is the decoded cookie.
func (r *Keyring) open(dst, raw, ad []byte) ([]byte, Format, error) {
	if len(raw) == 0 {
		return dst, 0, ErrOpen
	}
	f := Format(raw[0])
	switch f {
	case FormatV1, FormatV2:
		if len(raw) < v1Overhead {
			return dst, 0, ErrOpen
		}
		if f == FormatV1 {
			ad = nil
		} else if len(ad) == 0 {
			return dst, 0, ErrOpen
		}
		nonce, ciphertext := raw[1:1+nonceSize], raw[1+nonceSize:]
		for i := range r.keys {
			if out, err := r.keys[i].gcm.Open(dst, nonce, ciphertext, ad); err == nil {
				return out, f, nil
			}
		}
		return dst, 0, ErrOpen
	case FormatDARE:
		out, err := r.openDARE(dst, raw)
		if err != nil {
			return dst, 0, err
		}
		return out, f, nil
	}
	return dst, 0, ErrOpen
}

// MaxPooled is the largest decoded cookie whose scratch buffer Open returns
// to its pool; larger cookies still open, with one allocation each. It is
// bigger than any cookie a browser sends, chunked cookies reassembled
// included, and small enough that the pool cannot pin much memory
// (golang/go#23199).
const MaxPooled = 64 << 10

var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// acquire returns a buffer of length n; release it when done.
func acquire(n int) *[]byte {
	if n > MaxPooled {
		b := make([]byte, n)
		return &b
	}
	p := scratch.Get().(*[]byte)
	if cap(*p) < n {
		*p = make([]byte, n, min(max(n, 2*cap(*p)), MaxPooled))
	}
	*p = (*p)[:n]
	return p
}

func release(p *[]byte) {
	if cap(*p) > MaxPooled {
		return // a one-off for an oversized cookie; let the GC have it
	}
	*p = (*p)[:0]
	scratch.Put(p)
}
