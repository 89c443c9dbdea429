// Package spa embeds the demo Single Page App's static files (index.html,
// app.js, oauth-agent-client.js, style.css), so that the development stack
// and the end-to-end tests serve them from any working directory, and
// serves them with their configuration. The SPA itself is plain modern
// JavaScript with no build step.
package spa

import (
	"embed"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Files are the SPA's static files.
//
//go:embed index.html app.js oauth-agent-client.js style.css
var Files embed.FS

// Config is what the SPA reads from /config.json: where the OAuth Agent and
// the API are. Config is plain data and may be copied.
type Config struct {
	// AgentBaseURL is the OAuth Agent's base URL, e.g.
	// http://api.example.localhost:8080/oauth-agent.
	AgentBaseURL string `json:"agentBaseUrl"`
	// APIBaseURL is where API calls go, through the OAuth Proxy, e.g.
	// http://api.example.localhost:8081/api.
	APIBaseURL string `json:"apiBaseUrl"`
	// CookieNamePrefix is the agent's cookie.prefix; it names the
	// CSRF header. Default "example".
	CookieNamePrefix string `json:"cookieNamePrefix"`
	// Title replaces the page's title and heading, "Token Handler demo
	// SPA", so that two applications of one stack (make run's shop and
	// admin) tell apart at a glance; "" keeps it.
	Title string `json:"title,omitempty"`
}

// Handler serves Files, and cfg as /config.json, with the headers a static
// SPA host should send: no referrer, no sniffing, and a Content Security
// Policy that lets scripts connect only to the SPA's own origin and those
// of the agent and the API. The handler is safe for concurrent use.
func Handler(cfg Config) http.Handler {
	if cfg.CookieNamePrefix == "" {
		cfg.CookieNamePrefix = "example"
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		panic("spa: internal error: " + err.Error())
	}
	connect := []string{"'self'"}
	for _, u := range []string{cfg.AgentBaseURL, cfg.APIBaseURL} {
		if p, err := url.Parse(u); err == nil && p.Scheme != "" && p.Host != "" && !slices.Contains(connect, p.Scheme+"://"+p.Host) {
			connect = append(connect, p.Scheme+"://"+p.Host)
		}
	}
	// img-src allows the empty data: favicon of index.html.
	csp := "default-src 'self'; img-src 'self' data:; connect-src " + strings.Join(connect, " ") + "; frame-ancestors 'none'"

	mux := http.NewServeMux()
	mux.HandleFunc("/config.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(cfgJSON)
	})
	mux.Handle("/", http.FileServerFS(Files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", csp)
		mux.ServeHTTP(w, r)
	})
}
