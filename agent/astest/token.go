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
	now := time.Now()
	o := oidcfake.Issue{AccessTTL: cmp.Or(f.AccessTokenTTL, 5*time.Minute), Padding: f.AccessTokenPadding,
		SignID: func(c oidcfake.IDClaims) (string, error) { return s.signID(c, now, &f) }}
	var g *oidcfake.Grant
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		g, o.Nonce, err = s.op.Redeem(clientID, r.PostForm, now)
		if err == nil {
			// An ID token only for an OpenID Connect request (OpenID
			// Connect Core §3.1.3.3); a plain OAuth 2.0 one gets none.
			o.Scope, o.Refresh = g.Scope, true
			o.IDToken = (oidcfake.HasScope(g.Scope, "openid") || f.IDTokenWithoutOpenID) && !f.IDTokenOmitted
		}
	case "refresh_token":
		g, o.Scope, err = s.op.Refresh(clientID, r.PostForm, now)
		if err == nil {
			// OpenID Connect Core §12.2: no nonce in refreshed ID tokens.
			o.Refresh = true
			o.IDToken = oidcfake.HasScope(g.Scope, "openid") || f.IDTokenWithoutOpenID
		}
	default:
		return oidcfake.ErrUnsupportedGrant
	}
	if err != nil {
		return err
	}
	resp, err := s.op.Issue(g, now, o)
	if err != nil {
		return err
	}
	oidcfake.WriteJSON(w, http.StatusOK, resp)
	return nil
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
