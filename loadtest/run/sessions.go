package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/harness"
	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// issuer signs the load tests' access tokens (RS256, RFC 9068 shape) with
// oidcfake's keys, which serve them as a JWKS (on any path): the demo API
// fetches <url>/jwks once and then verifies every token against it, as it
// would a real Authorization Server's.
type issuer struct {
	url  string // set once it serves
	keys *oidcfake.Keys
}

func newIssuer() (*issuer, error) {
	keys, err := oidcfake.NewKeys()
	return &issuer{keys: keys}, err
}

// tokenSize is the access token length aimed at: a realistic JWT access
// token with a few roles and groups is about 1 KiB.
const tokenSize = 1024

// mint returns an access token for sub, valid for ttl, padded with group
// claims to about tokenSize bytes.
func (iss *issuer) mint(sub string, ttl time.Duration) (string, error) {
	now := time.Now()
	claims := map[string]any{
		"iss": iss.url, "sub": sub, "aud": apiAudience, "client_id": clientID,
		"scope": "openid profile email orders:read orders:write invoices:read",
		"name":  "Load Test " + sub, "email": sub + "@example.com",
		"iat": now.Unix(), "exp": now.Add(ttl).Unix(), "auth_time": now.Unix(),
		"jti": rand.Text(), "sid": rand.Text(), "amr": []string{"pwd", "otp"},
		"roles": []string{"customer", "orders-reader", "orders-writer"},
	}
	var groups []string
	for i := 0; ; i++ {
		tok, err := iss.keys.Sign("at+jwt", claims)
		if err != nil || len(tok) >= tokenSize || i == 64 {
			return tok, err
		}
		groups = append(groups, fmt.Sprintf("/tenants/acme/team-%02d", i))
		claims["groups"] = groups
	}
}

// session is one user's cookies, as k6 sends them (loadtest/lib/config.js).
type session struct {
	Sub        string `json:"sub"`
	At         string `json:"at"`         // the P-at cookie's value
	CSRFCookie string `json:"csrfCookie"` // the P-csrf cookie's value
	CSRF       string `json:"csrf"`       // the x-P-csrf header's value
}

// sessionsFile is what k6 reads: sessions sealed with the old key, which
// the proxies start with, and rotated ones sealed with the new key, which
// only open after the soak's SIGHUP rotation.
type sessionsFile struct {
	TokenBytes int       `json:"tokenBytes"`
	Sessions   []session `json:"sessions"`
	Rotated    []session `json:"rotated"`
}

// mintSessions mints sessionCount users' cookies with each key, sealing
// with thctl as an operator minting load-test cookies would, and writes
// them to the sessions file.
func (s *stack) mintSessions(ctx context.Context, bin string, iss *issuer) error {
	f := sessionsFile{}
	for i := range sessionCount {
		sub := fmt.Sprintf("loadtest-user-%02d", i)
		// The tokens outlive the longest run (the 10-minute soak).
		tok, err := iss.mint(sub, time.Hour)
		if err != nil {
			return err
		}
		f.TokenBytes = len(tok)
		csrf := rand.Text() + rand.Text() // 2 × 128 bits, base32
		for _, key := range []string{s.oldKey, s.newKey} {
			// Format v2, the proxy's default: P-at and P-csrf of one
			// session (the same -session), each bound to its purpose,
			// with the subject's digest as the agent records it. They
			// live 12 h, the default session.max_lifetime, far beyond
			// the longest run.
			var id [16]byte // the session's ID, as the agent mints one at login
			rand.Read(id[:])
			v2 := []string{"-session", fmt.Sprintf("%x", id), "-issuer", iss.url, "-sub", sub}
			at, err := harness.Thctl(ctx, bin, key, tok, append([]string{"seal", "-purpose", "at"}, v2...)...)
			if err != nil {
				return err
			}
			csrfCookie, err := harness.Thctl(ctx, bin, key, csrf, append([]string{"seal", "-purpose", "csrf"}, v2...)...)
			if err != nil {
				return err
			}
			ss := session{Sub: sub, At: at, CSRFCookie: csrfCookie, CSRF: csrf}
			if key == s.oldKey {
				f.Sessions = append(f.Sessions, ss)
			} else {
				f.Rotated = append(f.Rotated, ss)
			}
		}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	s.minted, s.sessions = f, filepath.Join(s.Dir, "sessions.json")
	return os.WriteFile(s.sessions, b, 0o600)
}
