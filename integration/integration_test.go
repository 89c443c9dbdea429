// Package integration runs the OAuth Agent and the OAuth Proxy together, as a
// deployment does: cookies the agent writes must take the SPA's API calls
// through the proxy. It holds tests only; agent and proxy never import each
// other.
package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/agent"
	"github.com/tokenhandler/tokenhandler/agent/astest"
	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/internal/spatest"
	"github.com/tokenhandler/tokenhandler/proxy"
)

const spaOrigin = "http://www.example.localhost:3000"

// stack is a fake AS, an agent, a proxy and an API that records the
// Authorization header it receives.
type stack struct {
	as       *astest.Server
	agentURL string
	proxyURL string
	keys     []crypto.Key
	ring     *crypto.Keyring

	mu      sync.Mutex
	apiAuth string
}

type options struct {
	format     crypto.Format
	namePrefix browser.NamePrefix
	padding    int // bytes added to each access token
}

func newStack(t *testing.T, o options) *stack {
	t.Helper()
	s := &stack{as: astest.New(t, astest.Options{})}
	if o.padding > 0 {
		s.as.Set(func(f *astest.Faults) { f.AccessTokenPadding = o.padding })
	}
	s.keys = []crypto.Key{crypto.GenerateKey()}
	s.ring, _ = crypto.NewKeyring(s.keys...)

	// The API behind the proxy.
	api := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.apiAuth = r.Header.Get("Authorization")
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	})}
	apiLn := listen(t)
	go api.Serve(apiLn)
	t.Cleanup(func() { api.Close() })

	// The agent.
	cfg := &agent.Config{
		BasePath: "/oauth-agent", Issuer: s.as.URL, ClientID: s.as.ClientID, ClientSecret: s.as.ClientSecret,
		ClientAuthMethod: "client_secret_basic", RedirectURI: s.as.RedirectURI, Scope: "openid profile",
		CookieNamePrefix: "example", Cookie: agent.Cookie{BasePath: "/", SameSite: "strict", NamePrefix: o.namePrefix},
		CookieFormat: o.format, Keys: s.ring, TrustedWebOrigins: []string{spaOrigin}, CORSEnabled: true, PAR: "auto",
		IDToken:  agent.IDToken{AllowedAlgs: []string{"RS256"}, ClockSkew: 30 * time.Second},
		Refresh:  agent.Refresh{GracePeriod: agent.DefaultGracePeriod},
		Timeouts: agent.Timeouts{ServerTimeouts: settings.ServerTimeouts{Read: 5 * time.Second, Write: 5 * time.Second, Idle: 5 * time.Second, Shutdown: time.Second}, AS: 3 * time.Second},
		Log:      agent.Log{Level: zerolog.WarnLevel},
	}
	s.agentURL = serveAgent(t, cfg)

	// The proxy, same key.
	format := o.format
	if format == 0 {
		format = crypto.FormatV2
	}
	yaml := fmt.Sprintf("listen: 127.0.0.1:0\nencryption_keys: [%q]\ntrusted_web_origins: [%q]\ncookie: {name_prefix: %s, format: %s}\nroutes: [{path_prefix: /api/, upstream: \"http://%s\"}]\n",
		s.keys[0].AppendHex(nil), spaOrigin, o.namePrefix, format, apiLn.Addr())
	pcfg, err := proxy.ParseConfig([]byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pcfg.Warnings != nil {
		t.Fatalf("the proxy's configuration uses a deprecated spelling: %q", pcfg.Warnings)
	}
	psrv, err := proxy.NewServer(pcfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	go psrv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		psrv.Shutdown(ctx)
	})
	s.proxyURL = "http://" + psrv.Addr().String()
	return s
}

func listen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// login logs b in through the agent.
func (s *stack) login(t *testing.T, b *spatest.Browser) {
	t.Helper()
	start := b.Call("POST", s.agentURL+"/oauth-agent/login/start", nil)
	redirect, err := s.as.Authorize(start.JSON()["authorizationRequestUrl"].(string))
	if err != nil {
		t.Fatal(err)
	}
	end := b.Call("POST", s.agentURL+"/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()})
	if end.Status != 200 {
		t.Fatalf("login/end: %d %s", end.Status, end.Body)
	}
	b.CSRF, _ = end.JSON()["csrf"].(string)
}

func (s *stack) lastAPIAuth() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiAuth
}

// TestAgentCookiesThroughProxy: in both formats, with host-prefixed names,
// and with a 6 KiB access token in chunked cookies, the cookies the agent
// writes take GET and POST calls through the proxy with the access token as
// the bearer token, and open with thctl.
func TestAgentCookiesThroughProxy(t *testing.T) {
	thctl := thctlPath
	for _, tc := range []struct {
		name string
		o    options
	}{
		{"v2", options{format: crypto.FormatV2}},
		{"v1", options{format: crypto.FormatV1}},
		{"dare", options{format: crypto.FormatDARE}},
		{"host prefix", options{format: crypto.FormatV2, namePrefix: browser.NamePrefixHost}},
		{"host-http prefix", options{format: crypto.FormatV2, namePrefix: browser.NamePrefixHostHTTP}},
		{"6 KiB access token in chunks", options{format: crypto.FormatV2, padding: 6 << 10}},
		{"6 KiB access token in v1 chunks", options{format: crypto.FormatV1, padding: 6 << 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t, tc.o)
			b := spatest.New(t, spaOrigin)
			s.login(t, b)

			atName := "example-at"
			if tc.o.namePrefix.Host() {
				want := map[browser.NamePrefix]string{browser.NamePrefixHost: "__Host-", browser.NamePrefixHostHTTP: "__Host-Http-"}[tc.o.namePrefix]
				atName = want + "example-at"
				for _, c := range b.Cookies {
					if !strings.HasPrefix(c.Name, want) || !c.HttpOnly || c.Path != "/" || c.Domain != "" || !c.Secure {
						t.Errorf("host-prefix mode wrote %s with Path %q, Domain %q, Secure %v", c.Name, c.Path, c.Domain, c.Secure)
					}
				}
			}
			var sealed string
			if c := b.Cookie(atName); c != nil {
				sealed = c.Value
			} else {
				for i := 0; ; i++ {
					c := b.Cookie(fmt.Sprintf("%s.%d", atName, i))
					if c == nil {
						break
					}
					// The whole Set-Cookie: name=value and this stack's
					// attributes.
					if len(c.Name)+1+len(c.Value)+len("; Path=/; HttpOnly; Secure; SameSite=Strict") > 4096 {
						t.Errorf("chunk %s is %d bytes: over the Set-Cookie budget", c.Name, len(c.Value))
					}
					sealed += c.Value
				}
				if tc.o.padding == 0 || sealed == "" {
					t.Fatalf("no access-token cookie; cookies: %v", b.Cookies)
				}
			}
			if want := map[crypto.Format]byte{crypto.FormatV1: 'A', crypto.FormatV2: 'A', crypto.FormatDARE: 'I'}[tc.o.format]; sealed[0] != want {
				t.Errorf("the cookie starts with %q, want %q for %s", sealed[0], want, tc.o.format)
			}
			out, err := exec.Command(thctl, "open", "-key", string(s.keys[0].AppendHex(nil)), sealed).Output()
			if err != nil {
				t.Fatalf("thctl open: %v", err)
			}
			token := strings.TrimSuffix(string(out), "\n")
			if strings.Count(token, ".") != 2 || (tc.o.padding > 0 && len(token) < tc.o.padding) {
				t.Fatalf("thctl opened the cookie to %d bytes: %.40q", len(token), token)
			}

			for _, method := range []string{"GET", "POST"} {
				r := b.Call(method, s.proxyURL+"/api/orders", nil)
				if r.Status != 200 || s.lastAPIAuth() != "Bearer "+token {
					t.Fatalf("%s through the proxy: %d %s; the API got %.40q", method, r.Status, r.Body, s.lastAPIAuth())
				}
			}

			// After a refresh the proxy forwards the new token.
			if r := b.Call("POST", s.agentURL+"/oauth-agent/refresh", nil); r.Status != 204 {
				t.Fatalf("refresh: %d %s", r.Status, r.Body)
			}
			b.Call("GET", s.proxyURL+"/api/orders", nil)
			if s.lastAPIAuth() == "Bearer "+token || !strings.HasPrefix(s.lastAPIAuth(), "Bearer ey") {
				t.Fatal("after refresh the API did not get a new token")
			}
		})
	}
}

// thctlPath is the thctl binary TestMain builds.
var thctlPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "integration-thctl")
	if err != nil {
		panic(err)
	}
	thctlPath = filepath.Join(dir, "thctl")
	if out, err := exec.Command("go", "build", "-o", thctlPath, "../cmd/thctl").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build thctl: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
