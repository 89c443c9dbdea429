package astest

import (
	"io"
	"net/http"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) error {
	f := s.snapshot("discovery")
	if f.DiscoveryStatus != 0 {
		return statusError(f.DiscoveryStatus, oidcfake.ErrInvalidToken)
	}
	md := oidcfake.NewMetadata(s.URL, []string{"iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "name", "email", "email_verified"})
	// The pushed authorization request extension (RFC 9126 §5) the agent uses.
	md["pushed_authorization_request_endpoint"] = s.URL + "/par"
	md["require_pushed_authorization_requests"] = f.RequirePAR
	oidcfake.WriteJSON(w, http.StatusOK, md)
	return nil
}

// statusError is the JSON error answer for a status forced by a fault; a 401
// is answered as unauthorized is, WWW-Authenticate included.
func statusError(status int, unauthorized *oidcfake.Error) *oidcfake.Error {
	code := "invalid_request"
	switch {
	case status == http.StatusUnauthorized:
		return &oidcfake.Error{Status: status, Code: unauthorized.Code, Description: "astest: simulated status",
			WWWAuthenticate: unauthorized.WWWAuthenticate}
	case status == http.StatusServiceUnavailable:
		code = "temporarily_unavailable"
	case status >= 500:
		code = "server_error"
	}
	return &oidcfake.Error{Status: status, Code: code, Description: "astest: simulated status"}
}

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
