package astest

import (
	"cmp"
	"net/http"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// token is the token endpoint (RFC 6749 §3.2): the Faults of the token
// endpoint, then the shared grant store.
func (s *Server) token(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		s.snapshot("token:")
		return oidcfake.ErrBadForm
	}
	f := s.snapshot("token:" + r.PostForm.Get("grant_type"))
	s.recordClientAuth(r)

	if f.TokenDelay > 0 {
		t := time.NewTimer(f.TokenDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return oidcfake.ErrClientGone
		case <-s.done:
			return oidcfake.ErrClientGone
		}
	}
	if f.TokenStatus != 0 {
		return statusError(f.TokenStatus, s.op.ErrInvalidClient)
	}
	if f.TokenGarbage {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("<html><body>502 Bad Gateway</body></html>\n"))
		return nil
	}
	if f.TokenError != "" {
		e := oidcfake.BadRequest(f.TokenError, "astest: simulated "+f.TokenError)
		if f.TokenError == "invalid_client" {
			e.Status, e.WWWAuthenticate = http.StatusUnauthorized, s.op.ErrInvalidClient.WWWAuthenticate
		}
		return e
	}

	clientID, err := s.authenticateClient(r)
	if err != nil {
		return err
	}
	o := oidcfake.Issue{AccessTTL: cmp.Or(f.AccessTokenTTL, 5*time.Minute), Padding: f.AccessTokenPadding,
		SignID: func(c oidcfake.IDClaims) (string, error) { return s.signID(c, time.Now(), &f) }}
	return s.op.Token(w, r, clientID, o, func(g *oidcfake.Grant, o *oidcfake.Issue) {
		// An ID token for an OpenID Connect grant (the granted scope
		// decides, also when a refresh narrows it), or as the faults say.
		o.IDToken = oidcfake.HasScope(g.Scope, "openid") || f.IDTokenWithoutOpenID
		if r.PostForm.Get("grant_type") == "authorization_code" && f.IDTokenOmitted {
			o.IDToken = false
		}
	})
}

// recordClientAuth records which method r uses, before it is checked.
func (s *Server) recordClientAuth(r *http.Request) {
	_, _, m, _ := oidcfake.ClientCredentials(r)
	s.mu.Lock()
	s.lastClientAuth = m
	s.mu.Unlock()
}

// authenticateClient parses r's form, records its client authentication
// method and checks the one client's credentials; it returns the client ID.
func (s *Server) authenticateClient(r *http.Request) (string, error) {
	if err := r.ParseForm(); err != nil {
		return "", oidcfake.ErrBadForm
	}
	s.recordClientAuth(r)
	return s.op.Authenticate(r, func(id string) (string, bool) { return s.ClientSecret, id == s.ClientID })
}

// revoke is the revocation endpoint (RFC 7009 §2); Revoked reports the
// tokens it was sent.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) error {
	s.snapshot("revocation")
	clientID, err := s.authenticateClient(r)
	if err != nil {
		return err
	}
	// Recorded before the answer, which a test may act on at once.
	if tok := r.PostForm.Get("token"); tok != "" {
		s.mu.Lock()
		s.revoked[tok] = true
		s.mu.Unlock()
	}
	return s.op.Revocation(w, r, clientID)
}
