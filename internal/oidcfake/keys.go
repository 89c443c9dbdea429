package oidcfake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Keys are a provider's RS256 signing keys: the current one and those it
// replaced, all published in the JWKS so that tokens signed before a
// rotation still verify. Keys are safe for concurrent use and must not be
// copied.
type Keys struct {
	mu      sync.RWMutex
	key     *rsa.PrivateKey
	kid     string
	retired []*rsa.PublicKey // newest first
	jwks    []byte           // the public JWKS document
}

// NewKeys makes Keys with a fresh RSA 2048 key.
func NewKeys() (*Keys, error) {
	k := &Keys{}
	if _, err := k.Rotate(); err != nil {
		return nil, err
	}
	return k, nil
}

// Rotate makes a new signing key with a new kid, as a provider rotating its
// keys does (OpenID Connect Core §10.1.1): tokens signed from now on use it,
// and the JWKS publishes it first, then the keys it replaced. It returns
// the new kid.
func (k *Keys) Rotate() (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", fmt.Errorf("oidcfake: generate key: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	retired := k.retired
	if k.key != nil {
		retired = append([]*rsa.PublicKey{&k.key.PublicKey}, retired...)
	}
	// The JWK Set (RFC 7517 §5), each key with its RFC 7638 thumbprint as
	// kid.
	var set jose.JSONWebKeySet
	for _, pub := range append([]*rsa.PublicKey{&key.PublicKey}, retired...) {
		jwk := jose.JSONWebKey{Key: pub, Algorithm: string(jose.RS256), Use: "sig"}
		b, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			return "", fmt.Errorf("oidcfake: thumbprint: %w", err)
		}
		jwk.KeyID = base64.RawURLEncoding.EncodeToString(b)
		set.Keys = append(set.Keys, jwk)
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return "", fmt.Errorf("oidcfake: marshal JWKS: %w", err)
	}
	k.key, k.kid, k.retired, k.jwks = key, set.Keys[0].KeyID, retired, jwks
	return k.kid, nil
}

// Current returns the signing key and its kid.
func (k *Keys) Current() (*rsa.PrivateKey, string) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.key, k.kid
}

// Sign serialises claims as a compact RS256 JWS with the current key.
func (k *Keys) Sign(typ jose.ContentType, claims any) (string, error) {
	key, kid := k.Current()
	return Sign(jose.RS256, key, kid, typ, claims)
}

// Sign serialises claims as a compact JWS with alg (RS256 or another RSA
// algorithm), kid and typ; typ "" leaves the header out.
func Sign(alg jose.SignatureAlgorithm, key *rsa.PrivateKey, kid string, typ jose.ContentType, claims any) (string, error) {
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(typ)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		return "", fmt.Errorf("oidcfake: signer: %w", err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("oidcfake: sign: %w", err)
	}
	return tok, nil
}

// ServeHTTP answers with the JWK Set of every key, current first, for the
// provider's jwks_uri.
func (k *Keys) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	k.mu.RLock()
	jwks := k.jwks
	k.mu.RUnlock()
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Write(jwks)
}

// errNotOurs is Verify's one error for every token it does not accept.
var errNotOurs = errors.New("oidcfake: not a token of this provider")

// Verify checks that raw is an RS256 JWT signed with one of the keys and
// decodes its claims into out.
func (k *Keys) Verify(raw string, out ...any) error {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return errNotOurs
	}
	k.mu.RLock()
	pubs := append([]*rsa.PublicKey{&k.key.PublicKey}, k.retired...)
	k.mu.RUnlock()
	for _, pub := range pubs {
		if tok.Claims(pub, out...) == nil {
			return nil
		}
	}
	return errNotOurs
}
