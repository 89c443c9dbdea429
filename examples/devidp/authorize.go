package devidp

import (
	"crypto/rand"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// pendingTTL bounds how long the login page may stay open.
const (
	pendingTTL = 10 * time.Minute
	// maxPending caps the login pages open at once, so that a loop fetching
	// /authorize cannot fill memory.
	maxPending = 10000
)

// checkAuthRequest validates the parameters of an authorization request once
// the client and redirect URI are known to be good; a failure is sent back
// to the client (RFC 6749 §4.1.2.1).
func checkAuthRequest(q url.Values) *oidcfake.Error {
	bad := oidcfake.BadRequest
	for k, v := range q {
		// RFC 6749 §3.1: parameters MUST NOT be included more than once.
		if len(v) > 1 {
			return bad("invalid_request", "parameter "+k+" is repeated")
		}
	}
	if e := oidcfake.CheckAuthRequest(q); e != nil {
		return e
	}
	switch {
	case q.Has("request"):
		return bad("request_not_supported", "request objects are not supported")
	case q.Has("request_uri"):
		return bad("request_uri_not_supported", "request_uri is not supported (no PAR here)")
	case q.Get("response_mode") != "" && q.Get("response_mode") != "query":
		return bad("invalid_request", "response_mode must be query")
	case slices.Contains(strings.Fields(q.Get("prompt")), "none"):
		// OpenID Connect Core §3.1.2.6: there is never a session to reuse.
		return bad("login_required", "the development IdP always shows its login page")
	}
	return nil
}

// authorize is the authorization endpoint (RFC 6749 §4.1.1): it validates the
// request and shows the login page.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// RFC 6749 §4.1.2.1: with a bad client_id or redirect_uri, tell the user
	// and do not redirect.
	c := s.clients[single(q, "client_id")]
	if c == nil {
		s.errorPage(w, http.StatusBadRequest, "Unknown client",
			"The client_id of this request is missing or not registered with the development IdP.")
		return
	}
	redirectURI := single(q, "redirect_uri")
	if !slices.Contains(c.RedirectURIs, redirectURI) {
		s.errorPage(w, http.StatusBadRequest, "Redirect URI not registered",
			"The redirect_uri "+quote(redirectURI)+" is missing or not registered for client "+quote(c.ID)+".")
		return
	}
	// From here on q holds one client_id and one redirect_uri, both good.
	if e := checkAuthRequest(q); e != nil {
		s.redirect(w, r, q, url.Values{"error": {e.Code}, "error_description": {e.Description}}, http.StatusFound)
		return
	}
	id := s.pending.Put("", q, time.Now())
	if id == "" {
		s.errorPage(w, http.StatusServiceUnavailable, "Too many sign-ins in progress",
			"Try again in a few minutes.")
		return
	}
	s.loginPage(w, http.StatusOK, id, q, "")
}

// single returns the one value of q[k], or "" when there is none or more
// than one.
func single(q url.Values, k string) string {
	if len(q[k]) != 1 {
		return ""
	}
	return q[k][0]
}

// login handles the login form: the user picked or typed a user, or
// cancelled.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "Bad request", "The login form could not be read.")
		return
	}
	id := r.PostForm.Get("request_id")
	now := time.Now()
	q := s.pending.Get(id, false, now)
	if q == nil {
		s.expiredPage(w)
		return
	}

	if r.PostForm.Has("cancel") {
		if s.pending.Get(id, true, now) != nil {
			s.redirect(w, r, q, url.Values{"error": {"access_denied"},
				"error_description": {"the user cancelled the sign-in"}}, http.StatusSeeOther)
		} else {
			s.expiredPage(w)
		}
		return
	}
	// The text field comes before the user buttons in the form, so the
	// button that was clicked, if any, is the last value.
	var name string
	if v := r.PostForm["username"]; len(v) > 0 {
		name = strings.TrimSpace(v[len(v)-1])
	}
	user := userNamed(name)
	if user == nil {
		msg := "Choose one of the demo users."
		if name != "" {
			msg = "There is no demo user " + quote(name) + ". Choose one of the demo users."
		}
		s.loginPage(w, http.StatusBadRequest, id, q, msg)
		return
	}
	// Single use: a second submission of the same page finds nothing.
	if s.pending.Get(id, true, now) == nil {
		s.expiredPage(w)
		return
	}
	sid := rand.Text()
	s.mu.Lock()
	s.sweepLocked(now)
	// Every sign-in is a provider session of its own: there is no session
	// cookie to reuse one (prompt=none is refused).
	s.sessions[sid] = &opSession{id: sid, user: user, clientID: q.Get("client_id"), started: now, expires: now.Add(sessionTTL)}
	s.mu.Unlock()
	code := s.op.NewCode(q, *user, sid, now)
	s.redirect(w, r, q, url.Values{"code": {code}}, http.StatusSeeOther)
}

func (s *Server) expiredPage(w http.ResponseWriter) {
	s.errorPage(w, http.StatusBadRequest, "Sign-in request expired",
		"This sign-in page has expired or was already used. Go back to the application and sign in again.")
}

// redirect sends the user agent back to the registered redirect URI of the
// authorization request q with resp, the state and the issuer (RFC 9207
// §2).
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, q, resp url.Values, status int) {
	oidcfake.Redirect(w, r, q.Get("redirect_uri"), q.Get("state"), s.issuer, resp, status)
}
