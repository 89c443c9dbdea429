package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the length of a key in bytes; a key is written as 2*KeySize hex
// characters.
const KeySize = 32

// Key is one 256-bit cookie encryption key.
//
// A Key may be copied. It cannot be compared with == (compare keys with
// [Key.Equal], which runs in constant time), and it never prints its bytes:
// every fmt verb, JSON and text marshalling show a placeholder.
type Key struct {
	_ [0]func() // makes Key incomparable with ==
	b [KeySize]byte
}

const redacted = "[REDACTED]"

// ParseKey parses 64 hexadecimal characters (either case) into a Key. Its
// errors never quote the input.
func ParseKey(s string) (Key, error) {
	k, err := parseKey(s)
	if err != nil {
		return Key{}, fmt.Errorf("crypto: key %w", err)
	}
	return k, nil
}

// parseKey returns errors worded to follow "key" or "key N".
func parseKey(s string) (Key, error) {
	var k Key
	if len(s) != 2*KeySize {
		return Key{}, fmt.Errorf("must be %d hex characters (%d bytes), got %d characters", 2*KeySize, KeySize, len(s))
	}
	for i := range KeySize {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return Key{}, errors.New("contains a character that is not hexadecimal")
		}
		k.b[i] = hi<<4 | lo
	}
	return k, nil
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// GenerateKey returns a new random Key read from crypto/rand.
func GenerateKey() Key {
	var k Key
	rand.Read(k.b[:]) // never returns an error; it crashes the program instead
	return k
}

// AppendHex appends the key's 64 lowercase hex characters to dst. It is the
// only way to see a key's bytes; use it to write a key out, never to log one.
func (k Key) AppendHex(dst []byte) []byte {
	const digits = "0123456789abcdef"
	for _, c := range k.b {
		dst = append(dst, digits[c>>4], digits[c&0x0f])
	}
	return dst
}

// Equal reports in constant time whether k and o are the same key.
func (k Key) Equal(o Key) bool { return subtle.ConstantTimeCompare(k.b[:], o.b[:]) == 1 }

// String returns a placeholder, never the key.
func (Key) String() string { return redacted }

// GoString returns a placeholder, never the key.
func (Key) GoString() string { return "crypto.Key" + redacted }

// Format prints a placeholder for every verb, never the key.
func (Key) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// MarshalText returns a placeholder, never the key, so that a Key embedded in
// a logged or encoded structure stays secret.
func (Key) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// sealer holds the AEADs built once for one key, so that Open builds nothing.
type sealer struct {
	gcm    cipher.AEAD // AES-256-GCM: format v1 and DARE suite 0x00
	chacha cipher.AEAD // ChaCha20-Poly1305: DARE suite 0x01
	key    Key
}

// Keyring is an ordered set of keys: the first seals, all open, in order.
//
// A Keyring is immutable after it is built and is safe for concurrent use.
// Rotate keys by building a new Keyring and swapping the pointer. Use it by
// pointer; copying one is pointless but harmless. It never prints its keys.
type Keyring struct {
	keys []sealer
	rand io.Reader // nonce source; crypto/rand unless a test injects one
}

// NewKeyring builds a Keyring from keys, the sealing key first. It refuses an
// empty list and duplicate keys.
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("crypto: a key ring needs at least one key")
	}
	r := &Keyring{keys: make([]sealer, 0, len(keys)), rand: rand.Reader}
	for i, k := range keys {
		for j := range i {
			if k.Equal(keys[j]) {
				return nil, fmt.Errorf("crypto: key %d duplicates key %d", i+1, j+1)
			}
		}
		block, err := aes.NewCipher(k.b[:])
		if err != nil {
			panic("crypto: internal error: " + err.Error())
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			panic("crypto: internal error: " + err.Error())
		}
		chacha, err := chacha20poly1305.New(k.b[:])
		if err != nil {
			panic("crypto: internal error: " + err.Error())
		}
		r.keys = append(r.keys, sealer{gcm: gcm, chacha: chacha, key: k})
	}
	return r, nil
}

// ParseKeyring builds a Keyring from hex keys, the sealing key first. Errors
// name the key by its position (1-based), never by its value.
func ParseKeyring(hexKeys ...string) (*Keyring, error) {
	keys := make([]Key, len(hexKeys))
	for i, s := range hexKeys {
		k, err := parseKey(s)
		if err != nil {
			return nil, fmt.Errorf("crypto: key %d %w", i+1, err)
		}
		keys[i] = k
	}
	return NewKeyring(keys...)
}

// Len returns the number of keys in the ring.
func (r *Keyring) Len() int { return len(r.keys) }

// String returns a description without key material.
func (r *Keyring) String() string { return fmt.Sprintf("crypto.Keyring{%d keys}", len(r.keys)) }

// Format prints the same as String for every verb.
func (r *Keyring) Format(f fmt.State, _ rune) { io.WriteString(f, r.String()) }

// Shares reports whether r and o hold a key in common, comparing every
// pair in constant time. Two applications of one deployment (issue #15)
// may share a key only when the configuration says so.
func (r *Keyring) Shares(o *Keyring) bool {
	shared := false
	for _, a := range r.keys {
		for _, b := range o.keys {
			shared = a.key.Equal(b.key) || shared
		}
	}
	return shared
}
