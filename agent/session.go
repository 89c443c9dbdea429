package agent

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"slices"

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
	// foreign names a cookie that was well-formed but opened with no
	// configured key (jar.open), for the key-mismatch warning.
	foreign string
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

// oauthOnly reports whether s is an OAuth-only session: a v2 session that
// started without an ID token (no openid in the scope), so its envelope
// names no one and it has no P-id.
func (s *userSession) oauthOnly() bool {
	return !s.legacy && s.env.Sub == (session.Digest{}) && s.id == nil
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
	errIdentityChanged = errors.New("the identity changed")
)

// session opens the token cookies of req (P-at, P-auth, P-id, P-csrf) and
// checks that they are one live session. The cookies in need must be there
// and open; the others are opened when present (one that does not open, a
// leftover from a rotated key say, is left out) and must belong to the same
// session all the same. A name that comes twice is refused whatever it is:
// which one is genuine cannot be told.
func (a *Agent) session(st *state, req *request, need ...*browser.Cookie) (*userSession, error) {
	if err := a.unambiguous(st, req); err != nil {
		return nil, err
	}
	j := st.jar
	s := &userSession{}
	slots := []struct {
		c   *browser.Cookie
		dst **opened
	}{{&j.names.AccessToken, &s.at}, {&j.names.RefreshToken, &s.auth}, {&j.names.IDToken, &s.id}, {&j.names.CSRF, &s.csrf}}
	var first *opened
	for _, slot := range slots {
		o, ok := j.open(req, slot.c)
		if !ok {
			if slices.Contains(need, slot.c) {
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
			st.metrics.denied("session_mismatch").Inc()
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
				st.metrics.denied("session_expired").Inc()
				return nil, errSessionExpired.with(errLifetime, "")
			}
		}
		if err := a.checkRevoked(st, &s.env, a.now()); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// unambiguous refuses a request in which a token-handler cookie name comes
// twice, or a cookie whole and in chunks: which copy is genuine cannot be
// told.
func (a *Agent) unambiguous(st *state, req *request) error {
	if req.found.Ambiguous() {
		st.metrics.denied("cookie_ambiguous").Inc()
		return errUnauthorizedRequest.with(errAmbiguous, "")
	}
	return nil
}

// The CSRF token is csrfBytes random bytes followed by a 4-byte checksum
// of them, in unpadded base64url: 48 characters. Its shape is what lets the
// agent tell it from anything else when a cookie carries no purpose (v1,
// DARE): a refresh token or JWT put in the P-csrf slot is not echoed by
// login/end, even one of the same length and alphabet (the checksum
// matches by chance once in 2^32).
const (
	csrfBytes    = 32
	csrfChecksum = 4
	csrfLength   = ((csrfBytes+csrfChecksum)*8 + 5) / 6
)

// newCSRFToken returns a fresh CSRF token.
func newCSRFToken() []byte {
	raw := make([]byte, csrfBytes, csrfBytes+csrfChecksum)
	rand.Read(raw)
	sum := sha256.Sum256(append([]byte("tokenhandler csrf\x00"), raw...))
	raw = append(raw, sum[:csrfChecksum]...)
	return []byte(base64.RawURLEncoding.EncodeToString(raw))
}

// csrfShaped reports whether v has the shape newCSRFToken gives.
func csrfShaped(v []byte) bool {
	if len(v) != csrfLength {
		return false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(string(v))
	if err != nil || len(raw) != csrfBytes+csrfChecksum {
		return false
	}
	sum := sha256.Sum256(append([]byte("tokenhandler csrf\x00"), raw[:csrfBytes]...))
	return subtle.ConstantTimeCompare(sum[:csrfChecksum], raw[csrfBytes:]) == 1
}
