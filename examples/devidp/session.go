package devidp

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// endSession is the end-session endpoint (OpenID Connect RP-Initiated
// Logout 1.0 §2). It ends the provider session of the id_token_hint, if
// any, with its back-channel logout, and shows a "logged out" page with
// what the back channel answered and a link back to
// post_logout_redirect_uri (and state) when that URI is registered for the
// client named by id_token_hint or client_id (§3). It links rather than
// redirects so that a developer sees where the logout went.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		s.errorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Use GET or POST.")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "Bad request", "The logout request could not be read.")
		return
	}
	f := r.Form
	clientID := f.Get("client_id")
	var note, sid string
	if hint := f.Get("id_token_hint"); hint != "" {
		aud, hintSID, ok := s.verifyIDTokenHint(hint)
		switch {
		case !ok:
			note = "The id_token_hint was not issued by this provider, so the application could not be identified."
			clientID = ""
		case len(aud) != 1 || (clientID != "" && clientID != aud[0]):
			note = "The id_token_hint does not match the client_id."
			clientID = ""
		default:
			clientID, sid = aud[0], hintSID
		}
	}
	var sent []Delivery
	if sid != "" {
		// The session the ID token was issued in is over: its grants go
		// and its client hears of it on the back channel.
		sent, _ = s.logoutSession(r.Context(), sid)
	}
	back := ""
	if plr := f.Get("post_logout_redirect_uri"); plr != "" && note == "" {
		c := s.clients[clientID]
		switch {
		case c == nil:
			note = "A post_logout_redirect_uri needs an id_token_hint or client_id that names a registered client."
		case !slices.Contains(c.PostLogoutRedirectURIs, plr):
			note = "The post_logout_redirect_uri " + quote(plr) + " is not registered for client " + quote(c.ID) + "."
		default:
			back = withState(plr, f.Get("state"))
		}
	}
	s.loggedOutPage(w, "You are logged out", "The development IdP has logged you out.", back, note, sent)
}

// verifyIDTokenHint checks that an id_token_hint was signed and issued by
// this provider, and returns its audience and sid. An expired ID token is
// accepted (RP-Initiated Logout 1.0 §2): the user may log out long after
// signing in.
func (s *Server) verifyIDTokenHint(raw string) (aud []string, sid string, ok bool) {
	var c struct {
		Issuer   string       `json:"iss"`
		Audience jwt.Audience `json:"aud"`
		SID      string       `json:"sid"`
	}
	ok = s.op.Keys.Verify(raw, &c) == nil && c.Issuer == s.issuer
	return c.Audience, c.SID, ok
}

// withState adds state to a registered redirect URI (RP-Initiated Logout
// 1.0 §3).
func withState(uri, state string) string {
	if state == "" {
		return uri
	}
	return oidcfake.AppendQuery(uri, url.Values{"state": {state}})
}
