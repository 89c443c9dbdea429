package agent

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/agent/astest"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/spatest"
)

// The token cookies and the Path the test configuration gives each.
var tokenSlots = []struct{ name, path string }{
	{"example-at", "/"}, {"example-auth", "/oauth-agent/refresh"}, {"example-id", "/oauth-agent"}, {"example-csrf", "/"},
}

// secrets returns what b's token cookies hold, the ID token's payload
// included, by cookie name.
func (a *testAgent) secrets(b *spatest.Browser) map[string][]string {
	out := map[string][]string{}
	for _, s := range tokenSlots {
		v := a.open(b, s.name)
		out[s.name] = []string{v}
		if parts := strings.Split(v, "."); len(parts) == 3 {
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			out[s.name] = append(out[s.name], string(payload))
		}
	}
	return out
}

// agentCall is one endpoint and the cookies it cannot do without.
type agentCall struct {
	name, method, path string
	body               any
	needs              []string
}

var agentCalls = []agentCall{
	{"login/end page load", "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": spaOrigin + "/"}, nil},
	{"userInfo", "GET", "/oauth-agent/userInfo", nil, []string{"example-at"}},
	{"claims", "GET", "/oauth-agent/claims", nil, []string{"example-id"}},
	{"refresh", "POST", "/oauth-agent/refresh", nil, []string{"example-auth", "example-csrf"}},
	{"logout", "POST", "/oauth-agent/logout", nil, []string{"example-at", "example-csrf"}},
}

// TestSlotSwapping: every token cookie of a victim, put in every slot of an
// attacker's own session, at every endpoint. In v2 nothing of the victim's
// ever comes back and a swapped cookie the endpoint needs gets 401. In v1,
// whose cookies carry no purpose, a value still never comes back from a
// slot of another purpose: login/end echoes only a CSRF-shaped value and
// /claims only a verified ID token.
func TestSlotSwapping(t *testing.T) {
	for _, format := range []crypto.Format{crypto.FormatV2, crypto.FormatV1} {
		t.Run(format.String(), func(t *testing.T) {
			a := startAgent(t, func(c *Config) { c.CookieFormat = format; c.Refresh.GracePeriod = 0 })
			victim, attacker := a.spa(), a.spa()
			a.login(victim)
			a.login(attacker)
			secrets := a.secrets(victim)
			for _, call := range agentCalls {
				for _, slot := range tokenSlots {
					for _, from := range tokenSlots {
						if format == crypto.FormatV1 && from.name == slot.name {
							continue // v1 cannot tell sessions apart: its documented limit
						}
						b := attacker.Clone()
						b.Cookies[slot.name+"|"+slot.path].Value = victim.Cookie(from.name).Value
						r := a.call(b, call.method, call.path, call.body)
						if s := r.Leak(secrets[from.name]); s != "" {
							t.Errorf("%s with the victim's %s in %s: the answer (%d) holds its plaintext", call.name, from.name, slot.name, r.Status)
						}
						if format == crypto.FormatV2 {
							for _, others := range secrets {
								if s := r.Leak(others); s != "" {
									t.Errorf("%s with the victim's %s in %s: the answer holds a victim secret", call.name, from.name, slot.name)
								}
							}
							if slices.Contains(call.needs, slot.name) && r.Status != 401 {
								t.Errorf("%s with the victim's %s in %s: %d %s, want 401", call.name, from.name, slot.name, r.Status, r.Body)
							}
						}
					}
				}
			}
		})
	}
}

// TestGraceBoundToSession: the refresh grace hands a result only to the
// session that made it, and not after logout or a later refresh.
func TestGraceBoundToSession(t *testing.T) {
	a := startAgent(t, nil)
	victim := a.spa()
	a.login(victim)
	before := victim.Clone() // a second tab, or a thief's copy, before the rotation
	if r := a.call(victim, "POST", "/oauth-agent/refresh", nil); r.Status != 204 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}

	// The attacker has the victim's old P-auth, and a session of their own.
	attacker := a.spa()
	a.login(attacker)
	thief := attacker.Clone()
	thief.Cookies["example-auth|/oauth-agent/refresh"].Value = before.Cookie("example-auth").Value
	if r := a.call(thief, "POST", "/oauth-agent/refresh", nil); r.Status != 401 {
		t.Errorf("old P-auth with a foreign CSRF pair: %d %s, want 401", r.Status, r.Body)
	}
	// With no CSRF pair at all.
	bare := a.spa()
	bare.Cookies["example-auth|/oauth-agent/refresh"] = before.Cookie("example-auth")
	if r := a.call(bare, "POST", "/oauth-agent/refresh", nil); r.Status != 401 {
		t.Errorf("old P-auth alone: %d, want 401", r.Status)
	}

	// The victim's own second tab within the grace period gets the result.
	tab := before.Clone()
	if r := a.call(tab, "POST", "/oauth-agent/refresh", nil); r.Status != 204 {
		t.Fatalf("second tab within the grace: %d %s", r.Status, r.Body)
	}
	if a.open(tab, "example-at") != a.open(victim, "example-at") {
		t.Error("the second tab got other tokens than the refresh it raced")
	}
	grants := a.as.Count("token:refresh_token")

	// After logout the grace is gone: the copy goes to the AS, which
	// refuses the retired token.
	if r := a.call(victim, "POST", "/oauth-agent/logout", nil); r.Status != 200 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	if r := a.call(before.Clone(), "POST", "/oauth-agent/refresh", nil); r.Status != 401 || r.Code() != "session_expired" {
		t.Errorf("replay after logout: %d %s, want 401 session_expired", r.Status, r.Body)
	}
	if a.as.Count("token:refresh_token") != grants+1 {
		t.Errorf("the replay after logout did not reach the AS (%d grants, had %d)", a.as.Count("token:refresh_token"), grants)
	}

	// A later refresh with the newer token drops the grace of the older.
	v2 := a.spa()
	a.login(v2)
	old := v2.Clone()
	for range 2 {
		if r := a.call(v2, "POST", "/oauth-agent/refresh", nil); r.Status != 204 {
			t.Fatalf("refresh: %d %s", r.Status, r.Body)
		}
	}
	if r := a.call(old, "POST", "/oauth-agent/refresh", nil); r.Status != 401 {
		t.Errorf("replay after a later refresh: %d %s, want 401", r.Status, r.Body)
	}
}

// TestDuplicateCookies: a token-handler cookie name sent twice is refused,
// whichever comes first; login/start clears the variants it can.
func TestDuplicateCookies(t *testing.T) {
	a := startAgent(t, nil)
	victim, attacker := a.spa(), a.spa()
	a.login(victim)
	a.login(attacker)
	for _, slot := range tokenSlots {
		for _, path := range []string{"/oauth-agent", "/"} {
			b := victim.Clone()
			planted := *attacker.Cookie(slot.name)
			planted.Path = path
			if path == slot.path {
				planted.Path = "/oauth-agent/"
			}
			b.Cookies[slot.name+"|"+planted.Path] = &planted
			for _, call := range agentCalls {
				r := a.call(b, call.method, call.path, call.body)
				if len(b.InScope(call.path)) <= len(victim.InScope(call.path)) {
					continue // the planted cookie is not sent there
				}
				if r.Status != 401 {
					t.Errorf("%s with two %s: %d %s, want 401", call.name, slot.name, r.Status, r.Body)
				}
			}
		}
	}
	b := victim.Clone()
	planted := *attacker.Cookie("example-at")
	planted.Path = "/oauth-agent"
	b.Cookies["example-at|/oauth-agent"] = &planted
	r := a.call(b, "POST", "/oauth-agent/login/start", nil)
	cleared := map[string]bool{}
	for _, c := range r.SetCookies {
		if c.MaxAge < 0 {
			cleared[c.Name+"|"+c.Path] = true
		}
	}
	for _, want := range []string{"example-at|/oauth-agent", "example-at|/", "example-auth|/oauth-agent/refresh", "example-csrf|/", "example-id|/oauth-agent"} {
		if !cleared[want] {
			t.Errorf("login/start did not clear %s (cleared %v)", want, cleared)
		}
	}
	if b.Cookie("example-login") == nil {
		t.Error("login/start did not set the login cookie after clearing")
	}
}

// TestMaxLifetime: a session older than session.max_lifetime is refused
// with session_expired at every endpoint, and its cookies cleared.
func TestMaxLifetime(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.Session.MaxLifetime = time.Hour })
	b := a.spa()
	a.login(b)
	if r := a.call(b.Clone(), "GET", "/oauth-agent/userInfo", nil); r.Status != 200 {
		t.Fatalf("userInfo: %d", r.Status)
	}
	a.clock.advance(time.Hour + time.Second)
	for _, call := range agentCalls {
		c := b.Clone()
		r := a.call(c, call.method, call.path, call.body)
		if r.Status != 401 || r.Code() != "session_expired" {
			t.Errorf("%s after max_lifetime: %d %s, want 401 session_expired", call.name, r.Status, r.Body)
		}
		if c.Cookie("example-at") != nil {
			t.Errorf("%s after max_lifetime left the access-token cookie", call.name)
		}
	}
}

// TestNewLoginNewSession: every login mints a new session ID and a new CSRF
// token; a CSRF cookie planted before the login does not survive it.
func TestNewLoginNewSession(t *testing.T) {
	a := startAgent(t, nil)
	attacker, b := a.spa(), a.spa()
	a.login(attacker)
	b.Cookies["example-csrf|/"] = attacker.Cookie("example-csrf")
	a.login(b)
	_, first := a.openEnv(b, "example-at")
	if b.CSRF == attacker.CSRF || a.open(b, "example-csrf") == attacker.CSRF {
		t.Error("the planted CSRF token survived the login")
	}
	for _, s := range tokenSlots {
		if _, env := a.openEnv(b, s.name); env.ID != first.ID || env.Started != first.Started {
			t.Errorf("%s belongs to another session than example-at", s.name)
		}
	}
	csrf := b.CSRF
	a.login(b)
	if _, env := a.openEnv(b, "example-at"); env.ID == first.ID || b.CSRF == csrf {
		t.Error("a second login kept the session ID or the CSRF token")
	}
}

// TestRefreshKeepsIdentity: an ID token for another subject at refresh ends
// the session; login refuses ID tokens without sub or iat.
func TestRefreshKeepsIdentity(t *testing.T) {
	a := startAgent(t, nil)
	b := a.spa()
	a.login(b)
	a.as.Set(func(f *astest.Faults) { f.IDTokenSubject = "someone-else" })
	r := a.call(b, "POST", "/oauth-agent/refresh", nil)
	if r.Status != 401 || r.Code() != "session_expired" || b.Cookie("example-at") != nil {
		t.Errorf("refresh to another subject: %d %s, cookies %v", r.Status, r.Body, b.Cookies)
	}
	for name, fault := range map[string]func(*astest.Faults){
		"no sub": func(f *astest.Faults) { f.IDTokenSubject = ""; f.IDTokenNoSubject = true },
		"no iat": func(f *astest.Faults) { f.IDTokenNoSubject = false; f.IDTokenNoIssuedAt = true },
	} {
		a.as.Set(fault)
		b := a.spa()
		start := a.call(b, "POST", "/oauth-agent/login/start", nil)
		redirect, err := a.as.Authorize(start.JSON()["authorizationRequestUrl"].(string))
		if err != nil {
			t.Fatal(err)
		}
		end := a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()})
		if end.Status != 400 || end.Code() != "invalid_request" || b.Cookie("example-at") != nil {
			t.Errorf("login with an ID token with %s: %d %s", name, end.Status, end.Body)
		}
	}
}

// TestLegacySessionMovesToV2: during a migration (cookie.format v2,
// cookie.accept [v1]) a v1 session keeps working and its first refresh
// rewrites all four cookies in v2 under one new session.
func TestLegacySessionMovesToV2(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.CookieFormat = crypto.FormatV1 })
	b := a.spa()
	a.login(b)
	if c := b.Cookie("example-at"); c == nil || firstByte(c.Value) != 0x01 {
		t.Fatalf("not a v1 cookie: %v", c)
	}
	cfg := *a.cfg
	cfg.CookieFormat, cfg.CookieAccept = crypto.FormatV2, []crypto.Format{crypto.FormatV1}
	if err := a.agent.Reload(&cfg, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	if r := a.call(b, "GET", "/oauth-agent/userInfo", nil); r.Status != 200 {
		t.Fatalf("userInfo on a v1 session while migrating: %d", r.Status)
	}
	if r := a.call(b, "POST", "/oauth-agent/refresh", nil); r.Status != 204 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	_, env := a.openEnv(b, "example-at")
	for _, s := range tokenSlots {
		c := b.Cookie(s.name)
		if c == nil || firstByte(c.Value) != 0x02 {
			t.Errorf("%s is not v2 after the refresh", s.name)
			continue
		}
		if _, e := a.openEnv(b, s.name); e.ID != env.ID || e.ID == [16]byte{} {
			t.Errorf("%s has another session", s.name)
		}
	}
	if a.open(b, "example-csrf") != b.CSRF {
		t.Error("the CSRF token changed in the move")
	}
	// Without cookie.accept, v1 cookies are refused.
	cfg.CookieAccept = nil
	if err := a.agent.Reload(&cfg, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	v1 := a.spa()
	v1.Cookies["example-at|/"] = &http.Cookie{Name: "example-at", Path: "/", Value: mustSeal(t, a.cfg.Keys, "tok")}
	if r := a.call(v1, "GET", "/oauth-agent/userInfo", nil); r.Status != 401 {
		t.Errorf("a v1 cookie without cookie.accept: %d", r.Status)
	}
}

func mustSeal(t *testing.T, keys *crypto.Keyring, v string) string {
	t.Helper()
	c, err := keys.Seal(nil, []byte(v), crypto.FormatV1)
	if err != nil {
		t.Fatal(err)
	}
	return string(c)
}

// firstByte is the format byte of a cookie value.
func firstByte(v string) byte {
	raw, err := base64.RawURLEncoding.DecodeString(v[:min(len(v), 4)])
	if err != nil || len(raw) == 0 {
		return 0
	}
	return raw[0]
}
