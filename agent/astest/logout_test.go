package astest_test

import (
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenhandler/tokenhandler/agent/astest"
)

// TestSetSession: ID tokens of logins authorized after SetSession carry its
// sid; earlier and "" ones none.
func TestSetSession(t *testing.T) {
	s := astest.New(t, astest.Options{})
	cfg := config(t, s, oauth2.AuthStyleInHeader)
	tok, _ := signIn(t, s, cfg)
	if _, ok := idToken(t, s, tok).claims["sid"]; ok {
		t.Fatal("sid without SetSession")
	}
	s.SetSession("op-1")
	tok, _ = signIn(t, s, cfg)
	if got := idToken(t, s, tok).str("sid"); got != "op-1" {
		t.Fatalf("sid %q, want op-1", got)
	}
}

// TestSignLogoutToken: a logout token as §2.4 shapes it, signed as asked.
func TestSignLogoutToken(t *testing.T) {
	s := astest.New(t, astest.Options{})
	now := time.Now()
	c := s.LogoutClaims(s.Subject(), "op-1", now)
	raw, err := s.SignLogoutToken(c, astest.Signing{})
	if err != nil {
		t.Fatal(err)
	}
	p := parseJWT(t, s, raw)
	if p.verifyErr != nil || p.header["typ"] != "logout+jwt" || p.header["alg"] != "RS256" {
		t.Fatalf("header %v, verify %v", p.header, p.verifyErr)
	}
	events, _ := p.claims["events"].(map[string]any)
	if _, ok := events[astest.BackchannelLogoutEvent].(map[string]any); !ok || p.str("sid") != "op-1" ||
		p.str("sub") != s.Subject() || p.str("aud") != s.ClientID || p.str("jti") == "" || p.claims["nonce"] != nil {
		t.Fatalf("claims %v", p.claims)
	}
	if raw, _ := s.SignLogoutToken(c, astest.Signing{OtherKey: true}); parseJWT(t, s, raw).verifyErr == nil {
		t.Fatal("OtherKey: the signature verifies")
	}
	if raw, _ := s.SignLogoutToken(c, astest.Signing{Alg: "none", Typ: "-"}); raw[len(raw)-1] != '.' {
		t.Fatalf("alg none: %q", raw)
	}
	raw, _ = s.SignLogoutToken(c, astest.Signing{Alg: "RS512", Typ: "-"})
	if p := parseJWT(t, s, raw); p.header["alg"] != "RS512" || p.header["typ"] != nil {
		t.Fatalf("RS512 without typ: header %v", p.header)
	}
}
