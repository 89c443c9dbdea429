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
// token.
func (s *Server) token(w http.ResponseWriter, r *http.Request) error {
	clientID, err := s.authenticateClient(r)
	if err != nil {
		return err
	}
	return s.op.Token(w, r, clientID, oidcfake.Issue{AccessTTL: s.ttl}, nil)
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
