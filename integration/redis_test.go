package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/agent/astest"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/metricstest"
	"github.com/tokenhandler/tokenhandler/internal/redistest"
	"github.com/tokenhandler/tokenhandler/internal/spatest"
)

// TestRedisRevocation is revocation.store redis end to end with the built
// binaries: two agents and two proxies (each with a route to the recording
// API, called directly, without NGINX) share one real redis-server, and
// the agents' Provider is astest, which signs logout tokens and counts
// refresh grants.
//
//  1. A back-channel logout at agent A (a logout token naming the
//     session's sid) reaches both proxies within a second (401), and
//     agent B answers the session session_expired; another session goes
//     on.
//  2. Redis is killed: both proxies keep serving the other session, keep
//     refusing the revoked one, and their
//     oauth_proxy_revocation_stale_seconds rises above 1; a logout meanwhile
//     gets 503 from the agent (nothing recorded it). Redis comes back
//     empty: the gauges fall under 2, the Provider's retry of that logout
//     gets 200 and reaches both proxies within a second, and the first
//     revocation still holds (the followers keep their lists).
//  3. Two tabs of one session refresh at the same moment, one at each
//     agent: one refresh grant reaches the Provider, both answer 204, and
//     both tabs' new cookies pass the proxies.
func TestRedisRevocation(t *testing.T) {
	bins := buildDaemons(t)
	rds := redistest.Start(t)
	as := astest.New(t, astest.Options{RedirectURI: spaOrigin + "/"})
	redisYAML := fmt.Sprintf("revocation: {store: redis, redis: {address: %q}}\n", rds.Addr)
	s := startRevocationStack(t, bins, as, revocationStackOptions{agents: 2, agentYAML: redisYAML, proxyYAML: redisYAML})

	victim := s.login(t, 0, "victim-1")
	victimTab := victim.Clone() // keeps the cookies agent B clears below
	other := s.login(t, 1, "other-1")
	for _, b := range []*spatest.Browser{victim, other} {
		s.passes(t, b)
		if r := b.Call("GET", s.agents[1]+"/oauth-agent/userInfo", nil); r.Status != 200 {
			t.Fatalf("userInfo at agent B before the logout: %d %s", r.Status, r.Body)
		}
	}

	// 1. A back-channel logout at agent A.
	acked := s.backchannelLogout(t, 0, s.logoutToken(t, "victim-1"), http.StatusOK)
	s.refusedWithin(t, "the revoked session", victim, acked)
	if r := victim.Call("GET", s.agents[1]+"/oauth-agent/userInfo", nil); r.Status != 401 || r.Code() != "session_expired" {
		t.Errorf("userInfo at agent B after the logout at agent A: %d %s, want 401 session_expired", r.Status, r.Body)
	}
	s.passes(t, other)
	for _, ops := range s.proxyOps {
		if n := metric(t, ops, `oauth_proxy_denied_total{reason="session_revoked"}`); n < 1 {
			t.Errorf("%s: oauth_proxy_denied_total{reason=\"session_revoked\"} is %v, want ≥ 1", ops, n)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// 2. Redis goes away (SIGKILL, its data lost) and comes back empty.
	late := s.login(t, 0, "late-1")
	s.passes(t, late)
	lateToken := s.logoutToken(t, "late-1")
	rds.Kill()
	// Above 2, not just above 1: then a value under 2 below shows that the
	// follower heard from the new server, not that little time passed.
	staleAgent := "oauth_agent_revocation_stale_seconds"
	for _, ops := range append([]string{s.agentOps[0]}, s.proxyOps...) {
		name := "oauth_proxy_revocation_stale_seconds"
		if ops == s.agentOps[0] {
			name = staleAgent
		}
		bintest.Eventually(t, 10*time.Second, ops+" "+name+" above 2", func() bool {
			return metric(t, ops, name) > 2
		})
	}
	s.passes(t, other) // fail open: the proxies serve with the list they have
	s.refused(t, "the revoked session with Redis down", victimTab)
	// Nothing can record the logout: the agent says so, and the Provider
	// retries (OpenID Connect Back-Channel Logout 1.0 §2.8).
	s.backchannelLogout(t, 0, lateToken, http.StatusServiceUnavailable)
	s.passes(t, late)

	rds.Restart()
	for _, ops := range append([]string{s.agentOps[0]}, s.proxyOps...) {
		name := "oauth_proxy_revocation_stale_seconds"
		if ops == s.agentOps[0] {
			name = staleAgent
		}
		bintest.Eventually(t, 10*time.Second, ops+" "+name+" under 2 after Redis came back", func() bool {
			return metric(t, ops, name) < 2
		})
	}
	acked = s.backchannelLogout(t, 0, lateToken, http.StatusOK)
	s.refusedWithin(t, "the session revoked after Redis came back", late, acked)
	s.refused(t, "the session revoked before the outage", victimTab)
	s.passes(t, other)
	if t.Failed() {
		t.FailNow()
	}

	// 3. Two tabs, one session, one refresh at each agent at once.
	tabA := s.login(t, 0, "refresher-1")
	tabB := tabA.Clone()
	oldAT := tabA.Cookie("example-at").Value
	grants := as.Count("token:refresh_token")
	var status [2]int
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, tab := range []*spatest.Browser{tabA, tabB} {
		wg.Go(func() {
			tab.T = goroutineTB{t}
			<-start
			status[i] = tab.Call("POST", s.agents[i]+"/oauth-agent/refresh", nil).Status
		})
	}
	close(start)
	wg.Wait()
	if n := as.Count("token:refresh_token") - grants; n != 1 {
		t.Errorf("two agents refreshing one session at once sent %d refresh grants to the Provider, want 1", n)
	}
	for i, tab := range []*spatest.Browser{tabA, tabB} {
		tab.T = t
		if status[i] != http.StatusNoContent {
			t.Errorf("refresh at agent %c: %d, want 204", 'A'+i, status[i])
			continue
		}
		if tab.Cookie("example-at").Value == oldAT {
			t.Errorf("refresh at agent %c did not rewrite the access token cookie", 'A'+i)
		}
		s.passes(t, tab)
		if r := tab.Call("GET", s.agents[1-i]+"/oauth-agent/userInfo", nil); r.Status != 200 {
			t.Errorf("userInfo at the other agent after the refresh at agent %c: %d %s", 'A'+i, r.Status, r.Body)
		}
	}
	// The refresh token both tabs now hold is the one the Provider issued.
	if r := tabA.Call("POST", s.agents[0]+"/oauth-agent/refresh", nil); r.Status != 204 {
		t.Errorf("a later refresh: %d %s, want 204", r.Status, r.Body)
	}
	if n := as.Count("token:refresh_token") - grants; n != 2 {
		t.Errorf("after a later refresh the Provider saw %d refresh grants, want 2", n)
	}
}

// TestRevocationPropagation measures, for each revocation store, how long
// a back-channel logout takes to reach the proxies while one of them is
// under load: 32 goroutines GET an API through proxy 1 with a live session
// while 50 sessions, each new, are ended by a logout token posted to
// agent A; for each proxy it records the time from the agent's 200 to
// the session's first 401 (polled every 2 ms). It only runs with
// TH_MEASURE_PROPAGATION=1 (docs/benchmarks.md, "Revocation propagation").
func TestRevocationPropagation(t *testing.T) {
	if os.Getenv("TH_MEASURE_PROPAGATION") == "" {
		t.Skip("a measurement: set TH_MEASURE_PROPAGATION=1 to run it")
	}
	bins := buildDaemons(t)
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			as := astest.New(t, astest.Options{RedirectURI: spaOrigin + "/"})
			o := revocationStackOptions{agents: 1, feedFromAgent: true}
			if store == "redis" {
				rds := redistest.Start(t)
				o = revocationStackOptions{agents: 2}
				o.agentYAML = fmt.Sprintf("revocation: {store: redis, redis: {address: %q}}\n", rds.Addr)
				o.proxyYAML = o.agentYAML
			}
			s := startRevocationStack(t, bins, as, o)
			measurePropagation(t, s, store)
		})
	}
}

func measurePropagation(t *testing.T, s *revocationStack, store string) {
	const (
		logouts = 50
		workers = 32
	)
	loaded := s.login(t, 0, "load")
	s.passes(t, loaded)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var served, failed atomic.Int64
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: workers, Proxy: nil}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	cookie := cookieHeader(loaded, "/api/orders")
	loadStart := time.Now()
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", s.proxies[0]+"/api/orders", nil)
				req.Header.Set("Cookie", cookie)
				req.Header.Set("Origin", spaOrigin)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					served.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}

	took := make([][]time.Duration, len(s.proxies))
	early := 0
	for i := range logouts {
		sid := fmt.Sprintf("measure-%d", i)
		b := s.login(t, 0, sid)
		s.passes(t, b)
		tok := s.logoutToken(t, sid)
		refused := make([]chan time.Time, len(s.proxies))
		for j, p := range s.proxies {
			refused[j] = make(chan time.Time, 1)
			go func() { refused[j] <- pollUntilRefused(b, p+"/api/orders", time.Now().Add(5*time.Second)) }()
		}
		acked := s.backchannelLogout(t, 0, tok, http.StatusOK)
		for j := range s.proxies {
			at := <-refused[j]
			if at.IsZero() {
				t.Fatalf("logout %d: proxy %d still let the session through 5 s later", i, j+1)
			}
			if at.Before(acked) {
				early++
			}
			took[j] = append(took[j], max(0, at.Sub(acked)))
		}
	}
	elapsed := time.Since(loadStart)
	cancel()
	wg.Wait()
	for j := range s.proxies {
		p50, p99 := percentiles(took[j])
		t.Logf("%s: proxy %d (%s): agent's 200 → first 401 over %d logouts: p50 %v p99 %v",
			store, j+1, map[bool]string{true: "under load", false: "idle"}[j == 0], logouts, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
	}
	t.Logf("%s: %d refusals came before the agent's 200 had arrived (counted as 0); load: %d × 200 (%.0f/s), %d failures, in %v",
		store, early, served.Load(), float64(served.Load())/elapsed.Seconds(), failed.Load(), elapsed.Round(time.Millisecond))
	if failed.Load() != 0 {
		t.Errorf("%d of the load's requests failed", failed.Load())
	}
}

// revocationStackOptions shape a revocationStack.
type revocationStackOptions struct {
	agents int // how many agents; the proxies are always two
	// agentYAML and proxyYAML are appended to every agent's and to both
	// proxies' configuration files.
	agentYAML, proxyYAML string
	// feedFromAgent makes both proxies follow agent A's embedded feed.
	feedFromAgent bool
}

// revocationStack is agents and two proxies of the built binaries, called
// directly, with astest as their Provider; both proxies route /api/ to
// the recording API.
type revocationStack struct {
	as       *astest.Server
	agents   []string // http://host:port
	agentOps []string
	proxies  []string
	proxyOps []string
	client   *http.Client
}

func startRevocationStack(t *testing.T, bins daemons, as *astest.Server, o revocationStackOptions) *revocationStack {
	t.Helper()
	s := &revocationStack{as: as, client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}}
	api := startRecordingAPI(t)
	key := string(crypto.GenerateKey().AppendHex(nil))
	dir := t.TempDir()
	type started struct {
		p    *bintest.Process
		ops  string
		what string
	}
	var procs []started
	for i := range o.agents {
		addr, ops := bintest.FreeTCPAddr(t), bintest.FreeTCPAddr(t)
		s.agents, s.agentOps = append(s.agents, "http://"+addr), append(s.agentOps, "http://"+ops)
		file := filepath.Join(dir, fmt.Sprintf("oauth-agent-%d.yaml", i))
		bintest.WriteFile(t, file, fmt.Sprintf(`listen: %q
metrics_listen: %q
issuer: %q
client_id: %s
client_secret: %q
redirect_uri: %q
cookie: {prefix: example, format: v2}
encryption_keys: [%q]
trusted_web_origins: [%q]
timeouts: {as: 5s, shutdown: 2s}
log: {level: warn}
%s`, addr, ops, as.URL, as.ClientID, as.ClientSecret, as.RedirectURI, key, spaOrigin, o.agentYAML))
		procs = append(procs, started{bins.agent.Start(t, "-config", file), ops, "oauth-agent"})
	}
	proxyYAML := o.proxyYAML
	if o.feedFromAgent {
		proxyYAML += fmt.Sprintf("revocation: {feed: %q}\n", s.agentOps[0])
	}
	for i := range 2 {
		addr, ops := bintest.FreeTCPAddr(t), bintest.FreeTCPAddr(t)
		s.proxies, s.proxyOps = append(s.proxies, "http://"+addr), append(s.proxyOps, "http://"+ops)
		file := filepath.Join(dir, fmt.Sprintf("oauth-proxy-%d.yaml", i))
		bintest.WriteFile(t, file, fmt.Sprintf(`listen: %q
metrics_listen: %q
cookie: {prefix: example, format: v2}
encryption_keys: [%q]
trusted_web_origins: [%q]
routes: [{path_prefix: /api/, upstream: %q}]
timeouts: {upstream: 5s, shutdown: 2s}
log: {level: warn}
%s`, addr, ops, key, spaOrigin, "http://"+api.addr, proxyYAML))
		procs = append(procs, started{bins.proxy.Start(t, "-config", file), ops, "oauth-proxy"})
	}
	for _, p := range procs {
		p.p.Eventually(t, 20*time.Second, p.what+" /readyz", func() bool {
			code, _, err := bintest.Get(s.client, "http://"+p.ops+"/readyz")
			return err == nil && code == 200
		})
		noDeprecation(t, p.what, p.p.Stderr())
	}
	return s
}

// login logs a new browser in through agent i, as a user whose Provider
// session is sid (in its ID token).
func (s *revocationStack) login(t *testing.T, i int, sid string) *spatest.Browser {
	t.Helper()
	b := spatest.New(t, spaOrigin)
	start := b.Call("POST", s.agents[i]+"/oauth-agent/login/start", nil)
	authURL, _ := start.JSON()["authorizationRequestUrl"].(string)
	if start.Status != 200 || authURL == "" {
		t.Fatalf("login/start: %d %s", start.Status, start.Body)
	}
	// astest's session is its own, not the request's: logins are one at a
	// time.
	s.as.SetSession(sid)
	redirect, err := s.as.Authorize(authURL)
	if err != nil {
		t.Fatal(err)
	}
	end := b.Call("POST", s.agents[i]+"/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()})
	if end.Status != 200 || end.JSON()["isLoggedIn"] != true {
		t.Fatalf("login/end: %d %s", end.Status, end.Body)
	}
	b.CSRF, _ = end.JSON()["csrf"].(string)
	if b.Cookie("example-at") == nil {
		t.Fatal("the login wrote no access token cookie")
	}
	return b
}

// logoutToken is a valid logout token for the Provider session sid.
func (s *revocationStack) logoutToken(t *testing.T, sid string) string {
	t.Helper()
	tok, err := s.as.SignLogoutToken(s.as.LogoutClaims(s.as.Subject(), sid, time.Now()), astest.Signing{})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// backchannelLogout posts tok to agent i's back-channel logout endpoint,
// as the Provider does, fails t unless the answer is want, and returns when
// the answer arrived.
func (s *revocationStack) backchannelLogout(t *testing.T, i int, tok string, want int) time.Time {
	t.Helper()
	resp, err := s.client.PostForm(s.agents[i]+"/oauth-agent/backchannel-logout", url.Values{"logout_token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("back-channel logout at agent %c: %s, want %d", 'A'+i, resp.Status, want)
	}
	return at
}

// passes fails t unless both proxies let b's session through.
func (s *revocationStack) passes(t *testing.T, b *spatest.Browser) {
	t.Helper()
	for _, p := range s.proxies {
		if r := b.Call("GET", p+"/api/orders", nil); r.Status != 200 {
			t.Errorf("GET %s/api/orders: %d %s, want 200", p, r.Status, r.Body)
		}
	}
}

// refused fails t unless both proxies answer b's session 401.
func (s *revocationStack) refused(t *testing.T, who string, b *spatest.Browser) {
	t.Helper()
	for _, p := range s.proxies {
		if r := b.Call("GET", p+"/api/orders", nil); r.Status != 401 {
			t.Errorf("%s: GET %s/api/orders: %d %s, want 401", who, p, r.Status, r.Body)
		}
	}
}

// refusedWithin fails t unless both proxies refuse b's session within
// propagationBound of since.
func (s *revocationStack) refusedWithin(t *testing.T, who string, b *spatest.Browser, since time.Time) {
	t.Helper()
	for _, p := range s.proxies {
		at := pollUntilRefused(b, p+"/api/orders", since.Add(propagationBound))
		if at.IsZero() {
			t.Errorf("%s: GET %s/api/orders still passes %v after the logout", who, p, propagationBound)
			continue
		}
		t.Logf("%s: refused by %s %v after the agent's answer", who, p, max(0, at.Sub(since)).Round(10*time.Microsecond))
	}
}

// cookieHeader is the Cookie header b sends to path.
func cookieHeader(b *spatest.Browser, path string) string {
	var pairs []string
	for _, c := range b.InScope(path) {
		pairs = append(pairs, c.Name+"="+c.Value)
	}
	return strings.Join(pairs, "; ")
}

// metric returns the value of the sample named name (with its labels, as
// the page spells them) on the ops listener ops's /metrics, or -1 when it
// is not there.
func metric(t *testing.T, ops, name string) float64 {
	t.Helper()
	code, body, err := bintest.Get(&http.Client{Timeout: 2 * time.Second}, ops+"/metrics")
	if err != nil || code != 200 {
		t.Fatalf("%s/metrics: %d %v", ops, code, err)
	}
	if _, ok := metricstest.Sample(body, name); !ok {
		return -1
	}
	f, ok := metricstest.Value(body, name)
	if !ok {
		t.Fatalf("%s/metrics: %s is not a number", ops, name)
	}
	return f
}
