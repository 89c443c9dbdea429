package agent

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/agent/astest"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/redistest"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/internal/spatest"
	"github.com/tokenhandler/tokenhandler/revocation"
	"github.com/tokenhandler/tokenhandler/revocation/embedded"
	"github.com/tokenhandler/tokenhandler/session"
)

// logoutAtProvider sends a valid logout token naming sub and sid.
func (a *testAgent) logoutAtProvider(sub, sid string) {
	a.t.Helper()
	r, _ := a.sendLogoutToken(a.as.LogoutClaims(sub, sid, a.clock.now()), astest.Signing{})
	if r.status != 200 {
		a.t.Fatalf("back-channel logout: %d %s", r.status, r.body)
	}
}

// loginIn logs a new browser in within the provider session sid.
func (a *testAgent) loginIn(sid string) *spatest.Browser {
	a.t.Helper()
	a.as.SetSession(sid)
	b := a.spa()
	a.login(b)
	return b
}

// wantRevoked checks that every endpoint that reads a session refuses b's
// (each on a copy of b, since the first refusal clears its cookies): 401
// session_expired with every cookie cleared.
func wantRevoked(t *testing.T, a *testAgent, b *spatest.Browser) {
	t.Helper()
	for _, call := range []struct{ method, path string }{
		{"GET", "/oauth-agent/userInfo"},
		{"GET", "/oauth-agent/claims"},
		{"POST", "/oauth-agent/refresh"},
		{"POST", "/oauth-agent/logout"},
		{"POST", "/oauth-agent/login/end"}, // a page load
	} {
		c := b.Clone()
		r := a.call(c, call.method, call.path, nil)
		if r.Status != 401 || r.Code() != "session_expired" {
			t.Fatalf("%s %s: %d %s, want 401 session_expired", call.method, call.path, r.Status, r.Body)
		}
		for _, name := range []string{"example-at", "example-auth", "example-id", "example-csrf"} {
			if c.Cookie(name) != nil {
				t.Fatalf("%s %s: %s not cleared", call.method, call.path, name)
			}
		}
	}
}

func wantServed(t *testing.T, a *testAgent, b *spatest.Browser, who string) {
	t.Helper()
	if r := a.call(b.Clone(), "GET", "/oauth-agent/userInfo", nil); r.Status != 200 {
		t.Fatalf("%s: userInfo %d %s", who, r.Status, r.Body)
	}
	if r := a.call(b.Clone(), "POST", "/oauth-agent/refresh", nil); r.Status != 204 {
		t.Fatalf("%s: refresh %d %s", who, r.Status, r.Body)
	}
}

// TestRevokedBySID: a logout token with sid ends the sessions that began in
// that provider session, and only those.
func TestRevokedBySID(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.Log.Level = zerolog.InfoLevel })
	first := a.loginIn("sid-1")
	second := a.loginIn("sid-2")
	noSID := a.loginIn("")
	wantServed(t, a, first, "before the logout")

	a.logoutAtProvider(a.as.Subject(), "sid-1")
	wantRevoked(t, a, first)
	wantServed(t, a, second, "the user's other provider session")
	wantServed(t, a, noSID, "a session without sid")
	if got := a.metric(`oauth_agent_denied_total{reason="session_revoked"}`); got != "5" {
		t.Fatalf("session_revoked counted %q, want 5", got)
	}
	if got := a.metric("oauth_agent_revocation_entries"); got != "1" {
		t.Fatalf("entries gauge %q", got)
	}
	if !strings.Contains(a.logs.String(), `"reason":"session_revoked"`) {
		t.Fatalf("the refusal is not logged with its reason:\n%s", a.logs.String())
	}
}

// TestRevokedBySub: a logout token with sub alone ends every session of the
// user that started until then; a login after it is served.
func TestRevokedBySub(t *testing.T) {
	a := startAgent(t, nil)
	first := a.loginIn("sid-1")
	noSID := a.loginIn("")
	a.logoutAtProvider(a.as.Subject(), "")
	wantRevoked(t, a, first)
	wantRevoked(t, a, noSID)
	// Session starts are in seconds: a login in the same second as the
	// logout is ended with it.
	a.clock.advance(time.Second)
	wantServed(t, a, a.loginIn("sid-3"), "a login after the logout")
}

// TestSubRevocationEndsAtTheLogout: a sub-only logout ends the sessions
// started until the token's iat (plus the clock skew), not until it
// arrived: a retried or replayed token (another agent, or this one after a
// restart, has not seen its jti) must not end a session begun after the
// logout (an attacker's review replayed one 1.1 s after a new login).
func TestSubRevocationEndsAtTheLogout(t *testing.T) {
	a := startAgent(t, nil)
	logoutAt := a.clock.now()
	before := a.loginIn("sid-1")
	a.clock.advance(a.cfg.IDToken.ClockSkew + 5*time.Second)
	after := a.loginIn("sid-2")
	// The token was issued at logoutAt and arrives now, after the new login.
	r, _ := a.sendLogoutToken(a.as.LogoutClaims(a.as.Subject(), "", logoutAt), astest.Signing{})
	if r.status != 200 {
		t.Fatalf("back-channel logout: %d %s", r.status, r.body)
	}
	wantRevoked(t, a, before)
	wantServed(t, a, after, "a login after the token's iat")
}

// TestRevokedSurvivesRestart: with state_dir, the embedded store keeps what
// it recorded; an agent started on it anew still refuses the session.
func TestRevokedSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	as := astest.New(t, astest.Options{})
	a := startAgentWith(t, as, func(c *Config) {
		c.Revocation = settings.RevocationSettings{Store: settings.StoreEmbedded, StateDir: dir}
	})
	b := a.loginIn("sid-1")
	a.logoutAtProvider(as.Subject(), "sid-1")
	a.agent.Close()

	again := startAgentWith(t, as, func(c *Config) {
		c.Keys = a.cfg.Keys
		c.Revocation = settings.RevocationSettings{Store: settings.StoreEmbedded, StateDir: dir}
	})
	wantRevoked(t, again, b)
}

// stalledStore is an embedded Log that never reaches its set: a store that
// is down.
type stalledStore struct{ *embedded.Log }

func (s stalledStore) Follow(ctx context.Context, _ *revocation.Set) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestRevocationFailClosed: with fail_closed_after, a session that could be
// revoked gets 503 while the list is staler than that; it is served again
// once the list is current.
func TestRevocationFailClosed(t *testing.T) {
	l, err := embedded.Open("", 12*time.Hour, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	a := startAgent(t, func(c *Config) {
		c.RevocationStore = stalledStore{l}
		c.Revocation.FailClosedAfter = time.Minute
	})
	b := a.loginIn("sid-1")
	r := a.call(b.Clone(), "GET", "/oauth-agent/userInfo", nil)
	if r.Status != 503 || r.Code() != "server_error" {
		t.Fatalf("stale list: %d %s, want 503 server_error", r.Status, r.Body)
	}
	if got := a.metric(`oauth_agent_denied_total{reason="revocation_stale"}`); got != "1" {
		t.Fatalf("revocation_stale counted %q", got)
	}
	a.agent.rev.set.Synced(a.clock.now())
	wantServed(t, a, b, "with a current list")
	a.clock.advance(2 * time.Minute)
	if r := a.call(b.Clone(), "GET", "/oauth-agent/userInfo", nil); r.Status != 503 {
		t.Fatalf("two minutes later: %d %s", r.Status, r.Body)
	}
}

// TestRevocationStaleGauge: the embedded store keeps the agent's list
// current, and the gauge says how stale it is.
func TestRevocationStaleGauge(t *testing.T) {
	a := startAgent(t, nil)
	// The store's first answer may come a moment after the start on a busy
	// machine; until then the list is not known current.
	var v float64
	var err error
	if !bintest.Within(5*time.Second, func() bool {
		v, err = strconv.ParseFloat(a.metric("oauth_agent_revocation_stale_seconds"), 64)
		return err == nil && v >= 0 && v <= 5
	}) {
		t.Fatalf("stale gauge %v (%v), want a few seconds at most within 5 s of the start", v, err)
	}
	if got := a.metric("oauth_agent_revocation_entries"); got != "0" {
		t.Fatalf("entries gauge %q", got)
	}
}

// TestRevocationOff: with store off there is no back-channel endpoint and
// no check.
func TestRevocationOff(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.Revocation.Store = settings.StoreOff })
	b := a.loginIn("sid-1")
	r, _ := a.sendLogoutToken(a.as.LogoutClaims(a.as.Subject(), "sid-1", a.clock.now()), astest.Signing{})
	if r.status != 404 {
		t.Fatalf("back-channel logout with store off: %d %s", r.status, r.body)
	}
	wantServed(t, a, b, "store off")
}

// TestRevocationFeedOnOpsListener: the embedded store's feed is served on
// the metrics listener at /revocations, and has the entry recorded.
func TestRevocationFeedOnOpsListener(t *testing.T) {
	as := astest.New(t, astest.Options{})
	cfg := testConfig(as)
	cfg.Listen, cfg.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
	srv, err := NewServer(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	bintest.Serve(t, srv.Serve, srv.Shutdown)
	e := revocation.Entry{Kind: revocation.BySID, Digest: session.HashSID(as.URL, "sid-1"), At: time.Now().Unix(), Expires: time.Now().Add(time.Hour).Unix()}
	if err := srv.Agent.rev.record(e); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + srv.MetricsAddr().String() + "/revocations?after=0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"seq":1`) {
		t.Fatalf("feed: %d %s", resp.StatusCode, body)
	}
}

// TestParseConfigRevocation: the agent reads the shared revocation section;
// feed is the proxy's setting.
func TestParseConfigRevocation(t *testing.T) {
	configRequired := "issuer: https://login.example.com\nclient_id: spa-client\nclient_secret: s3cret\n" +
		"redirect_uri: http://www.example.localhost:3000/\ntrusted_web_origins: [\"http://www.example.localhost:3000\"]\n" +
		"encryption_keys: [\"" + string(crypto.GenerateKey().AppendHex(nil)) + "\"]\n"
	c, err := ParseConfig([]byte(configRequired+"revocation: {store: embedded, state_dir: /var/lib/tokenhandler, fail_closed_after: 1m}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := settings.RevocationSettings{Store: settings.StoreEmbedded, StateDir: "/var/lib/tokenhandler", FailClosedAfter: time.Minute}
	if c.Revocation != want {
		t.Fatalf("revocation %+v, want %+v", c.Revocation, want)
	}
	_, err = ParseConfig([]byte(configRequired+"revocation: {feed: http://127.0.0.1:9100}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "revocation.feed") {
		t.Fatalf("feed in the agent's file: %v", err)
	}
	_, err = ParseConfig([]byte(configRequired+"revocation: {store: off, state_dir: /x}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "revocation.state_dir") {
		t.Fatalf("state_dir with store off: %v", err)
	}
}

// TestRevokedBeforeFollowBringsIt: the agent that records a logout refuses
// the session at once, before its store's Follow brings the entry back
// (Redis's push takes a moment; here it never comes), and without moving
// the sequence number Follow resumes from.
func TestRevokedBeforeFollowBringsIt(t *testing.T) {
	l, err := embedded.Open("", 12*time.Hour, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	a := startAgent(t, func(c *Config) { c.RevocationStore = stalledStore{l} })
	b := a.loginIn("sid-1")
	a.logoutAtProvider(a.as.Subject(), "sid-1")
	wantRevoked(t, a, b)
	if seq := a.agent.rev.set.Seq(); seq != 0 {
		t.Fatalf("the set's Seq is %d: Follow would skip what it has not brought", seq)
	}
}

// TestRevokedAcrossAgentsOnRedis: two agents with revocation.store redis
// on one Redis; a back-channel logout at one ends the session at the
// other within a second, and the Redis store coordinates their refreshes
// (Config.Coordinator set from it).
func TestRevokedAcrossAgentsOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	as := astest.New(t, astest.Options{})
	onRedis := settings.RevocationSettings{Store: settings.StoreRedis, Redis: settings.RedisSettings{Address: srv.Addr, KeyPrefix: "th-test:"}}
	a := startAgentWith(t, as, func(c *Config) { c.Revocation = onRedis })
	b := startAgentWith(t, as, func(c *Config) {
		c.Keys = a.cfg.Keys
		c.Revocation = onRedis
	})
	if a.agent.table.Load().apps[0].cfg.Coordinator == nil {
		t.Fatal("revocation.store redis: no refresh coordinator")
	}
	browser := a.loginIn("sid-1")
	wantServed(t, b, browser, "at the other agent before the logout")
	start := time.Now()
	b.logoutAtProvider(as.Subject(), "sid-1")
	var r spatest.Answer
	if !bintest.Within(time.Until(start.Add(time.Second)), func() bool {
		r = a.call(browser.Clone(), "GET", "/oauth-agent/userInfo", nil)
		return r.Status == 401 && r.Code() == "session_expired"
	}) {
		t.Fatalf("a second after the logout at the other agent: %d %s", r.Status, r.Body)
	}
	t.Logf("revoked at the other agent after %v", time.Since(start))
	wantRevoked(t, a, browser)
}
