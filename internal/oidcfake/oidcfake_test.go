package oidcfake

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestPKCEValid(t *testing.T) {
	// RFC 7636 Appendix B.
	const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	tests := []struct {
		name, verifier, challenge string
		want                      bool
	}{
		{"rfc7636 vector", verifier, challenge, true},
		{"wrong verifier", verifier[:42] + "Y", challenge, false},
		{"too short", verifier[:42], challenge, false},
		{"bad character", verifier[:42] + "+", challenge, false},
		{"plain not accepted", verifier, verifier, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PKCEValid(tt.verifier, tt.challenge); got != tt.want {
				t.Errorf("PKCEValid = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClientCredentials(t *testing.T) {
	tests := []struct {
		name            string
		user, pass      string // Basic, when user is not empty
		form            url.Values
		wantID, wantSec string
		wantErr         error
	}{
		{name: "basic form-encoded", user: "my%3Aclient", pass: "s%C3%A9cret+1",
			wantID: "my:client", wantSec: "sécret 1"},
		{name: "basic with matching client_id", user: "c", pass: "s",
			form: url.Values{"client_id": {"c"}}, wantID: "c", wantSec: "s"},
		{name: "basic with other client_id", user: "c", pass: "s",
			form: url.Values{"client_id": {"d"}}, wantErr: ErrBadClientAuth},
		{name: "basic bad escape", user: "c%zz", pass: "s", wantErr: ErrBadClientAuth},
		{name: "post", form: url.Values{"client_id": {"c"}, "client_secret": {"s"}},
			wantID: "c", wantSec: "s"},
		{name: "both", user: "c", pass: "s",
			form: url.Values{"client_id": {"c"}, "client_secret": {"s"}}, wantErr: ErrTwoClientAuths},
		{name: "none", form: url.Values{"client_id": {"c"}}, wantErr: ErrBadClientAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/token", strings.NewReader(tt.form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.user != "" {
				r.SetBasicAuth(tt.user, tt.pass)
			}
			if err := r.ParseForm(); err != nil {
				t.Fatal(err)
			}
			id, secret, err := ClientCredentials(r)
			if !errors.Is(err, tt.wantErr) || id != tt.wantID || secret != tt.wantSec {
				t.Errorf("ClientCredentials = %q, %q, %v; want %q, %q, %v",
					id, secret, err, tt.wantID, tt.wantSec, tt.wantErr)
			}
		})
	}
}

func TestWriteError(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, 401, "invalid_client", "no", `Basic realm="x"`)
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != `Basic realm="x"` ||
		w.Header().Get("Content-Type") != "application/json" ||
		w.Body.String() != `{"error":"invalid_client","error_description":"no"}` {
		t.Errorf("got %d %v %s", w.Code, w.Header(), w.Body)
	}
}

func TestSignVerifiesWithJWKS(t *testing.T) {
	k1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	doc, kid, err := JWKS(&k1.PublicKey, &k2.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 || set.Keys[0].KeyID != kid || set.Keys[1].KeyID == kid ||
		set.Keys[0].Algorithm != "RS256" || set.Keys[0].Use != "sig" {
		t.Fatalf("JWKS = %s, kid %q", doc, kid)
	}
	raw, err := Sign(k1, kid, "at+jwt", jwt.Claims{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	h := tok.Headers[0]
	if h.KeyID != kid || h.ExtraHeaders["typ"] != "at+jwt" {
		t.Errorf("header = %+v", h)
	}
	var c jwt.Claims
	if err := tok.Claims(set.Keys[0].Key, &c); err != nil || c.Subject != "alice" {
		t.Errorf("claims %+v, %v", c, err)
	}
	if err := tok.Claims(set.Keys[1].Key, &c); err == nil {
		t.Error("verified with the other key")
	}
}
