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

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/agent"
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
			agentAddr, opsURL := startAgent(t, &agent.Config{
				Listen:                agentListen,
				MetricsListen:         "127.0.0.1:0",
				BasePath:              "/oauth-agent",
				Issuer:                op.Issuer,
				ClientID:              "spa-client",
				ClientSecret:          secret,
				ClientAuthMethod:      "client_secret_basic",
				RedirectURI:           spaURL,
				PostLogoutRedirectURI: spaURL,
				Scope:                 "openid profile",
				CookieNamePrefix:      cookiePrefix,
				Cookie:                agent.Cookie{BasePath: "/", SameSite: "strict"},
				CookieFormat:          crypto.FormatV2,
				Keys:                  keys,
				TrustedWebOrigins:     []string{spaOrigin},
				CORSEnabled:           true,
				PAR:                   "auto",
				IDToken:               agent.IDToken{AllowedAlgs: []string{"RS256", "PS256", "ES256", "EdDSA"}, ClockSkew: 30 * time.Second},
				Refresh:               agent.Refresh{GracePeriod: agent.DefaultGracePeriod},
				Timeouts:              agent.Timeouts{Read: 10 * time.Second, Write: 10 * time.Second, Idle: 30 * time.Second, AS: 10 * time.Second, Shutdown: 5 * time.Second},
				Log:                   agent.Log{Level: zerolog.InfoLevel},
				Revocation:            settings.RevocationSettings{Store: settings.StoreEmbedded, StateDir: t.TempDir()},
			})
			routes := ""
			if mode == nginx.ModeUpstream {
				routes = fmt.Sprintf(`routes: [{path_prefix: /api/, upstream: "http://%s"}]`, apiAddr)
			}
			proxyAddr := startProxy(t, fmt.Sprintf(`
listen: 127.0.0.1:0
encryption_keys: [%q]
trusted_web_origins: [%q]
timeouts: {upstream: 10s}
log: {level: info}
revocation: {feed: %q}
%s
`, key.AppendHex(nil), spaOrigin, opsURL, routes))
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
