package main

import (
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/agent/astest"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// TestBackchannelLogoutPersists: the binary records a back-channel logout
// under revocation.state_dir, serves it on the metrics listener's feed,
// and has it again after a restart.
func TestBackchannelLogoutPersists(t *testing.T) {
	as := astest.New(t, astest.Options{ClientSecret: clientSecret, RedirectURI: trustedOrigin + "/"})
	stateDir := t.TempDir()
	cfg := agentConfig{Listen: bintest.FreeTCPAddr(t), MetricsListen: bintest.FreeTCPAddr(t), Issuer: as.URL, Key: newKey(),
		Extra: "revocation: {store: embedded, state_dir: " + stateDir + "}\n"}
	p := launch(t, cfg)
	p.waitReady(t, 15*time.Second, "/readyz", "")

	tok, err := as.SignLogoutToken(as.LogoutClaims(as.Subject(), "op-session-1", time.Now()), astest.Signing{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.client.PostForm("http://"+cfg.Listen+"/oauth-agent/backchannel-logout", url.Values{"logout_token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("back-channel logout: %d %v", resp.StatusCode, resp.Header)
	}
	if code, body, err := p.ops("/revocations?after=0"); err != nil || code != 200 || !strings.Contains(body, `"seq":1`) {
		t.Fatalf("the feed on the metrics listener: %d %s %v", code, body, err)
	}
	if _, m, _ := p.ops("/metrics"); !strings.Contains(m, "oauth_agent_backchannel_logouts_total{result=\"ok\"} 1\n") ||
		!strings.Contains(m, "oauth_agent_revocation_entries 1\n") {
		t.Fatalf("/metrics:\n%s", m)
	}
	if files, _ := os.ReadDir(stateDir); len(files) == 0 {
		t.Fatal("nothing in state_dir")
	}
	p.Stop(t, 15*time.Second)
	if out := p.Stderr(); strings.Contains(out, tok[strings.LastIndexByte(tok, '.')+1:]) || !strings.Contains(out, "back-channel logout recorded") {
		t.Fatalf("stderr holds the token, or not the logout:\n%s", out)
	}

	again := launch(t, cfg)
	again.waitReady(t, 15*time.Second, "/readyz", "")
	if _, m, _ := again.ops("/metrics"); !strings.Contains(m, "oauth_agent_revocation_entries 1\n") {
		t.Fatalf("after a restart, /metrics:\n%s", m)
	}
}
