package astest_test

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/agent/astest"
)

// TestRotateKey: after a rotation new tokens carry the new kid, the JWKS
// publishes the new key first and keeps the old one, and access tokens
// issued before the rotation are still accepted.
func TestRotateKey(t *testing.T) {
	t.Parallel()
	s := astest.New(t, astest.Options{})
	cfg := config(t, s, 0)
	before, _ := signIn(t, s, cfg)
	oldKid := keySet(t, s).Keys[0].KeyID
	newKid, err := s.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	set := keySet(t, s)
	if n := s.Count("jwks"); n != 2 {
		t.Errorf("Count(jwks) = %d, want 2", n)
	}
	if newKid == oldKid || len(set.Keys) != 2 || set.Keys[0].KeyID != newKid || set.Keys[1].KeyID != oldKid {
		t.Fatalf("JWKS kids %v after rotating from %s to %s", []string{set.Keys[0].KeyID, set.Keys[len(set.Keys)-1].KeyID}, oldKid, newKid)
	}
	after, _ := signIn(t, s, cfg)
	if id := idToken(t, s, after); id.header["kid"] != newKid || id.verifyErr != nil {
		t.Errorf("ID token after rotation: kid %v, %v", id.header["kid"], id.verifyErr)
	}
	for _, tok := range []string{before.AccessToken, after.AccessToken} {
		if resp, _ := userinfo(t, s, tok); resp.StatusCode != 200 {
			t.Errorf("userinfo: %s", resp.Status)
		}
	}

	s.Set(func(f *astest.Faults) { f.IDTokenUnknownKid = true })
	tok, _ := signIn(t, s, cfg)
	if id := idToken(t, s, tok); id.header["kid"] == newKid || id.verifyErr == nil {
		t.Errorf("IDTokenUnknownKid: kid %v verifies against the JWKS", id.header["kid"])
	}
}
