package spa_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/examples/spa"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/nodetest"
)

func TestHandler(t *testing.T) {
	cfg := spa.Config{
		AgentBaseURL: "http://api.example.localhost:8000/oauth-agent",
		APIBaseURL:   "http://api.example.localhost:8000/api",
	}
	ts := httptest.NewServer(spa.Handler(cfg))
	t.Cleanup(ts.Close)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		resp, b := bintest.Do(t, http.DefaultClient, req)
		return resp, string(b)
	}

	resp, body := get("/config.json")
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("config.json: %v %q %v", err, body, resp.Header)
	}
	want := map[string]string{"agentBaseUrl": cfg.AgentBaseURL, "apiBaseUrl": cfg.APIBaseURL, "cookieNamePrefix": "example"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("config.json %s = %q, want %q", k, got[k], v)
		}
	}
	if title, ok := got["title"]; ok {
		t.Errorf("config.json has title %q without Config.Title: the page would lose its own", title)
	}

	for _, path := range []string{"/", "/app.js", "/oauth-agent-client.js", "/style.css"} {
		resp, body := get(path)
		if resp.StatusCode != http.StatusOK || body == "" {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "connect-src 'self' http://api.example.localhost:8000;") || !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", path, csp)
		}
		if resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", path, resp.Header)
		}
	}
	for _, path := range []string{"/spa.go", "/oauth-agent-client.test.mjs"} {
		if resp, _ := get(path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
}

// TestHandlerTitle: a second application of one stack (make run's admin)
// gets its title into config.json, which app.js puts in the page's title
// and heading, the element index.html names "title".
func TestHandlerTitle(t *testing.T) {
	ts := httptest.NewServer(spa.Handler(spa.Config{AgentBaseURL: "http://api.admin.example.localhost:8080/oauth-agent", CookieNamePrefix: "admin", Title: "Admin"}))
	t.Cleanup(ts.Close)
	var got map[string]string
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/config.json", nil)
	if _, b := bintest.Do(t, http.DefaultClient, req); json.Unmarshal(b, &got) != nil || got["title"] != "Admin" || got["cookieNamePrefix"] != "admin" {
		t.Errorf("config.json: %s, want title Admin and cookieNamePrefix admin", b)
	}
	for file, want := range map[string]string{"index.html": `<h1 id="title">`, "app.js": "print('title', config.title)"} {
		b, err := spa.Files.ReadFile(file)
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %q: the title would not show", file, want)
		}
	}
}

// TestClientModule runs oauth-agent-client.test.mjs, the client module's
// tests against a scripted fetch: refresh once and retry on token_expired
// from userInfo, claims and the API, one refresh for concurrent callers,
// logged out only when the refresh answers 401, a replayed callback URL as
// a page load. It needs Node.js 18 or later; without it the test skips,
// unless CI is set.
func TestClientModule(t *testing.T) {
	node := nodetest.Node(t)
	out, err := exec.Command(node, "--test", "oauth-agent-client.test.mjs").CombinedOutput()
	if err != nil {
		t.Fatalf("node --test oauth-agent-client.test.mjs: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "# fail 0") || strings.Contains(string(out), "# pass 0\n") {
		t.Fatalf("node --test ran no passing test:\n%s", out)
	}
}
