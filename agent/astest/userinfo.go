package astest

import (
	"io"
	"net/http"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// userinfo is oidcfake's UserInfo endpoint after the request is recorded
// and UserinfoStatus is applied.
func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) error {
	f := s.snapshot("userinfo")
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		return oidcfake.ErrBadForm
	}
	s.mu.Lock()
	s.lastUserinfo = UserinfoRequest{Method: r.Method, ContentType: r.Header.Get("Content-Type"), Body: string(body)}
	s.mu.Unlock()
	if f.UserinfoStatus != 0 {
		return statusError(f.UserinfoStatus, oidcfake.ErrInvalidToken)
	}
	return s.op.ServeUserinfo(w, r)
}

// UserinfoRequest is what the last UserInfo request sent, besides its
// token: its method, Content-Type and body.
type UserinfoRequest struct {
	Method, ContentType, Body string
}

// LastUserinfo returns what the last UserInfo request sent (the zero value
// before the first); it is recorded before any check.
func (s *Server) LastUserinfo() UserinfoRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastUserinfo
}

// endSession is the end-session endpoint (OpenID Connect RP-Initiated
// Logout 1.0 §2). There is no session to end, and it does not redirect.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) error {
	s.snapshot("end_session")
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return oidcfake.ErrMethod
	}
	if err := r.ParseForm(); err != nil {
		return oidcfake.ErrBadForm
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte("<!doctype html>\n<title>Signed out</title>\n<p>You have been signed out.</p>\n"))
	return nil
}
