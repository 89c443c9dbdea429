package integration

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/optest"
	"github.com/tokenhandler/tokenhandler/internal/spatest"
)

// propagationBound is how soon after the Provider's logout every proxy
// must refuse the session (issue #13: ≤ 1 s at p99).
const propagationBound = time.Second

// TestBackchannelLogoutWithOIDCProvider is OpenID Connect Back-Channel
// Logout 1.0 end to end with the built binaries behind NGINX in both modes
// and the certified oidc-provider, which has the agent's
// /oauth-agent/backchannel-logout registered as spa-client's
// backchannel_logout_uri (with backchannel_logout_session_required, so
// that ID tokens carry sid). The agent keeps the embedded revocation store
// under a state_dir; both proxies follow its feed.
//
// alice logs in from two browsers (two sessions at the Provider) and bob
// from a third. alice's first session ends at the Provider (its end-session
// page, confirmed as a browser would); the Provider POSTs the agent a
// logout token with that session's sid; within a second that browser's API
// calls get 401 from both proxies and the agent answers it
// session_expired, clearing its cookies, while alice's second browser and
// bob go on. Then a logout token that names only sub=alice (what an
// administrator's "log out everywhere" sends) ends alice's second browser
// too, and bob still goes on. Last, 50 more logins and Provider logouts
// measure how long the proxies take to refuse (p50, p99).
func TestBackchannelLogoutWithOIDCProvider(t *testing.T) {
	bins := buildDaemons(t)
	ngx := nginxBinary(t)
	agentAddr := bintest.FreeTCPAddr(t)
	op := startOIDCProviderWithBackchannel(t, "http://"+agentAddr+"/oauth-agent/backchannel-logout")
	s := startStack(t, op, bins, ngx, stackOptions{revocation: true, agentAddr: agentAddr})

	apis := []string{s.upstream + "/api/orders", s.authReq + "/api/orders"}
	works := func(who string, b *spatest.Browser) {
		t.Helper()
		for _, u := range apis {
			if r := b.Call("GET", u, nil); r.Status != 200 {
				t.Errorf("%s: GET %s: %d %s, want 200", who, u, r.Status, r.Body)
			}
		}
		if r := b.Call("GET", s.upstream+"/oauth-agent/userInfo", nil); r.Status != 200 {
			t.Errorf("%s: userInfo: %d %s, want 200", who, r.Status, r.Body)
		}
	}
	// ended checks that b's session is over everywhere: both proxies
	// refuse it within propagationBound of since, and then the agent
	// answers session_expired and clears its cookies.
	ended := func(who string, b *spatest.Browser, since time.Time) {
		t.Helper()
		for _, u := range apis {
			if d := untilRefused(t, b, u, since.Add(propagationBound)); d < 0 {
				t.Errorf("%s: GET %s still passes %v after the logout", who, u, propagationBound)
			}
		}
		r := b.Call("GET", s.upstream+"/oauth-agent/userInfo", nil)
		if r.Status != 401 || r.Code() != "session_expired" {
			t.Errorf("%s: userInfo after the logout: %d %s, want 401 session_expired", who, r.Status, r.Body)
		}
		for _, c := range b.Cookies {
			if strings.HasSuffix(c.Name, "-at") || strings.HasSuffix(c.Name, "-auth") {
				t.Errorf("%s: cookie %s survived session_expired", who, c.Name)
			}
		}
	}

	uaAlice1, uaAlice2, uaBob := newOPUserAgent(t, op), newOPUserAgent(t, op), newOPUserAgent(t, op)
	alice1 := s.loginWith(t, uaAlice1, "alice")
	alice2 := s.loginWith(t, uaAlice2, "alice")
	bob := s.loginWith(t, uaBob, "bob")
	works("alice's first browser", alice1)
	works("alice's second browser", alice2)
	works("bob", bob)
	if t.Failed() {
		t.FailNow()
	}

	// alice's first Provider session ends at the Provider.
	mark := op.Mark()
	start := time.Now()
	endOPSession(t, uaAlice1, op)
	op.WaitFor(t, mark, "backchannel.success", 1)
	ended("alice's first browser", alice1, start)
	works("alice's second browser", alice2)
	works("bob", bob)

	// Every session of alice: a logout token with sub and no sid.
	mark = op.Mark()
	start = time.Now()
	adminLogoutEverywhere(t, op, "alice")
	op.WaitFor(t, mark, "backchannel.success", 1)
	ended("alice's second browser", alice2, start)
	works("bob", bob)
	if n := op.Count(0, "backchannel.error"); n != 0 {
		t.Errorf("the agent refused %d logout tokens", n)
	}
	for _, ops := range s.proxyOps {
		if code, body, err := bintest.Get(&http.Client{Timeout: 2 * time.Second}, ops+"/metrics"); err != nil || code != 200 ||
			!strings.Contains(body, `oauth_proxy_denied_total{reason="session_revoked"}`) {
			t.Errorf("%s/metrics: %d %v; want oauth_proxy_denied_total{reason=\"session_revoked\"}", ops, code, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Propagation: from the confirmation of the logout at the Provider to
	// the first 401 of the proxy in upstream mode, polled every 2 ms.
	// The Provider waits for the agent's answer before it answers the
	// browser, so acked (the confirmation's answer) is after the agent
	// recorded the revocation.
	const logouts = 50
	var sinceConfirm, sinceAck []time.Duration
	for i := range logouts {
		ua := newOPUserAgent(t, op)
		b := s.loginWith(t, ua, "carol")
		if r := b.Call("GET", s.proxyURL+"/api/orders", nil); r.Status != 200 {
			t.Fatalf("logout %d: the new session's API call: %d", i, r.Status)
		}
		mark := op.Mark()
		refused := make(chan time.Time, 1)
		start := time.Now()
		go func() { refused <- pollUntilRefused(b, s.proxyURL+"/api/orders", start.Add(5*time.Second)) }()
		endOPSession(t, ua, op)
		acked := time.Now()
		at := <-refused
		op.WaitFor(t, mark, "backchannel.success", 1)
		if at.IsZero() {
			t.Fatalf("logout %d: the proxy still let the session through 5 s after the logout", i)
		}
		sinceConfirm = append(sinceConfirm, at.Sub(start))
		sinceAck = append(sinceAck, max(0, at.Sub(acked)))
	}
	p50c, p99c := percentiles(sinceConfirm)
	p50a, p99a := percentiles(sinceAck)
	t.Logf("propagation over %d Provider logouts: confirmation → proxy 401 p50 %v p99 %v; agent's acknowledgement → proxy 401 p50 %v p99 %v",
		logouts, p50c, p99c, p50a, p99a)
	if p99c > propagationBound {
		t.Errorf("p99 of the propagation is %v, want ≤ %v", p99c, propagationBound)
	}
}

// startOIDCProviderWithBackchannel is startOIDCProvider with uri
// registered as spa-client's backchannel_logout_uri.
func startOIDCProviderWithBackchannel(t *testing.T, uri string) *oidcProvider {
	t.Helper()
	secret := "s3cr:t +/=%&" + rand.Text()
	return &oidcProvider{optest.Start(t, optest.Options{ClientSecret: secret, RedirectURI: spaOrigin + "/", BackchannelLogoutURI: uri}), secret}
}

// endOPSession ends ua's session at the Provider as a browser does: its
// end-session endpoint, then "Yes, sign me out" on its page. The
// Provider sends the back-channel logout before it answers.
func endOPSession(t *testing.T, ua *opUserAgent, op *oidcProvider) {
	t.Helper()
	back := ua.logout(t, op.Issuer+"/session/end?client_id=spa-client")
	if !ua.onOP(back) || !strings.HasPrefix(back.Path, "/session/end/success") {
		t.Fatalf("after the logout the Provider sent the browser to %s, want its success page", back.Redacted())
	}
}

// adminLogoutEverywhere makes the Provider send spa-client a logout token
// that names sub and no sid (integration/op/server.mjs's
// /admin/logout-everywhere).
func adminLogoutEverywhere(t *testing.T, op *oidcProvider, sub string) {
	t.Helper()
	resp, err := http.PostForm(op.Issuer+"/admin/logout-everywhere", url.Values{"sub": {sub}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("admin logout of %s: %s, want 204 (the agent acknowledged)", sub, resp.Status)
	}
}

// untilRefused calls u with b's cookies until it answers 401 or deadline
// passes, and returns how long that took, or -1.
func untilRefused(t *testing.T, b *spatest.Browser, u string, deadline time.Time) time.Duration {
	t.Helper()
	start := time.Now()
	at := pollUntilRefused(b, u, deadline)
	if at.IsZero() {
		return -1
	}
	return at.Sub(start)
}

var pollClient = &http.Client{Timeout: 2 * time.Second}

// pollUntilRefused GETs u with the cookies b sends there, every 2 ms, and
// returns when an answer was 401, or the zero time once deadline passed.
// It does not touch b, so that it may run beside the test's goroutine.
func pollUntilRefused(b *spatest.Browser, u string, deadline time.Time) time.Time {
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		return time.Time{}
	}
	var pairs []string
	for _, c := range b.InScope(req.URL.Path) {
		pairs = append(pairs, c.Name+"="+c.Value)
	}
	req.Header.Set("Cookie", strings.Join(pairs, "; "))
	req.Header.Set("Origin", b.Origin)
	var at time.Time
	bintest.Poll(context.Background(), time.Until(deadline), 2*time.Millisecond, "", func() bool {
		if resp, err := pollClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				at = time.Now()
			}
		}
		return !at.IsZero()
	})
	return at
}

// percentiles returns the median and the 99th percentile (nearest rank).
func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return rank(0.50), rank(0.99)
}
