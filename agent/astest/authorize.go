package astest

import (
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// parTTL bounds request URIs (RFC 9126 §2.2).
const parTTL = 60 * time.Second

const requestURIPrefix = "urn:ietf:params:oauth:request_uri:"

var (
	errNoScope          = oidcfake.BadRequest("invalid_scope", "scope is required")
	errNoState          = oidcfake.BadRequest("invalid_request", "state is required")
	errPARRequired      = oidcfake.BadRequest("invalid_request", "pushed authorization request required (RFC 9126 §5)")
	errRedirectURI      = oidcfake.BadRequest("invalid_request", "redirect_uri is not registered")
	errClientIDMismatch = oidcfake.BadRequest("invalid_request", "client_id does not match the authenticated client")
	errRequestURIInPAR  = oidcfake.BadRequest("invalid_request",
		"request_uri is not allowed in a pushed authorization request (RFC 9126 §2.1)")
)

// checkAuthRequest validates the authorization request parameters shared by
// /authorize and /par, other than client_id and redirect_uri.
func checkAuthRequest(p url.Values) *oidcfake.Error {
	if e := oidcfake.CheckAuthRequest(p); e != nil {
		return e
	}
	// Without openid the request is plain OAuth 2.0: the token response
	// then carries no ID token (OpenID Connect Core §3.1.2.1).
	if len(strings.Fields(p.Get("scope"))) == 0 {
		return errNoScope
	}
	if p.Get("state") == "" {
		return errNoState
	}
	return nil
}

// authorize is the authorization endpoint (RFC 6749 §4.1.1). The Subject is
// logged in at once, so every valid request is answered with a code.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	f := s.snapshot("authorize")
	q := r.URL.Query()
	// RFC 6749 §4.1.2.1: with a bad client or redirect URI, tell the user
	// and do not redirect.
	if q.Get("client_id") != s.ClientID {
		http.Error(w, "astest: unknown client_id", http.StatusBadRequest)
		return
	}
	params := q
	if ru := q.Get("request_uri"); ru != "" {
		// RFC 9126 §4: the pushed parameters replace the query. They are
		// bound to the client that pushed them, checked above: there is one.
		p := s.pushed.Get(ru, true, time.Now())
		if p == nil {
			http.Error(w, "astest: invalid_request_uri: unknown, used or expired request_uri", http.StatusBadRequest)
			return
		}
		params = p
	} else {
		if q.Get("redirect_uri") != s.RedirectURI {
			http.Error(w, "astest: redirect_uri is not registered", http.StatusBadRequest)
			return
		}
		if f.RequirePAR {
			s.redirectError(w, r, &f, params, errPARRequired)
			return
		}
		if err := checkAuthRequest(params); err != nil {
			s.redirectError(w, r, &f, params, err)
			return
		}
	}
	if f.AuthorizeError != "" {
		s.redirectError(w, r, &f, params, oidcfake.BadRequest(f.AuthorizeError, "astest: simulated "+f.AuthorizeError))
		return
	}

	s.mu.Lock()
	sid := s.sid
	s.mu.Unlock()
	code := s.op.NewCode(params, s.user(), sid, time.Now())
	s.redirect(w, r, &f, params, url.Values{"code": {code}})
}

// redirectError sends the user agent back with an error (RFC 6749 §4.1.2.1).
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, f *Faults, params url.Values, e *oidcfake.Error) {
	s.redirect(w, r, f, params, url.Values{"error": {e.Code}, "error_description": {e.Description}})
}

// redirect answers 302 to the request's (validated) redirect URI with resp,
// the state and, per RedirectIss, the issuer (RFC 9207 §2).
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, f *Faults, params, resp url.Values) {
	iss := s.URL
	switch f.RedirectIss {
	case "":
	case "missing":
		iss = ""
	case "wrong":
		iss = otherIssuer
	default:
		iss = f.RedirectIss
	}
	oidcfake.Redirect(w, r, params.Get("redirect_uri"), params.Get("state"), iss, resp, http.StatusFound)
}

// par is the pushed authorization request endpoint (RFC 9126 §2).
func (s *Server) par(w http.ResponseWriter, r *http.Request) error {
	s.snapshot("par")
	clientID, err := s.authenticateClient(r)
	if err != nil {
		return err
	}
	p := r.PostForm
	if p.Has("request_uri") {
		return errRequestURIInPAR
	}
	if id := p.Get("client_id"); id != "" && id != clientID {
		return errClientIDMismatch
	}
	if p.Get("redirect_uri") != s.RedirectURI {
		return errRedirectURI
	}
	if err := checkAuthRequest(p); err != nil {
		return err
	}
	stored := maps.Clone(p)
	delete(stored, "client_secret")
	stored.Set("client_id", clientID)
	uri := s.pushed.Put(requestURIPrefix, stored, time.Now())
	oidcfake.WriteJSON(w, http.StatusCreated, map[string]any{"request_uri": uri, "expires_in": int(parTTL / time.Second)})
	return nil
}
