package agent

import (
	"crypto/sha256"
	"errors"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/session"
)

// opened is one decrypted token-handler cookie: its value, the format it
// was sealed in and, for format v2, its session envelope.
type opened struct {
	value  []byte
	format crypto.Format
	env    session.Envelope
}

// bound reports whether the value carries a session envelope (format v2).
func (o *opened) bound() bool { return o.format == crypto.FormatV2 }

// request is what the agent reads of one request's cookies: the raw Cookie
// headers (to clear what it finds) and every token-handler cookie in them.
type request struct {
	raw   browser.RawCookies
	found browser.Found
}

// userSession is the login session a request's cookies belong to: every
// token cookie it carries that opened, all of one session.
type userSession struct {
	at, auth, id, csrf *opened
	// env is the session's envelope; zero for a session in a legacy format
	// (v1 or DARE), whose cookies say nothing about their session.
	env    session.Envelope
	legacy bool
}

// key identifies the session for the refresh grace: its ID in format v2;
// for a legacy session the CSRF token, the one secret such a session's
// cookies share.
func (s *userSession) key() [32]byte {
	if !s.legacy {
		var k [32]byte
		k[0] = 2
		copy(k[16:], s.env.ID[:])
		return k
	}
	var token []byte
	if s.csrf != nil {
		token = s.csrf.value
	}
	return sha256.Sum256(append([]byte("legacy session\x00"), token...))
}

// Why a request's cookies were refused; the metric label of each.
var (
	errAmbiguous       = errors.New("a token-handler cookie name comes twice, or whole and in chunks")
	errSessionMismatch = errors.New("the cookies belong to different sessions")
	errLifetime        = errors.New("the session is older than session.max_lifetime, or the cookie has expired")
)

// session opens the token cookies of req (P-at, P-auth, P-id, P-csrf) and
// checks that they are one live session. The cookies in need must be there
// and open; the others are opened when present (one that does not open, a
// leftover from a rotated key say, is left out) and must belong to the same
// session all the same. A name that comes twice is refused whatever it is:
// which one is genuine cannot be told.
func (a *Agent) session(st *state, req *request, need ...*browser.Cookie) (*userSession, error) {
	if req.found.Ambiguous() {
		a.metrics.denied("cookie_ambiguous").Inc()
		return nil, errUnauthorizedRequest.with(errAmbiguous, "")
	}
	j := st.jar
	s := &userSession{}
	slots := []struct {
		c   *browser.Cookie
		dst **opened
	}{{&j.names.AccessToken, &s.at}, {&j.names.RefreshToken, &s.auth}, {&j.names.IDToken, &s.id}, {&j.names.CSRF, &s.csrf}}
	var first *opened
	for _, slot := range slots {
		o, ok := j.open(&req.found, slot.c)
		if !ok {
			if contains(need, slot.c) {
				return nil, errUnauthorizedRequest.with(errNoCookie, "")
			}
			continue
		}
		*slot.dst = &o
		if first == nil {
			first = &o
			continue
		}
		if o.bound() != first.bound() || o.bound() && o.env.ID != first.env.ID {
			a.metrics.denied("session_mismatch").Inc()
			return nil, errUnauthorizedRequest.with(errSessionMismatch, "")
		}
	}
	if first == nil {
		return nil, errUnauthorizedRequest.with(errNoCookie, "")
	}
	s.legacy = !first.bound()
	if s.legacy && s.csrf != nil && !csrfShaped(s.csrf.value) {
		s.csrf = nil // not a CSRF token: never compared, never echoed
	}
	if !s.legacy {
		s.env = first.env
		now := a.now().Unix()
		maxLifetime := st.maxLifetime
		for _, slot := range slots {
			if o := *slot.dst; o != nil && !o.env.Live(now, maxLifetime) {
				a.metrics.denied("session_expired").Inc()
				return nil, errSessionExpired.with(errLifetime, "")
			}
		}
	}
	return s, nil
}

func contains(list []*browser.Cookie, c *browser.Cookie) bool {
	for _, x := range list {
		if x == c {
			return true
		}
	}
	return false
}

// csrfShaped reports whether a CSRF value from a legacy cookie has the shape
// the agent generates: 43 base64url characters (32 random bytes). A v1 cookie
// carries no purpose, so any other v1 value (a refresh token, a JWT) put in
// the P-csrf slot is refused by its shape instead of being echoed.
func csrfShaped(v []byte) bool {
	if len(v) != csrfLength {
		return false
	}
	for _, c := range v {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// csrfBytes is the CSRF token's entropy; csrfLength its unpadded base64url
// length.
const (
	csrfBytes  = 32
	csrfLength = (csrfBytes*8 + 5) / 6
)
