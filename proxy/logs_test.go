package proxy

import (
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/session"
)

// TestLogsHoldNoSecrets logs every request at debug level, and upstream
// failures at warn, and looks for tokens, cookie values and CSRF values.
func TestLogsHoldNoSecrets(t *testing.T) {
	h := startProxy(t, "log: {level: debug}\nauth_endpoint: true")
	atCookie := h.seal(session.AccessToken, token)
	csrfCookie := h.seal(session.CSRF, "csrf-token-value")
	for _, r := range []request{
		{method: "GET", path: "/api/things?access_token=" + token, headers: [][2]string{trusted(), cookie("example-at=" + atCookie)}},
		{method: "POST", path: "/api/things", headers: [][2]string{trusted(), cookie("example-at=" + atCookie + "; example-csrf=" + csrfCookie), header("x-example-csrf", "csrf-token-value")}},
		{method: "POST", path: "/api/things", headers: [][2]string{trusted(), cookie("example-at=" + atCookie + "; example-csrf=" + csrfCookie), header("x-example-csrf", "wrong-csrf-value")}},
		{method: "GET", path: "/_oauth-proxy/auth", headers: [][2]string{trusted(), cookie("example-at=" + atCookie[:50])}},
		{method: "GET", path: "/api/things", headers: [][2]string{trusted(), header("Authorization", "Bearer "+token)}},
	} {
		h.do(r)
	}
	h.up.srv.Close()
	h.do(request{method: "GET", path: "/api/down", headers: [][2]string{trusted(), cookie("example-at=" + atCookie)}})

	logs := h.logs.String()
	if !strings.Contains(logs, `"message":"request"`) || !strings.Contains(logs, `"message":"upstream request failed"`) {
		t.Fatalf("expected request and upstream-failure lines, got:\n%s", logs)
	}
	for _, secret := range []string{token, token[:20], atCookie[:20], csrfCookie[:20], "csrf-token-value", "wrong-csrf-value"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain %q:\n%s", secret, logs)
		}
	}
}
