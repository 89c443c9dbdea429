// Package crypto seals and opens the Token Handler's encrypted cookie values.
//
// A cookie value is the unpadded base64url encoding of one of three
// self-describing binary formats, told apart by their first byte:
//
//   - [FormatV2] (0x02): 0x02 ‖ nonce(12) ‖ AES-256-GCM ciphertext ‖ tag(16)
//     with associated data the opener must supply. Written by default,
//     through package session, which puts the cookie's purpose in the
//     associated data and a session envelope after the value
//     ([Keyring.SealAD], [Keyring.OpenAD]).
//   - [FormatV1] (0x01): 0x01 ‖ nonce(12) ‖ AES-256-GCM ciphertext ‖ tag(16),
//     byte-compatible with the Curity token handler.
//   - [FormatDARE] (0x20): exactly one MinIO DARE 2.0 package, as
//     github.com/minio/sio writes it (AES-256-GCM or ChaCha20-Poly1305).
//
// FORMAT.md beside this file documents the three layouts byte by byte.
//
// A [Keyring] holds one or more 32-byte keys: the first seals, all open, tried
// in order. That is key rotation without logging anybody out: put the new key
// first, keep the old one until the longest session has passed, then remove it.
// All formats use random 96-bit nonces, so one key MUST NOT seal more than
// 2^32 cookies (NIST SP 800-38D §8.3); rotate well before that.
//
// [Keyring.Open] and [Keyring.OpenAD] are built for the proxy's hot path:
// they allocate nothing in steady state when dst has room for the plaintext,
// and every failure returns the single opaque error [ErrOpen].
package crypto
