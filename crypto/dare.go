package crypto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/minio/sio"
)

// DARE 2.0 package layout (minio/sio DARE.md):
//
//	header[0]     version, 0x20
//	header[1]     cipher suite: 0x00 AES-256-GCM, 0x01 ChaCha20-Poly1305
//	header[2:4]   payload length - 1, little endian
//	header[4:16]  nonce; bit 7 of header[4] flags the final package
//	payload       ciphertext, 1 … 65536 bytes
//	tag           16 bytes
//
// The AEAD's associated data is header[0:4]. Its nonce is header[4:16] with
// the package sequence number XORed into the last four bytes, little endian;
// a cookie is one package, sequence number 0, so the nonce is header[4:16].
const (
	dareHeaderSize = 16
	dareAESGCM     = 0x00
	dareChaCha     = 0x01
	dareFinal      = 0x80
)

// openDARE opens raw, which must be exactly one final DARE 2.0 package with
// sequence number 0, and appends the plaintext to dst.
func (r *Keyring) openDARE(dst, raw []byte) ([]byte, error) {
	if len(raw) < dareHeaderSize+1+tagSize {
		return dst, ErrOpen
	}
	header := raw[:dareHeaderSize]
	suite := header[1]
	payload := int(binary.LittleEndian.Uint16(header[2:4])) + 1
	if suite > dareChaCha || header[4]&dareFinal == 0 || len(raw) != dareHeaderSize+payload+tagSize {
		return dst, ErrOpen
	}
	nonce, ciphertext, aad := header[4:], raw[dareHeaderSize:], header[:4]
	for i := range r.keys {
		aead := r.keys[i].gcm
		if suite == dareChaCha {
			aead = r.keys[i].chacha
		}
		if out, err := aead.Open(dst, nonce, ciphertext, aad); err == nil {
			return out, nil
		}
	}
	return dst, ErrOpen
}

var errDAREEmpty = errors.New("crypto: a DARE cookie cannot hold an empty plaintext")

// sealDARE writes one DARE 2.0 package with sio, the format's reference
// implementation. sio picks AES-256-GCM when the CPU has AES instructions and
// ChaCha20-Poly1305 otherwise.
func (r *Keyring) sealDARE(plaintext []byte) ([]byte, error) {
	return sealDARE(r.keys[0].key, plaintext, r.rand, nil)
}

func sealDARE(k Key, plaintext []byte, rand io.Reader, suites []byte) ([]byte, error) {
	switch {
	case len(plaintext) == 0:
		return nil, errDAREEmpty
	case len(plaintext) > MaxDAREPlaintext:
		return nil, fmt.Errorf("crypto: a DARE cookie holds at most %d bytes, got %d", MaxDAREPlaintext, len(plaintext))
	}
	enc, err := sio.EncryptReader(bytes.NewReader(plaintext), sio.Config{
		MinVersion:   sio.Version20,
		MaxVersion:   sio.Version20,
		CipherSuites: suites,
		Key:          k.b[:],
		Rand:         rand,
	})
	if err != nil {
		return nil, fmt.Errorf("crypto: sealing DARE: %w", err)
	}
	raw := make([]byte, dareHeaderSize+len(plaintext)+tagSize)
	if _, err := io.ReadFull(enc, raw); err != nil {
		return nil, fmt.Errorf("crypto: sealing DARE: %w", err)
	}
	// Only the read that returns io.EOF gives sio's 64 KiB package buffer
	// back to its pool; without it every Seal allocates one.
	if n, err := enc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		return nil, fmt.Errorf("crypto: sealing DARE: sio wrote more than one package")
	}
	return raw, nil
}
