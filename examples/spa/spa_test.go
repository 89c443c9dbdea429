package spa_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/examples/spa"
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
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
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
	if resp, _ := get("/spa.go"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/spa.go: %d, want 404", resp.StatusCode)
	}
}
