//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/examples/api"
	"github.com/tokenhandler/tokenhandler/examples/spa"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/optest"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/nginx"
	"github.com/tokenhandler/tokenhandler/nginx/nginxtest"
)

// TestBackchannelLogoutInBrowser is back-channel logout (issue #13) in
// headless Chromium behind real NGINX, in each of the proxy's modes, with
// the certified oidc-provider calling the agent's
// /oauth-agent/backchannel-logout (its backchannel_logout_uri): the agent
// keeps the embedded revocation store under a state_dir, the proxy follows
// its feed. backchannel-flow.mjs: alice logs in from two browsers and bob
// from a third; alice's first browser logs out on the provider's page and
// its SPA is logged out within a second; alice's second browser and bob go
// on; a logout token naming only sub=alice then logs out her second
// browser, and bob goes on.
func TestBackchannelLogoutInBrowser(t *testing.T) {
	need(t)
	bin := needNGINX(t)
	for _, mode := range []string{nginx.ModeUpstream, nginx.ModeAuthRequest} {
		t.Run(mode, func(t *testing.T) {
			spaLn := listen(t)
			spaOrigin := fmt.Sprintf("http://www.example.localhost:%d", spaLn.Addr().(*net.TCPAddr).Port)
			spaURL := spaOrigin + "/"
			secret := rand.Text()
			agentListen := bintest.FreeTCPAddr(t)
			op := optest.Start(t, optest.Options{ClientSecret: secret, RedirectURI: spaURL,
				BackchannelLogoutURI: "http://" + agentListen + "/oauth-agent/backchannel-logout"})
			var discovery struct {
				Userinfo string `json:"userinfo_endpoint"`
			}
			getJSON(t, op.Issuer+"/.well-known/openid-configuration", &discovery)
			apiAddr := startAPI(t, api.Options{UserinfoURL: discovery.Userinfo, UserinfoCacheTTL: apiUserinfoTTL})

			key := crypto.GenerateKey()
			keys, err := crypto.NewKeyring(key)
			if err != nil {
				t.Fatal(err)
			}
			cfg := opAgentConfig(op.Issuer, secret, spaOrigin, spaURL, agentListen, keys)
			cfg.Revocation = settings.RevocationSettings{Store: settings.StoreEmbedded, StateDir: t.TempDir()}
			agentAddr, opsURL := startAgent(t, cfg)
			proxyAddr := startProxy(t, opProxyYAML(key, spaOrigin, mode, apiAddr, fmt.Sprintf("revocation: {feed: %q}\n", opsURL)))
			ng := nginxtest.Start(t, bin, mode, nginx.Params{
				Agents: []string{agentAddr}, Proxies: []string{proxyAddr}, APIs: []string{apiAddr},
			})
			_, port, _ := net.SplitHostPort(ng.Addr())
			apiBase := "http://api.example.localhost:" + port
			serveSPA(t, spaLn, spa.Config{
				AgentBaseURL:     apiBase + "/oauth-agent",
				APIBaseURL:       apiBase + "/api",
				CookieNamePrefix: cookiePrefix,
			})

			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", "backchannel-flow.mjs")
			cmd.Env = append(os.Environ(), "SPA_URL="+spaURL, "OP="+op.Issuer)
			out, err := cmd.CombinedOutput()
			t.Logf("backchannel-flow.mjs:\n%s", out)
			if err != nil {
				t.Fatalf("the browser flow failed: %v", err)
			}
			if !regexp.MustCompile(`(?m)^4 steps passed$`).Match(out) {
				t.Fatal("the browser flow did not pass its 4 steps")
			}
			if n := op.Count(0, "backchannel.success"); n != 2 {
				t.Errorf("oidc-provider logged %d acknowledged back-channel logouts, want 2", n)
			}
		})
	}
}
