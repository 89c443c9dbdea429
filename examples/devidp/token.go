package devidp

import (
	"net/http"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// sessionTTL bounds a login: its refresh tokens stop working this long after
// the user signed in, however often they were rotated.
const sessionTTL = 12 * time.Hour

// token is the token endpoint (RFC 6749 §3.2), the shared grant store's:
// every answer carries a refresh token and, for the openid scope, an ID
// token. A code's grant joins its provider session.
func (s *Server) token(w http.ResponseWriter, r *http.Request) error {
	clientID, err := s.authenticateClient(r)
	if err != nil {
		return err
	}
	return s.op.Token(w, r, clientID, oidcfake.Issue{AccessTTL: s.ttl}, func(g *oidcfake.Grant, _ *oidcfake.Issue) error {
		if r.PostForm.Get("grant_type") == "authorization_code" {
			return s.addGrant(g)
		}
		return nil
	})
}

// addGrant adds g to its provider session, so that ending the session
// revokes it.
func (s *Server) addGrant(g *oidcfake.Grant) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[g.SID]
	if sess == nil {
		// The session ended (logged out on the index page) between the
		// sign-in and the code's redemption.
		s.op.Revoke(g)
		return oidcfake.ErrUnknownCode
	}
	sess.grants = append(sess.grants, g)
	return nil
}

// authenticateClient parses r's form and checks client_secret_basic or
// client_secret_post (RFC 6749 §2.3.1); it returns the client ID.
func (s *Server) authenticateClient(r *http.Request) (string, error) {
	return s.op.Authenticate(r, func(id string) (string, bool) {
		if c := s.clients[id]; c != nil {
			return c.Secret, true
		}
		return "", false
	})
}

// revoke is the revocation endpoint (RFC 7009 §2).
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) error {
	clientID, err := s.authenticateClient(r)
	if err != nil {
		return err
	}
	return s.op.Revocation(w, r, clientID)
}
