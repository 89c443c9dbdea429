package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/agent/astest"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/metricstest"
	"github.com/tokenhandler/tokenhandler/revocation"
	"github.com/tokenhandler/tokenhandler/revocation/embedded"
)

// backchannelAnswer is the agent's answer to a back-channel logout.
type backchannelAnswer struct {
	status int
	header http.Header
	body   []byte
}

// postLogout POSTs body to the back-channel logout endpoint, as a Provider
// does: no Origin, no cookie.
func (a *testAgent) postLogout(contentType, body string) backchannelAnswer {
	a.t.Helper()
	req, err := http.NewRequest("POST", a.url+"/oauth-agent/backchannel-logout", strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if a.host != "" {
		req.Host = a.host
	}
	resp, b := bintest.Do(a.t, http.DefaultClient, req)
	return backchannelAnswer{resp.StatusCode, resp.Header, b}
}

// sendLogoutToken signs claims and posts them as logout_token.
func (a *testAgent) sendLogoutToken(claims map[string]any, how astest.Signing) (backchannelAnswer, string) {
	a.t.Helper()
	tok, form := a.logoutForm(claims, how)
	return a.postLogout("application/x-www-form-urlencoded", form), tok
}

// logoutForm signs claims and returns the token and the form that carries
// it as logout_token.
func (a *testAgent) logoutForm(claims map[string]any, how astest.Signing) (tok, form string) {
	a.t.Helper()
	tok, err := a.as.SignLogoutToken(claims, how)
	if err != nil {
		a.t.Fatal(err)
	}
	return tok, url.Values{"logout_token": {tok}}.Encode()
}

// metric returns the value of one series of the agent's metrics, or "".
func (a *testAgent) metric(series string) string {
	a.t.Helper()
	var b strings.Builder
	a.agent.metrics.set.WritePrometheus(&b)
	v, _ := metricstest.Sample(b.String(), series)
	return v
}

// wantLogoutRefused checks a refusal in the shape of Back-Channel Logout
// 1.0 §2.8, with a fixed description that quotes nothing of the request.
func wantLogoutRefused(t *testing.T, r backchannelAnswer, status int, code, token string) {
	t.Helper()
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if r.status != status || json.Unmarshal(r.body, &body) != nil || body.Error != code || body.Description == "" {
		t.Fatalf("answer %d %s, want %d with error %s", r.status, r.body, status, code)
	}
	if r.header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("headers %v", r.header)
	}
	if parts := strings.Split(token, "."); len(parts) == 3 && strings.Contains(string(r.body), parts[1]) {
		t.Fatal("the answer quotes the token")
	}
}

// TestBackchannelLogoutRefusesInvalidTokens: every check of §2.6 refuses a
// token that breaks it with 400 invalid_request, records nothing, counts
// it as invalid_token, and logs it without the token.
func TestBackchannelLogoutRefusesInvalidTokens(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.Log.Level = zerolog.InfoLevel })
	as := a.as
	cases := []struct {
		name   string
		change func(c map[string]any, now time.Time)
		how    astest.Signing
	}{
		{"bad signature", nil, astest.Signing{OtherKey: true}},
		{"alg none", nil, astest.Signing{Alg: "none"}},
		{"alg not allowed (RS512)", nil, astest.Signing{Alg: "RS512"}},
		{"typ of an access token", nil, astest.Signing{Typ: "at+jwt"}},
		{"wrong iss", func(c map[string]any, _ time.Time) { c["iss"] = "https://wrong-issuer.example" }, astest.Signing{}},
		{"wrong aud", func(c map[string]any, _ time.Time) { c["aud"] = "another-client" }, astest.Signing{}},
		{"no events", func(c map[string]any, _ time.Time) { delete(c, "events") }, astest.Signing{}},
		{"events without the back-channel member", func(c map[string]any, _ time.Time) {
			c["events"] = map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}
		}, astest.Signing{}},
		{"the back-channel event is not an object", func(c map[string]any, _ time.Time) {
			c["events"] = map[string]any{astest.BackchannelLogoutEvent: "yes"}
		}, astest.Signing{}},
		{"the back-channel event is null", func(c map[string]any, _ time.Time) {
			c["events"] = map[string]any{astest.BackchannelLogoutEvent: nil}
		}, astest.Signing{}},
		{"nonce present", func(c map[string]any, _ time.Time) { c["nonce"] = "n-0S6_WzA2Mj" }, astest.Signing{}},
		{"iat too old", func(c map[string]any, now time.Time) { c["iat"] = now.Add(-logoutTokenMaxAge - time.Minute).Unix() }, astest.Signing{}},
		{"iat in the future", func(c map[string]any, now time.Time) { c["iat"] = now.Add(2 * time.Minute).Unix() }, astest.Signing{}},
		{"no iat", func(c map[string]any, _ time.Time) { delete(c, "iat") }, astest.Signing{}},
		{"expired", func(c map[string]any, now time.Time) { c["exp"] = now.Add(-time.Minute).Unix() }, astest.Signing{}},
		{"no jti", func(c map[string]any, _ time.Time) { delete(c, "jti") }, astest.Signing{}},
		{"empty jti", func(c map[string]any, _ time.Time) { c["jti"] = "" }, astest.Signing{}},
		{"neither sid nor sub", func(c map[string]any, _ time.Time) { delete(c, "sid"); delete(c, "sub") }, astest.Signing{}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := a.clock.now()
			c := as.LogoutClaims(as.Subject(), "sid-1", now)
			if tc.change != nil {
				tc.change(c, now)
			}
			r, tok := a.sendLogoutToken(c, tc.how)
			wantLogoutRefused(t, r, 400, "invalid_request", tok)
			if got := a.metric(`oauth_agent_backchannel_logouts_total{result="invalid_token"}`); got != itoa(i+1) {
				t.Fatalf("invalid_token counted %q, want %d", got, i+1)
			}
		})
	}
	if n := a.agent.rev.set.Len(); n != 0 {
		t.Fatalf("%d entries recorded from invalid tokens", n)
	}
	logs := a.logs.String()
	if !strings.Contains(logs, `"result":"invalid_token"`) || !strings.Contains(logs, "back-channel logout refused") {
		t.Fatalf("no refusal logged:\n%s", logs)
	}
	if strings.Contains(logs, "eyJ") {
		t.Fatalf("a JWT in the log:\n%s", logs)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestBackchannelLogoutAccepts: tokens that §2.4 allows are recorded: no
// typ header, typ JWT, no exp, aud as an array, sub only, sid only.
func TestBackchannelLogoutAccepts(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.Log.Level = zerolog.InfoLevel })
	as := a.as
	cases := []struct {
		name     string
		sub, sid string
		change   func(c map[string]any)
		how      astest.Signing
	}{
		{"sid and sub, typ logout+jwt", as.Subject(), "s1", nil, astest.Signing{}},
		{"no typ", as.Subject(), "s2", nil, astest.Signing{Typ: "-"}},
		{"typ JWT", as.Subject(), "s3", nil, astest.Signing{Typ: "JWT"}},
		{"no exp", "", "s4", func(c map[string]any) { delete(c, "exp") }, astest.Signing{}},
		{"aud an array", "", "s5", func(c map[string]any) { c["aud"] = []string{"other", as.ClientID} }, astest.Signing{}},
		{"sub only", as.Subject(), "", nil, astest.Signing{}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := as.LogoutClaims(tc.sub, tc.sid, a.clock.now())
			if tc.change != nil {
				tc.change(c)
			}
			r, _ := a.sendLogoutToken(c, tc.how)
			if r.status != 200 || len(r.body) != 0 || r.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("answer %d %v %s, want 200, no-store, no body", r.status, r.header, r.body)
			}
			if got := a.metric(`oauth_agent_backchannel_logouts_total{result="ok"}`); got != itoa(i+1) {
				t.Fatalf("ok counted %q, want %d", got, i+1)
			}
		})
	}
	if n := a.agent.rev.set.Len(); n != 6 {
		t.Fatalf("%d entries, want 6", n)
	}
	if !strings.Contains(a.logs.String(), "back-channel logout recorded") {
		t.Fatalf("no success logged:\n%s", a.logs.String())
	}
}

// TestBackchannelLogoutReplay: a jti is accepted once; the same token again
// is refused with 400.
func TestBackchannelLogoutReplay(t *testing.T) {
	a := startAgent(t, nil)
	tok, form := a.logoutForm(a.as.LogoutClaims(a.as.Subject(), "sid-1", a.clock.now()), astest.Signing{})
	if r := a.postLogout("application/x-www-form-urlencoded", form); r.status != 200 {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	wantLogoutRefused(t, a.postLogout("application/x-www-form-urlencoded", form), 400, "invalid_request", tok)
	if got := a.metric(`oauth_agent_backchannel_logouts_total{result="replayed"}`); got != "1" {
		t.Fatalf("replayed counted %q", got)
	}
}

// TestBackchannelLogoutRequests: what is not a form POST with one
// logout_token is refused before any token is looked at.
func TestBackchannelLogoutRequests(t *testing.T) {
	a := startAgent(t, nil)
	tok, form := a.logoutForm(a.as.LogoutClaims(a.as.Subject(), "sid-1", a.clock.now()), astest.Signing{})
	cases := []struct {
		name, contentType, body string
		status                  int
	}{
		{"JSON", "application/json", `{"logout_token":"` + tok + `"}`, 400},
		{"no content type", "", form, 400},
		{"text", "text/plain", form, 400},
		{"a longer media type", "application/x-www-form-urlencoded-not", form, 400},
		{"no logout_token", "application/x-www-form-urlencoded", "token=" + tok, 400},
		{"empty logout_token", "application/x-www-form-urlencoded", "logout_token=", 400},
		{"two logout_tokens", "application/x-www-form-urlencoded", form + "&" + form, 400},
		{"not a JWT", "application/x-www-form-urlencoded", "logout_token=abc", 400},
		{"oversized", "application/x-www-form-urlencoded", form + "&pad=" + strings.Repeat("x", maxLogoutBody), 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantLogoutRefused(t, a.postLogout(tc.contentType, tc.body), tc.status, "invalid_request", tok)
		})
	}
	if got := a.metric(`oauth_agent_backchannel_logouts_total{result="too_large"}`); got != "1" {
		t.Fatalf("too_large counted %q", got)
	}
	if got := a.metric(`oauth_agent_backchannel_logouts_total{result="malformed"}`); got != "7" {
		t.Fatalf("malformed counted %q", got)
	}
	// The media type in any case and with a charset parameter is allowed,
	// and the token still valid.
	if r := a.postLogout("Application/X-WWW-Form-URLEncoded; charset=UTF-8", form); r.status != 200 {
		t.Fatalf("with charset: %d %s", r.status, r.body)
	}
	if r := a.agent.rev.set.Len(); r != 1 {
		t.Fatalf("%d entries, want 1", r)
	}
	// Not a method of the endpoint.
	req, _ := http.NewRequest("GET", a.url+"/oauth-agent/backchannel-logout", nil)
	if resp, _ := bintest.Do(t, http.DefaultClient, req); resp.StatusCode != 405 {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}

// TestBackchannelLogoutRateLimit: junk never spends the rate limit (an
// attacker's review: 205 junk POSTs turned the Provider's next valid token
// away with 429); past the burst of signed tokens, requests get 429 with
// Retry-After until the bucket refills.
func TestBackchannelLogoutRateLimit(t *testing.T) {
	a := startAgent(t, nil)
	for i := range 5 * backchannelBurst {
		if r := a.postLogout("application/x-www-form-urlencoded", "logout_token=abc"); r.status != 400 {
			t.Fatalf("junk request %d: %d %s, want 400", i, r.status, r.body)
		}
	}
	limited := 0
	for i := 0; i < 5*backchannelBurst && limited == 0; i++ {
		r, _ := a.sendLogoutToken(a.as.LogoutClaims(a.as.Subject(), fmt.Sprintf("sid-%d", i), a.clock.now()), astest.Signing{})
		switch r.status {
		case 200:
		case 429:
			limited = i
			wantLogoutRefused(t, r, 429, "temporarily_unavailable", "")
			if r.header.Get("Retry-After") != "1" {
				t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
			}
		default:
			t.Fatalf("token %d: %d %s", i, r.status, r.body)
		}
	}
	if limited < backchannelBurst {
		t.Fatalf("limited after %d signed tokens, want at least the burst of %d", limited, backchannelBurst)
	}
	if got := a.metric(`oauth_agent_backchannel_logouts_total{result="rate_limited"}`); got != "1" {
		t.Fatalf("rate_limited counted %q", got)
	}
}

func TestTokenBucket(t *testing.T) {
	b := &tokenBucket{rate: 2, burst: 3, tokens: 3}
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if !b.allow(t0) {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	if b.allow(t0) || b.allow(t0.Add(400*time.Millisecond)) {
		t.Fatal("past the burst: allowed")
	}
	if !b.allow(t0.Add(500 * time.Millisecond)) {
		t.Fatal("after half a second at 2/s: refused")
	}
	if b.allow(t0.Add(500 * time.Millisecond)) {
		t.Fatal("one token refilled, two taken")
	}
	// A clock going back refills nothing.
	if b.allow(t0) {
		t.Fatal("a clock going back refilled")
	}
	later := t0.Add(time.Hour)
	for i := range 3 {
		if !b.allow(later) {
			t.Fatalf("after an hour: request %d of the burst refused", i)
		}
	}
	if b.allow(later) {
		t.Fatal("after an hour: more than the burst")
	}
}

func TestJTIMemory(t *testing.T) {
	m := &jtiMemory{seen: map[[32]byte]int64{}, max: 2}
	k := func(b byte) [32]byte { return [32]byte{b} }
	if m.reserve(k(1), 100, 10) != reserveOK || m.reserve(k(1), 100, 50) != reserveReplayed {
		t.Fatal("a jti is not remembered")
	}
	if m.reserve(k(2), 20, 10) != reserveOK {
		t.Fatal("second jti")
	}
	if m.reserve(k(3), 100, 15) != reserveFull {
		t.Fatal("full of live jtis: accepted a third")
	}
	// At 20 the second one expired: room again.
	if m.reserve(k(3), 100, 20) != reserveOK {
		t.Fatal("an expired jti is not forgotten when full")
	}
	m.release(k(3))
	if m.reserve(k(3), 100, 21) != reserveOK {
		t.Fatal("a released jti is still remembered")
	}
	// Expired: the same jti may come again (its token is too old by then).
	if m.reserve(k(1), 200, 100) != reserveOK {
		t.Fatal("an expired jti is refused as a replay")
	}
}

// flakyStore is a real embedded Log whose Revoke can be made to fail.
type flakyStore struct {
	*embedded.Log
	fail atomic.Bool
}

func (s *flakyStore) Revoke(ctx context.Context, e revocation.Entry) (revocation.Entry, error) {
	if s.fail.Load() {
		return e, errors.New("store down")
	}
	return s.Log.Revoke(ctx, e)
}

// newFlakyStore opens an embedded Log in memory.
func newFlakyStore(t *testing.T) *flakyStore {
	t.Helper()
	l, err := embedded.Open("", 12*time.Hour, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &flakyStore{Log: l}
}

// TestBackchannelLogoutStoreDown: a logout the store cannot record gets
// 503, so that the Provider retries; the retry of that very token is then
// recorded, not refused as a replay.
func TestBackchannelLogoutStoreDown(t *testing.T) {
	store := newFlakyStore(t)
	a := startAgent(t, func(c *Config) { c.RevocationStore = store })
	tok, form := a.logoutForm(a.as.LogoutClaims(a.as.Subject(), "sid-1", a.clock.now()), astest.Signing{})
	store.fail.Store(true)
	wantLogoutRefused(t, a.postLogout("application/x-www-form-urlencoded", form), 503, "temporarily_unavailable", tok)
	if got := a.metric(`oauth_agent_backchannel_logouts_total{result="unavailable"}`); got != "1" {
		t.Fatalf("unavailable counted %q", got)
	}
	if !strings.Contains(a.logs.String(), "store down") {
		t.Fatalf("the store's error is not logged:\n%s", a.logs.String())
	}
	store.fail.Store(false)
	if r := a.postLogout("application/x-www-form-urlencoded", form); r.status != 200 {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
}
