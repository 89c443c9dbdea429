//go:build e2e

package e2e

import (
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/optest"
	"github.com/tokenhandler/tokenhandler/nginx"
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
			st := startOPStack(t, bin, mode, optest.Options{}, true)
			op, spaURL := st.op, st.spaURL

			browserFlow(t, "backchannel-flow.mjs", 3*time.Minute, "4 steps passed", "SPA_URL="+spaURL, "OP="+op.Issuer)
			if n := op.Count(0, "backchannel.success"); n != 2 {
				t.Errorf("oidc-provider logged %d acknowledged back-channel logouts, want 2", n)
			}
		})
	}
}
