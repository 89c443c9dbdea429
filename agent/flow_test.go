package agent

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/spatest"
)

// TestFullFlow: login → user info → claims → refresh → logout, checking the
// cookies' names, attributes and paths on the way (contract §4, §5).
func TestFullFlow(t *testing.T) {
	a := startAgent(t, nil)
	b := a.spa()

	// A page load before login.
	r := a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": spaOrigin + "/"})
	if m := r.JSON(); r.Status != 200 || m["handled"] != false || m["isLoggedIn"] != false || m["csrf"] != nil {
		t.Fatalf("page load before login: %d %v", r.Status, m)
	}

	start := a.call(b, "POST", "/oauth-agent/login/start", map[string]any{"extraParams": []map[string]string{{"key": "ui_locales", "value": "fr CA"}}})
	if start.Status != 200 {
		t.Fatalf("login/start: %d %s", start.Status, start.Body)
	}
	authURL := start.JSON()["authorizationRequestUrl"].(string)
	q := spatest.Query(t, authURL)
	for k, want := range map[string]string{"client_id": a.as.ClientID, "redirect_uri": a.as.RedirectURI, "response_type": "code", "scope": "openid profile", "code_challenge_method": "S256", "ui_locales": "fr CA"} {
		if q.Get(k) != want {
			t.Errorf("authorization request %s = %q, want %q", k, q.Get(k), want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 43 {
			t.Errorf("authorization request %s = %q: want at least 256 bits", k, q.Get(k))
		}
	}
	login := b.Cookie("example-login")
	if login == nil || login.Path != "/" || !login.HttpOnly || !login.Secure || login.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login cookie: %+v", login)
	}
	checkNoStore(t, start)

	redirect, err := a.as.Authorize(authURL)
	if err != nil {
		t.Fatal(err)
	}
	end := a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()})
	m := end.JSON()
	if end.Status != 200 || m["handled"] != true || m["isLoggedIn"] != true || len(m["csrf"].(string)) < 43 {
		t.Fatalf("login/end: %d %v", end.Status, m)
	}
	b.CSRF = m["csrf"].(string)
	for name, path := range map[string]string{"example-at": "/", "example-auth": "/oauth-agent/refresh", "example-id": "/oauth-agent", "example-csrf": "/"} {
		c := b.Cookie(name)
		if c == nil || c.Path != path || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.MaxAge != 0 || c.Domain != "" {
			t.Errorf("cookie %s: %+v, want Path %s, HttpOnly, Secure, SameSite=Strict, session", name, c, path)
		}
	}
	if b.Cookie("example-login") != nil {
		t.Error("the login cookie was not cleared")
	}
	if a.open(b, "example-csrf") != b.CSRF {
		t.Error("the CSRF cookie does not hold the CSRF token")
	}
	firstAT := a.open(b, "example-at")
	if strings.Count(firstAT, ".") != 2 {
		t.Errorf("the access-token cookie holds %q, want a JWT", firstAT)
	}

	// Page load while logged in.
	r = a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": spaOrigin + "/orders?page=2"})
	if m := r.JSON(); m["handled"] != false || m["isLoggedIn"] != true || m["csrf"] != b.CSRF {
		t.Fatalf("page reload: %v", m)
	}

	r = a.call(b, "GET", "/oauth-agent/userInfo", nil)
	if m := r.JSON(); r.Status != 200 || m["sub"] != "demo-user" {
		t.Fatalf("userInfo: %d %s", r.Status, r.Body)
	}
	r = a.call(b, "GET", "/oauth-agent/claims", nil)
	if m := r.JSON(); r.Status != 200 || m["sub"] != "demo-user" || m["aud"] != a.as.ClientID || m["nonce"] != q.Get("nonce") {
		t.Fatalf("claims: %d %s", r.Status, r.Body)
	}

	oldRT := a.open(b, "example-auth")
	r = a.call(b, "POST", "/oauth-agent/refresh", nil)
	if r.Status != 204 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	if a.open(b, "example-at") == firstAT || a.open(b, "example-auth") == oldRT {
		t.Error("refresh did not rewrite the access and (rotated) refresh token cookies")
	}
	if a.as.Count("token:refresh_token") != 1 {
		t.Errorf("%d refresh grants, want 1", a.as.Count("token:refresh_token"))
	}

	idToken := a.open(b, "example-id")
	r = a.call(b, "POST", "/oauth-agent/logout", nil)
	if r.Status != 200 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	lq := spatest.Query(t, r.JSON()["url"].(string))
	if lq.Get("client_id") != a.as.ClientID || lq.Get("post_logout_redirect_uri") != spaOrigin+"/" || lq.Get("id_token_hint") != idToken || len(lq.Get("state")) < 16 {
		t.Errorf("logout URL query %v", lq)
	}
	if !strings.HasPrefix(r.JSON()["url"].(string), a.as.URL+"/logout?") {
		t.Errorf("logout URL %v", r.JSON()["url"])
	}
	// Every cookie cleared on its own Path: the jar drops a cookie only when
	// name and path match.
	if len(b.Cookies) != 0 {
		for _, c := range b.Cookies {
			t.Errorf("cookie %s (Path %s) survived logout", c.Name, c.Path)
		}
	}
	for _, c := range r.SetCookies {
		if c.MaxAge >= 0 || !c.HttpOnly || !c.Secure {
			t.Errorf("clearing cookie %+v", c)
		}
	}
}

func checkNoStore(t *testing.T, r spatest.Answer) {
	t.Helper()
	if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("Cache-Control %q, Referrer-Policy %q", r.Header.Get("Cache-Control"), r.Header.Get("Referrer-Policy"))
	}
}
