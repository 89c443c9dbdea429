package main

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestMint: a load-test access token is an RS256 JWT of about tokenSize
// bytes, in RFC 9068's shape, whose signature verifies against the key the
// issuer's /jwks publishes, as the demo API checks it.
func TestMint(t *testing.T) {
	iss, err := newIssuer()
	if err != nil {
		t.Fatal(err)
	}
	iss.url = "http://127.0.0.1:9"
	tok, err := iss.mint("loadtest-user-01", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) < tokenSize || len(tok) > tokenSize+64 {
		t.Errorf("token of %d bytes, want about %d", len(tok), tokenSize)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%d parts, want header.claims.signature", len(parts))
	}

	// The key, as the API reads it from /jwks.
	rec := httptest.NewRecorder()
	iss.keys.ServeHTTP(rec, httptest.NewRequest("GET", "/jwks", nil))
	var set struct {
		Keys []struct{ Kid, Alg, N, E string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("/jwks: %v, %s", err, rec.Body)
	}
	k := set.Keys[0]
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(unb64(t, k.N)), E: int(new(big.Int).SetBytes(unb64(t, k.E)).Int64())}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], unb64(t, parts[2])); err != nil {
		t.Errorf("the signature does not verify against /jwks: %v", err)
	}

	var header struct{ Alg, Kid, Typ string }
	var claims struct {
		Iss, Sub, Aud string
		Iat, Exp      int64
	}
	if err := json.Unmarshal(unb64(t, parts[0]), &header); err != nil || header != (struct{ Alg, Kid, Typ string }{"RS256", k.Kid, "at+jwt"}) {
		t.Errorf("header %+v (%v), want RS256, kid %q, typ at+jwt", header, err, k.Kid)
	}
	if err := json.Unmarshal(unb64(t, parts[1]), &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Iss != iss.url || claims.Sub != "loadtest-user-01" || claims.Aud != apiAudience || claims.Exp-claims.Iat != 3600 {
		t.Errorf("claims %+v, want iss %s, the subject, aud %s and an hour's lifetime", claims, iss.url, apiAudience)
	}
}

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
