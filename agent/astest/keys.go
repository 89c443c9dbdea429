package astest

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// RotateKey makes a new RSA signing key with a new kid, as an authorization
// server rotating its keys does (OpenID Connect Core §10.1.1): tokens issued
// from now on are signed with it, and the JWKS publishes it first, followed
// by the keys it replaced, so that tokens already issued still verify. It
// returns the new kid.
func (s *Server) RotateKey() (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", fmt.Errorf("astest: generate key: %w", err)
	}
	s.keyMu.Lock()
	s.retired = append(s.retired, &s.key.PublicKey)
	s.keyMu.Unlock()
	if err := s.setKey(key); err != nil {
		return "", err
	}
	_, kid := s.signingKey()
	return kid, nil
}

// setKey makes key the signing key and publishes the JWKS: key first, then
// the retired keys.
func (s *Server) setKey(key *rsa.PrivateKey) error {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	jwks, kid, err := oidcfake.JWKS(append([]*rsa.PublicKey{&key.PublicKey}, s.retired...)...)
	if err != nil {
		return fmt.Errorf("astest: %w", err)
	}
	s.key, s.kid, s.jwks = key, kid, jwks
	return nil
}

// signingKey returns the current signing key and its kid.
func (s *Server) signingKey() (*rsa.PrivateKey, string) {
	s.keyMu.RLock()
	defer s.keyMu.RUnlock()
	return s.key, s.kid
}

// publicKeys returns the current and the retired public keys.
func (s *Server) publicKeys() []*rsa.PublicKey {
	s.keyMu.RLock()
	defer s.keyMu.RUnlock()
	return append([]*rsa.PublicKey{&s.key.PublicKey}, s.retired...)
}
