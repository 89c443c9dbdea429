package integration

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/spatest"
)

// The token cookies of a session, by slot.
const (
	slotAT   = "example-at"
	slotAuth = "example-auth"
	slotID   = "example-id"
	slotCSRF = "example-csrf"
)

var attackSlots = []string{slotAT, slotAuth, slotID, slotCSRF}

// TestAttacks is issue #11's attacks, tried as an attacker would against
// the built oauth-agent and oauth-proxy behind real NGINX in both modes,
// with oidc-provider as the OpenID Provider and an API that records the
// Authorization header it receives. A victim and an attacker log in on the
// OP's pages; then, in the default cookie format (v2):
//
//  1. every token cookie of the victim in every token slot of the
//     attacker's session, at login/end, userInfo, claims, refresh, logout,
//     the proxy in both modes (GET and POST) and the auth endpoint: no
//     plaintext of the victim in any answer or at the API, and 401 where
//     the call needs the slot;
//  2. the victim's pre-rotation refresh cookie replayed with the attacker's
//     CSRF pair, after logout and after a later refresh: 401; the victim's
//     own second tab within the grace: 204;
//  3. a cookie name twice: 401 at the agent and the proxy;
//  4. a session older than session.max_lifetime (minted with thctl): 401 at
//     the proxy, 401 session_expired at the agent;
//
// and with cookie.format v1 on both, the agent's echo oracles stay closed
// (the proxy's slot swapping is v1's documented limit).
func TestAttacks(t *testing.T) {
	fx := newFixture(t)

	t.Run("v2", func(t *testing.T) {
		s := fx.stack(t, stackOptions{format: "v2"})
		victim, attacker := s.loginAll(t, "victim"), s.loginAll(t, "attacker")
		s.checkOwnSessions(t, victim, attacker)
		secrets := s.secrets(t, victim)
		t.Run("slot swapping", func(t *testing.T) { s.slotSwapping(t, victim, attacker, secrets) })
		t.Run("duplicate cookie names", func(t *testing.T) { s.duplicates(t, victim, attacker) })
		t.Run("max_lifetime", func(t *testing.T) { s.maxLifetime(t, s.loginAll(t, "carol")) })
		t.Run("grace replay", func(t *testing.T) { s.graceReplay(t, victim, attacker) })
	})
	t.Run("v1", func(t *testing.T) {
		s := fx.stack(t, stackOptions{format: "v1"})
		victim, attacker := s.loginAll(t, "victim"), s.loginAll(t, "attacker")
		s.checkOwnSessions(t, victim, attacker)
		s.echoOraclesV1(t, victim, attacker, s.secrets(t, victim))
	})
}

// loginAll is login, and fails t unless the login wrote every token
// cookie of attackSlots.
func (s *binStack) loginAll(t *testing.T, user string) *spatest.Browser {
	t.Helper()
	b := s.login(t, user)
	for _, slot := range attackSlots {
		if b.Cookie(slot) == nil {
			t.Fatalf("the login of %s wrote no %s", user, slot)
		}
	}
	return b
}

// open returns the plaintext of a cookie value, opened by thctl with the
// stack's key in whatever format it is.
func (s *binStack) open(t *testing.T, value string) string {
	t.Helper()
	cmd := exec.Command(thctlPath, "open", "-key", s.key)
	cmd.Stdin = strings.NewReader(value)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("thctl open: %v", err)
	}
	return strings.TrimSuffix(string(out), "\n")
}

// secrets returns the plaintexts of b's token cookies, and the payload of
// each JWT among them, by slot.
func (s *binStack) secrets(t *testing.T, b *spatest.Browser) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, slot := range attackSlots {
		v := s.open(t, b.Cookie(slot).Value)
		if len(v) < 16 {
			t.Fatalf("%s opens to %d bytes", slot, len(v))
		}
		out[slot] = []string{v}
		if parts := strings.Split(v, "."); len(parts) == 3 {
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			out[slot] = append(out[slot], parts[1], string(payload))
		}
	}
	return out
}

// allSecrets flattens secrets.
func allSecrets(secrets map[string][]string) []string {
	var all []string
	for _, slot := range attackSlots {
		all = append(all, secrets[slot]...)
	}
	return all
}

// withSlot returns a tab of b whose cookie in slot holds value.
func withSlot(t *testing.T, b *spatest.Browser, slot, value string) *spatest.Browser {
	t.Helper()
	c := b.Clone()
	for _, ck := range c.Cookies {
		if ck.Name == slot {
			ck.Value = value
			return c
		}
	}
	t.Fatalf("no cookie %s", slot)
	return nil
}

// attackCall is one request of the attacker and the token cookies it
// cannot do without.
type attackCall struct {
	name   string
	method string
	url    string
	body   any
	extra  func(b *spatest.Browser) []string // extra headers
	needs  []string
	// proxy: the call reaches the API when it passes.
	proxy bool
}

// calls returns every call of the slot-swapping matrix: the agent's
// endpoints through NGINX, the API through NGINX in both modes, and the
// auth endpoint of the auth_request-mode proxy directly.
func (s *binStack) calls() []attackCall {
	pageLoad := map[string]string{"pageUrl": spaOrigin + "/"}
	original := func(method string) func(b *spatest.Browser) []string {
		return func(b *spatest.Browser) []string {
			h := []string{"X-Original-Method", method, "X-Original-URI", "/api/orders"}
			if method != "GET" {
				h = append(h, b.CSRFHeader, b.CSRF)
			}
			return h
		}
	}
	calls := []attackCall{
		{name: "login/end page load", method: "POST", url: s.upstream + "/oauth-agent/login/end", body: pageLoad},
		{name: "userInfo", method: "GET", url: s.upstream + "/oauth-agent/userInfo", needs: []string{slotAT}},
		{name: "claims", method: "GET", url: s.upstream + "/oauth-agent/claims", needs: []string{slotID}},
		{name: "refresh", method: "POST", url: s.upstream + "/oauth-agent/refresh", needs: []string{slotAuth, slotCSRF}},
		{name: "logout", method: "POST", url: s.upstream + "/oauth-agent/logout", needs: []string{slotAT, slotCSRF}},
	}
	for _, mode := range []struct{ name, base string }{{"upstream", s.upstream}, {"auth_request", s.authReq}} {
		calls = append(calls,
			attackCall{name: "API GET, " + mode.name + " mode", method: "GET", url: mode.base + "/api/orders", needs: []string{slotAT}, proxy: true},
			attackCall{name: "API POST, " + mode.name + " mode", method: "POST", url: mode.base + "/api/orders", body: `{}`, needs: []string{slotAT, slotCSRF}, proxy: true})
	}
	return append(calls,
		attackCall{name: "auth endpoint for a GET", method: "GET", url: s.authURL, extra: original("GET"), needs: []string{slotAT}, proxy: true},
		attackCall{name: "auth endpoint for a POST", method: "GET", url: s.authURL, extra: original("POST"), needs: []string{slotAT, slotCSRF}, proxy: true})
}

func (c attackCall) do(b *spatest.Browser) spatest.Answer {
	b.T.Helper()
	var extra []string
	if c.extra != nil {
		extra = c.extra(b)
	}
	return b.Call(c.method, c.url, c.body, extra...)
}

// checkOwnSessions: each session works whole, so that the refusals below
// are the attacks' and not a broken stack's.
func (s *binStack) checkOwnSessions(t *testing.T, sessions ...*spatest.Browser) {
	t.Helper()
	for i, b := range sessions {
		at := s.open(t, b.Cookie(slotAT).Value)
		for _, c := range s.calls() {
			if c.name == "refresh" || c.name == "logout" {
				continue // they would change the session
			}
			mark := s.api.mark()
			r := c.do(b.Clone())
			if r.Status != 200 {
				t.Fatalf("session %d, its own cookies: %s: %d %s", i, c.name, r.Status, r.Body)
			}
			switch {
			case c.url == s.authURL:
				if r.Header.Get("Authorization") != "Bearer "+at {
					t.Fatalf("session %d: %s answered without its access token as the bearer", i, c.name)
				}
			case c.proxy:
				if got := s.api.since(mark); len(got) != 1 || got[0] != "Bearer "+at {
					t.Fatalf("session %d: %s: the API got %d calls, not one with the session's access token", i, c.name, len(got))
				}
			}
		}
	}
}

// slotSwapping is attack 1 in v2: every victim cookie in every slot of the
// attacker's session, at every call.
func (s *binStack) slotSwapping(t *testing.T, victim, attacker *spatest.Browser, secrets map[string][]string) {
	all := allSecrets(secrets)
	calls := s.calls()
	// Logout last: an attacker's logout that passed would end the
	// attacker's session for the calls after it.
	slices.SortStableFunc(calls, func(a, b attackCall) int {
		return boolInt(a.name == "logout") - boolInt(b.name == "logout")
	})
	n := 0
	for _, c := range calls {
		for _, slot := range attackSlots {
			for _, from := range attackSlots {
				b := withSlot(t, attacker, slot, victim.Cookie(from).Value)
				mark := s.api.mark()
				r := c.do(b)
				n++
				what := fmt.Sprintf("%s with the victim's %s in the attacker's %s slot", c.name, from, slot)
				if leak := r.Leak(all); leak != "" {
					t.Errorf("%s: the answer (%d) holds the victim's plaintext", what, r.Status)
				}
				for _, auth := range s.api.since(mark) {
					if slices.ContainsFunc(all, func(secret string) bool { return strings.Contains(auth, secret) }) {
						t.Errorf("%s: the API received the victim's token as the bearer (answer %d)", what, r.Status)
					}
				}
				if slices.Contains(c.needs, slot) && r.Status != 401 {
					t.Errorf("%s: %d %s, want 401", what, r.Status, r.Body)
				}
			}
		}
	}
	t.Logf("%d swapped requests", n)
}

// graceReplay is attack 2: the victim's refresh cookie of before a
// rotation, replayed by the attacker, by the victim's second tab, after
// logout and after a later refresh.
func (s *binStack) graceReplay(t *testing.T, victim, attacker *spatest.Browser) {
	refresh := s.upstream + "/oauth-agent/refresh"
	before := victim.Clone() // a second tab, or a thief's copy
	mark := s.op.Mark()
	if r := victim.Call("POST", refresh, nil); r.Status != 204 {
		t.Fatalf("the victim's refresh: %d %s", r.Status, r.Body)
	}
	s.op.WaitFor(t, mark, "grant.success refresh_token", 1)
	if s.open(t, victim.Cookie(slotAuth).Value) == s.open(t, before.Cookie(slotAuth).Value) {
		t.Fatal("the OP did not rotate the refresh token")
	}

	// The attacker, with the victim's pre-rotation P-auth and the
	// attacker's own CSRF cookie and header.
	thief := withSlot(t, attacker, slotAuth, before.Cookie(slotAuth).Value)
	if r := thief.Call("POST", refresh, nil); r.Status != 401 || len(r.SetCookies) > 0 && hasTokenCookie(r) {
		t.Errorf("the victim's pre-rotation P-auth with the attacker's CSRF pair: %d %s, want 401 and no cookies", r.Status, r.Body)
	}

	// The victim's own second tab, within the grace period: the result of
	// the refresh it raced.
	tab := before.Clone()
	if r := tab.Call("POST", refresh, nil); r.Status != 204 {
		t.Fatalf("the victim's second tab within the grace: %d %s, want 204", r.Status, r.Body)
	}
	if tab.Cookie(slotAT).Value == before.Cookie(slotAT).Value || s.open(t, tab.Cookie(slotAT).Value) != s.open(t, victim.Cookie(slotAT).Value) {
		t.Error("the second tab did not get the access token of the refresh it raced")
	}
	if n := s.op.Count(mark, "grant.success refresh_token"); n != 1 {
		t.Errorf("the OP ran %d refresh grants, want 1 (the second tab's came from the grace)", n)
	}

	// Logout: the pre-logout copy, and the pre-rotation one, are refused.
	preLogout := victim.Clone()
	if r := victim.Call("POST", s.upstream+"/oauth-agent/logout", nil); r.Status != 200 {
		t.Fatalf("the victim's logout: %d %s", r.Status, r.Body)
	}
	for name, b := range map[string]*spatest.Browser{"pre-logout": preLogout, "pre-rotation": before} {
		if r := b.Clone().Call("POST", refresh, nil); r.Status != 401 {
			t.Errorf("the victim's %s P-auth after logout: %d %s, want 401", name, r.Status, r.Body)
		}
	}

	// A later refresh drops the grace of the older token.
	again := s.loginAll(t, "victim")
	old := again.Clone()
	for range 2 {
		if r := again.Call("POST", refresh, nil); r.Status != 204 {
			t.Fatalf("refresh: %d %s", r.Status, r.Body)
		}
	}
	if r := old.Call("POST", refresh, nil); r.Status != 401 {
		t.Errorf("the P-auth of before two later refreshes: %d %s, want 401", r.Status, r.Body)
	}
}

// hasTokenCookie reports whether r sets a token cookie to a value.
func hasTokenCookie(r spatest.Answer) bool {
	for _, c := range r.SetCookies {
		if slices.Contains(attackSlots, c.Name) && c.Value != "" && c.MaxAge >= 0 {
			return true
		}
	}
	return false
}

// duplicates is attack 3: a token-handler cookie name twice, in either
// order, and a whole P-at beside a chunk P-at.0.
func (s *binStack) duplicates(t *testing.T, victim, attacker *spatest.Browser) {
	v, a := victim.Cookie(slotAT).Value, attacker.Cookie(slotAT).Value
	csrf := slotCSRF + "=" + attacker.Cookie(slotCSRF).Value
	for _, tc := range []struct{ name, cookie string }{
		{"P-at twice, the victim's first", slotAT + "=" + v + "; " + slotAT + "=" + a + "; " + csrf},
		{"P-at twice, the attacker's first", slotAT + "=" + a + "; " + slotAT + "=" + v + "; " + csrf},
		{"P-at and P-at.0", slotAT + "=" + a + "; " + slotAT + ".0=" + v + "; " + csrf},
		{"P-at.0 and P-at", slotAT + ".0=" + v + "; " + slotAT + "=" + a + "; " + csrf},
		{"P-csrf twice", slotAT + "=" + a + "; " + csrf + "; " + slotCSRF + "=" + victim.Cookie(slotCSRF).Value},
	} {
		for _, c := range s.calls() {
			if c.name != "userInfo" && !c.proxy {
				continue
			}
			b := spatest.New(t, spaOrigin)
			b.CSRF = attacker.CSRF
			var extra []string
			if c.extra != nil {
				extra = c.extra(b)
			}
			mark := s.api.mark()
			r := b.Call(c.method, c.url, c.body, append(extra, "Cookie", tc.cookie)...)
			if r.Status != 401 {
				t.Errorf("%s: %s: %d %s, want 401", tc.name, c.name, r.Status, r.Body)
			}
			if got := s.api.since(mark); len(got) > 0 {
				t.Errorf("%s: %s reached the API", tc.name, c.name)
			}
		}
	}
}

// maxLifetime is attack 4: cookies sealed with the deployment's key for a
// session that started 13 hours ago (session.max_lifetime is 12 h by
// default) and whose cookies have not expired, holding the live tokens of
// a session of fresh; the same minted for a session an hour old pass, so
// only the age is refused.
func (s *binStack) maxLifetime(t *testing.T, fresh *spatest.Browser) {
	at := s.open(t, fresh.Cookie(slotAT).Value)
	csrf := s.open(t, fresh.Cookie(slotCSRF).Value)
	now := time.Now()
	for _, tc := range []struct {
		name    string
		started time.Time
		expired bool
	}{
		{"an hour old", now.Add(-time.Hour), false},
		{"13 hours old", now.Add(-13 * time.Hour), true},
	} {
		session := ""
		mint := func(purpose, plaintext string) string {
			args := []string{"seal", "-key", s.key, "-format", "v2", "-purpose", purpose,
				"-started", strconv.FormatInt(tc.started.Unix(), 10), "-expires", strconv.FormatInt(now.Add(time.Hour).Unix(), 10)}
			if session != "" {
				args = append(args, "-session", session)
			}
			cmd := exec.Command(thctlPath, args...)
			cmd.Stdin = strings.NewReader(plaintext)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("thctl seal -purpose %s: %v: %s", purpose, err, stderr.String())
			}
			if session == "" {
				session, _ = strings.CutPrefix(strings.TrimSpace(stderr.String()), "session ")
			}
			return strings.TrimSpace(string(out))
		}
		b := spatest.New(t, spaOrigin)
		b.CSRF = csrf
		b.Cookies[slotAT+"|/"] = &http.Cookie{Name: slotAT, Value: mint("at", at), Path: "/"}
		b.Cookies[slotCSRF+"|/"] = &http.Cookie{Name: slotCSRF, Value: mint("csrf", csrf), Path: "/"}
		if len(session) != 32 {
			t.Fatalf("thctl printed no session ID (%d characters)", len(session))
		}
		for _, c := range s.calls() {
			if c.name != "userInfo" && !c.proxy {
				continue
			}
			mark := s.api.mark()
			r := c.do(b.Clone())
			reached := len(s.api.since(mark)) > 0
			switch {
			case !tc.expired && r.Status != 200:
				t.Errorf("%s: %s: %d %s, want 200", tc.name, c.name, r.Status, r.Body)
			case tc.expired && r.Status != 401:
				t.Errorf("%s: %s: %d %s, want 401", tc.name, c.name, r.Status, r.Body)
			case tc.expired && c.name == "userInfo" && r.Code() != "session_expired":
				t.Errorf("%s: userInfo: %s, want session_expired", tc.name, r.Body)
			case tc.expired && reached:
				t.Errorf("%s: %s reached the API", tc.name, c.name)
			}
		}
	}
}

// echoOraclesV1 is the v1 run: cookies without a purpose, where the agent
// still echoes nothing that does not have the right shape.
func (s *binStack) echoOraclesV1(t *testing.T, victim, attacker *spatest.Browser, secrets map[string][]string) {
	all := allSecrets(secrets)
	pageLoad := map[string]string{"pageUrl": spaOrigin + "/"}
	// The echoes exist: the attacker's own cookies come back as the
	// attacker's CSRF token and claims.
	if r := attacker.Clone().Call("POST", s.upstream+"/oauth-agent/login/end", pageLoad); r.Status != 200 || r.JSON()["csrf"] != attacker.CSRF {
		t.Fatalf("login/end page load with the attacker's own cookies: %d, not the attacker's CSRF token", r.Status)
	}
	if r := attacker.Clone().Call("GET", s.upstream+"/oauth-agent/claims", nil); r.Status != 200 || r.JSON()["sub"] != "attacker" {
		t.Fatalf("claims with the attacker's own cookies: %d %s", r.Status, r.Body)
	}
	// login/end echoes the CSRF slot.
	for _, from := range []string{slotAuth, slotAT, slotID} {
		r := withSlot(t, attacker, slotCSRF, victim.Cookie(from).Value).Call("POST", s.upstream+"/oauth-agent/login/end", pageLoad)
		if leak := r.Leak(all); leak != "" {
			t.Errorf("login/end with the victim's %s in the CSRF slot: the answer (%d) holds its plaintext", from, r.Status)
		}
	}
	// /claims echoes the ID-token slot.
	for _, from := range []string{slotAT, slotAuth, slotCSRF} {
		r := withSlot(t, attacker, slotID, victim.Cookie(from).Value).Call("GET", s.upstream+"/oauth-agent/claims", nil)
		if leak := r.Leak(all); leak != "" {
			t.Errorf("claims with the victim's %s in the ID-token slot: the answer (%d) holds the victim's plaintext", from, r.Status)
		}
	}
	// Logout puts the ID-token slot into id_token_hint: never a value that
	// is not an ID token, whatever sits in any slot. Each logout that
	// passes ends the attacker's session at the agent only; the cookies
	// are replayed from the copy.
	for _, slot := range attackSlots {
		for _, from := range attackSlots {
			if from == slot {
				continue // v1 cannot tell sessions apart: its documented limit
			}
			r := withSlot(t, attacker, slot, victim.Cookie(from).Value).Call("POST", s.upstream+"/oauth-agent/logout", nil)
			if leak := r.Leak(all); leak != "" {
				t.Errorf("logout with the victim's %s in the %s slot: the answer (%d) holds the victim's plaintext", from, slot, r.Status)
			}
			u, _ := r.JSON()["url"].(string)
			if u == "" {
				continue
			}
			hint := spatest.Query(t, u).Get("id_token_hint")
			if hint != "" && strings.Count(hint, ".") != 2 {
				t.Errorf("logout with the victim's %s in the %s slot: id_token_hint is not a JWT", from, slot)
			}
			for _, other := range []string{slotAT, slotAuth, slotCSRF} {
				if hint != "" && slices.Contains(secrets[other], hint) {
					t.Errorf("logout with the victim's %s in the %s slot: id_token_hint is the victim's %s", from, slot, other)
				}
			}
		}
	}
	// The victim's own session still works through the v1 proxy: the
	// refusals above were not a broken stack's.
	mark := s.api.mark()
	if r := victim.Clone().Call("GET", s.upstream+"/api/orders", nil); r.Status != 200 || len(s.api.since(mark)) != 1 {
		t.Errorf("the victim's own GET through the v1 proxy: %d", r.Status)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
