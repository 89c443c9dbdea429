package oidcfake

import (
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

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

// JWKS is the JWK Set (RFC 7517 §5) publishing keys, in order, for RS256
// signatures, each with its RFC 7638 thumbprint as kid; kid is the first
// key's. keys must not be empty.
func JWKS(keys ...*rsa.PublicKey) (doc []byte, kid string, err error) {
	var set jose.JSONWebKeySet
	for _, pub := range keys {
		jwk := jose.JSONWebKey{Key: pub, Algorithm: string(jose.RS256), Use: "sig"}
		b, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, "", fmt.Errorf("oidcfake: thumbprint: %w", err)
		}
		jwk.KeyID = base64.RawURLEncoding.EncodeToString(b)
		set.Keys = append(set.Keys, jwk)
	}
	if doc, err = json.Marshal(set); err != nil {
		return nil, "", fmt.Errorf("oidcfake: marshal JWKS: %w", err)
	}
	return doc, set.Keys[0].KeyID, nil
}
