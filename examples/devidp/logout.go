package devidp

import (
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// opSession is one sign-in at the provider. Its id is the sid of the ID
// tokens issued in it (Back-Channel Logout 1.0 §2.1).
type opSession struct {
	id               string
	user             *User
	clientID         string
	started, expires time.Time
}

// Delivery is what one client's back-channel logout endpoint answered. It
// is plain data and may be copied.
type Delivery struct {
	ClientID string
	// Status is the HTTP status of the answer; 0 when there was none.
	Status int
	// Err is nil when the client answered 200 or 204 (§2.8), else why not.
	Err error
}

// logoutSession ends the provider session sid: its grants are revoked
// (their refresh tokens and access tokens stop working at this provider),
// and its client, when it has a BackchannelLogoutURI, is sent a logout
// token with the session's sid and sub. It returns what the client
// answered (nothing without a URI), and false when sid names no live
// session.
func (s *Server) logoutSession(ctx context.Context, sid string) ([]Delivery, bool) {
	s.mu.Lock()
	sess := s.sessions[sid]
	if sess != nil {
		s.endLocked(sess)
	}
	s.mu.Unlock()
	if sess == nil {
		return nil, false
	}
	if c := s.clients[sess.clientID]; c.BackchannelLogoutURI != "" {
		return []Delivery{s.sendLogout(ctx, c, sess.user.Subject, sess.id)}, true
	}
	return nil, true
}

// logoutUser ends every provider session of the user sub ("log out
// everywhere"), revoking their grants, and sends every client that has a
// BackchannelLogoutURI a logout token with sub and no sid (§2.4): all of
// the user's sessions at that client end, including any this provider no
// longer knows of. It returns the clients' answers in client ID order, and
// false for an unknown user.
func (s *Server) logoutUser(ctx context.Context, sub string) ([]Delivery, bool) {
	if userNamed(sub) == nil {
		return nil, false
	}
	s.mu.Lock()
	for _, sess := range s.sessions {
		if sess.user.Subject == sub {
			s.endLocked(sess)
		}
	}
	s.mu.Unlock()
	var out []Delivery
	for _, id := range slices.Sorted(maps.Keys(s.clients)) {
		if c := s.clients[id]; c.BackchannelLogoutURI != "" {
			out = append(out, s.sendLogout(ctx, c, sub, ""))
		}
	}
	return out, true
}

// endLocked forgets sess and revokes its grants. s.mu must be held.
func (s *Server) endLocked(sess *opSession) {
	delete(s.sessions, sess.id)
	s.op.EndSession(sess.id)
}

// sendLogout POSTs c a logout token for sub and sid (either may be "")
// (Back-Channel Logout 1.0 §2.5) and reports the answer. The token itself
// is never logged or shown.
func (s *Server) sendLogout(ctx context.Context, c *Client, sub, sid string) Delivery {
	d := Delivery{ClientID: c.ID}
	tok, err := s.op.SignLogoutToken(s.op.LogoutClaims(c.ID, sub, sid, time.Now()))
	if err != nil {
		d.Err = err
		return d
	}
	body := url.Values{"logout_token": {tok}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI, strings.NewReader(body))
	if err != nil {
		d.Err = fmt.Errorf("devidp: back-channel logout: %w", err)
		return d
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.httpClient.Do(req)
	if err != nil {
		// url.Error quotes the URL, never the body: no token in it.
		d.Err = fmt.Errorf("devidp: back-channel logout: %w", err)
		return d
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	d.Status = resp.StatusCode
	// §2.8: 200 on success; 204 is common too. A redirect is not followed.
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		d.Err = fmt.Errorf("devidp: back-channel logout: %s answered %s", c.BackchannelLogoutURI, resp.Status)
	}
	return d
}

// defaultHTTPClient sends logout tokens: a 5 s timeout, no redirects
// followed (§2.5), no proxy from the environment (the client is on this
// machine), and localhost names dialled at loopback as browsers do (RFC
// 6761 §6.3), which Go's resolver does not.
func defaultHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if host, port, err := net.SplitHostPort(addr); err == nil && isLocalhostName(host) {
					addr = net.JoinHostPort("127.0.0.1", port)
				}
				return dialer.DialContext(ctx, network, addr)
			},
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// checkForm reads a control's form and checks the page's form token, so
// that another site cannot post a logout from the developer's browser.
func (s *Server) checkForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return false
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("form_token")), []byte(s.formToken)) != 1 {
		s.errorPage(w, http.StatusForbidden, "Forbidden", "This form did not come from the development IdP's page: reload it and try again.")
		return false
	}
	return true
}

// endSessionControl is the index page's "Log out" button of one session.
func (s *Server) endSessionControl(w http.ResponseWriter, r *http.Request) {
	if !s.checkForm(w, r) {
		return
	}
	sent, ok := s.logoutSession(r.Context(), r.PostForm.Get("sid"))
	if !ok {
		s.errorPage(w, http.StatusNotFound, "No such session", "That session has already ended.")
		return
	}
	s.loggedOutPage(w, "Logged out", "The session has ended.", "", "", sent)
}

// logoutUserControl is the index page's "Log out everywhere" button of one
// user.
func (s *Server) logoutUserControl(w http.ResponseWriter, r *http.Request) {
	if !s.checkForm(w, r) {
		return
	}
	sub := r.PostForm.Get("sub")
	sent, ok := s.logoutUser(r.Context(), sub)
	if !ok {
		s.errorPage(w, http.StatusNotFound, "No such user", "There is no demo user "+quote(sub)+".")
		return
	}
	s.loggedOutPage(w, "Logged out", "Every session of "+sub+" has ended.", "", "", sent)
}

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
