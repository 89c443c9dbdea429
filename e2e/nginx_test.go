//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/agent"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/examples/api"
	"github.com/tokenhandler/tokenhandler/examples/spa"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/harness"
	"github.com/tokenhandler/tokenhandler/internal/optest"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/nginx"
	"github.com/tokenhandler/tokenhandler/nginx/nginxtest"
	"github.com/tokenhandler/tokenhandler/proxy"
	"github.com/tokenhandler/tokenhandler/session"
)

// The access-token lifetime at the OpenID Provider, and how long the demo
// API reuses a userinfo answer: shorter, so that an expired token is
// refused and the SPA's refresh-and-retry runs.
const (
	opAccessTTL    = 4 * time.Second
	apiUserinfoTTL = time.Second
	opUser         = "demo-user" // any login passes oidc-provider's development interactions
	opSubject      = "demo-user" // server.mjs's findAccount: sub is the login
	cookiePrefix   = "example"

	// refreshGrants is how many refresh grants the browser flow makes at
	// the provider: one for two tabs refreshing at once, one for the
	// refresh whose rotated token a second tab then replays (the replay
	// makes none), one for the reload after the access token expired, one
	// for the API call after it expired again, one for the Refresh button.
	refreshGrants = 5
	// refresh204s is how many refreshes NGINX sees answered 204: the two
	// tabs, the refresh, the replay, the reload, the API call and the
	// button.
	refresh204s = 7
)

// TestNGINXWithOIDCProvider is the deployment of contract §1 on one machine:
// real NGINX in front of the OAuth Agent and the OAuth Proxy, in each of
// the proxy's modes, the certified oidc-provider (integration/op) as the
// Authorization Server, the demo API behind them checking oidc-provider's
// opaque access tokens at its userinfo endpoint, and the demo SPA in
// headless Chromium: log in on the provider's login and consent pages, see
// user info, call the API through NGINX, let the access token expire and
// see the SPA refresh and retry, log out at the provider. Between the API
// call and the expiry, two tabs of the session refresh at once and share one
// grant, and a second tab replaying the just-rotated refresh cookie within
// the grace gets the same access token (issue #11).
func TestNGINXWithOIDCProvider(t *testing.T) {
	need(t)
	bin := needNGINX(t)
	for _, mode := range []string{nginx.ModeUpstream, nginx.ModeAuthRequest} {
		t.Run(mode, func(t *testing.T) {
			st := startOPStack(t, bin, mode, optest.Options{AccessTokenTTL: opAccessTTL}, false)
			op, spaURL, metricsURL := st.op, st.spaURL, st.opsURL

			mark := op.Mark()
			cookieFile := filepath.Join(t.TempDir(), "access-token-cookies.json")
			retries := spaFlow(t, "SPA_URL="+spaURL, "IDP=oidc-provider", "USERNAME="+opUser, "EXPECT_SUBJECT="+opSubject,
				fmt.Sprintf("ACCESS_TTL_MS=%d", opAccessTTL.Milliseconds()), "METRICS_URL="+metricsURL,
				fmt.Sprintf("REFRESH_GRACE_MS=%d", agent.DefaultGracePeriod.Milliseconds()),
				"COOKIE_FILE="+cookieFile,
				"SCREENSHOT="+filepath.Join(t.TempDir(), mode+".png"))

			// What the flow did, seen from NGINX and the provider: the expired
			// token was refused through NGINX, the SPA refreshed through NGINX
			// and the retry passed; the provider ran the refresh grant and
			// ended its session.
			access := accessLog(t, st.nginx)
			for _, want := range []string{`"GET /api/hello" 200`, `"GET /api/hello" 401`, `"POST /api/echo" 200`,
				`"POST /oauth-agent/refresh" 204`, `"POST /oauth-agent/logout" 200`} {
				if !strings.Contains(access, want) {
					t.Errorf("NGINX's access log has no %s:\n%s", want, access)
				}
			}
			if i, j := strings.Index(access, `"GET /api/hello" 401`), strings.LastIndex(access, `"GET /api/hello" 200`); i < 0 || j < i {
				t.Error("no API call passed after the refused one")
			}
			if n, all := strings.Count(access, `"POST /oauth-agent/refresh" 204`), strings.Count(access, `"POST /oauth-agent/refresh" `); n != refresh204s+2*retries || all != n {
				t.Errorf("NGINX's access log has %d refreshes, %d of them 204, want %d (%d tries again), all 204:\n%s", all, n, refresh204s+2*retries, retries, access)
			}
			waitForEvent(t, op, "end_session.success")
			// The parallel refreshes shared one grant and the replay reached
			// the provider not at all: it saw no reuse of a rotated token.
			op.WaitFor(t, mark, "grant.success refresh_token", refreshGrants+2*retries)
			for _, event := range []string{"grant.revoked token", "grant.error"} {
				if n := op.Count(mark, event); n != 0 {
					t.Errorf("oidc-provider logged %d %q events, want none", n, event)
				}
			}
			checkAccessTokens(t, st.keys, cookieFile)
		})
	}
}

// checkAccessTokens opens the access-token cookies that spa-flow.mjs's
// two-tab steps saw the agent set (COOKIE_FILE) and checks what they hold:
// every seal is fresh, so the cookie values differ, but the two tabs'
// parallel refreshes got one new access token, and the replay of the
// rotated refresh token got the very access token of the refresh that
// rotated it; all in the one session. It never prints a value.
func checkAccessTokens(t *testing.T, keys *crypto.Keyring, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the browser flow wrote no access-token cookies: %v", err)
	}
	var set struct{ Before, Tab1, Tab2, Rotated, Replayed map[string]string }
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	codec, err := session.NewCodec(keys, crypto.FormatV2)
	if err != nil {
		t.Fatal(err)
	}
	var ids [5]session.ID
	open := func(i int, step string, cookies map[string]string) []byte {
		t.Helper()
		value, chunks, err := reassemble(cookiePrefix+"-"+session.AccessToken.String(), cookies)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		var env session.Envelope
		token, f, err := codec.Open(nil, value, session.AccessToken, chunks, &env)
		if err != nil || f != crypto.FormatV2 {
			t.Fatalf("%s: the access-token cookie does not open as a v2 access-token cookie (format %v): %v", step, f, err)
		}
		ids[i] = env.ID
		return token
	}
	before := open(0, "before the parallel refreshes", set.Before)
	tab1 := open(1, "tab 1's refresh", set.Tab1)
	tab2 := open(2, "tab 2's refresh", set.Tab2)
	rotated := open(3, "the refresh before the replay", set.Rotated)
	replayed := open(4, "the replay", set.Replayed)
	if !bytes.Equal(tab1, tab2) {
		t.Error("the two tabs' parallel refreshes set different access tokens")
	}
	if bytes.Equal(tab1, before) {
		t.Error("the parallel refreshes set the access token the session had before")
	}
	if !bytes.Equal(rotated, replayed) {
		t.Error("the replay within the grace set another access token than the refresh that rotated the token")
	}
	if bytes.Equal(rotated, tab1) {
		t.Error("the refresh before the replay set the access token the session had before")
	}
	for i, id := range ids {
		if id != ids[0] {
			t.Errorf("access-token cookie %d belongs to another session than the first", i)
		}
	}
}

// reassemble returns the value of the cookie called name in cookies, whole
// or from its chunks name.0, name.1, …, and the chunk count (0 when whole).
func reassemble(name string, cookies map[string]string) ([]byte, int, error) {
	if v, ok := cookies[name]; ok && len(cookies) == 1 {
		return []byte(v), 0, nil
	}
	var value []byte
	for i := range len(cookies) {
		v, ok := cookies[fmt.Sprintf("%s.%d", name, i)]
		if !ok {
			return nil, 0, fmt.Errorf("want cookie %s or its chunks, got %d cookies without chunk %d", name, len(cookies), i)
		}
		value = append(value, v...)
	}
	if len(cookies) == 0 {
		return nil, 0, fmt.Errorf("no cookie %s", name)
	}
	return value, len(cookies), nil
}

// opStack is the deployment the browser tests against oidc-provider
// drive, all on loopback: oidc-provider, the demo API checking its access
// tokens at its userinfo endpoint, the OAuth Agent and the OAuth Proxy
// in-process, NGINX in front of them in one mode, and the demo SPA on
// www.example.localhost.
type opStack struct {
	spaURL string
	op     *optest.Provider
	keys   *crypto.Keyring // the agent's and the proxy's
	nginx  *nginxtest.Process
	opsURL string // the agent's ops listener: metrics, the revocation feed
}

// startOPStack starts an opStack with NGINX (bin) in mode and the provider
// with o (its client secret and redirect URI filled in) until the test
// ends. With backchannel the provider sends back-channel logouts to the
// agent, which keeps the embedded revocation store under a state_dir, and
// the proxy follows its feed.
func startOPStack(t *testing.T, bin, mode string, o optest.Options, backchannel bool) *opStack {
	t.Helper()
	spaLn := listen(t)
	spaOrigin := fmt.Sprintf("http://www.example.localhost:%d", spaLn.Addr().(*net.TCPAddr).Port)
	s := &opStack{spaURL: spaOrigin + "/"}
	o.ClientSecret, o.RedirectURI = rand.Text(), s.spaURL
	agentListen := "127.0.0.1:0"
	if backchannel {
		agentListen = bintest.FreeTCPAddr(t)
		o.BackchannelLogoutURI = "http://" + agentListen + "/oauth-agent/backchannel-logout"
	}
	s.op = optest.Start(t, o)
	var discovery struct {
		Userinfo string `json:"userinfo_endpoint"`
	}
	getJSON(t, s.op.Issuer+"/.well-known/openid-configuration", &discovery)
	apiAddr := startAPI(t, api.Options{UserinfoURL: discovery.Userinfo, UserinfoCacheTTL: apiUserinfoTTL})

	key := crypto.GenerateKey()
	var err error
	if s.keys, err = crypto.NewKeyring(key); err != nil {
		t.Fatal(err)
	}
	cfg := harness.AgentConfig(s.op.Issuer, o.ClientSecret, spaOrigin, s.keys)
	cfg.Listen, cfg.MetricsListen = agentListen, "127.0.0.1:0"
	cfg.Log = agent.Log{Level: zerolog.InfoLevel}
	if backchannel {
		cfg.Revocation = settings.RevocationSettings{Store: settings.StoreEmbedded, StateDir: t.TempDir()}
	}
	var agentAddr string
	agentAddr, s.opsURL = startAgent(t, cfg)
	proxyExtra := ""
	if backchannel {
		proxyExtra = fmt.Sprintf("revocation: {feed: %q}\n", s.opsURL)
	}
	// Upstream mode: the proxy forwards /api/ to the API. auth_request
	// mode: the proxy only answers NGINX's auth subrequests, and NGINX
	// calls the API.
	proxyAddr := startProxy(t, opProxyYAML(key, spaOrigin, mode, apiAddr, proxyExtra))
	s.nginx = nginxtest.Start(t, bin, mode, nginx.Params{
		Agents:  []string{agentAddr},
		Proxies: []string{proxyAddr},
		APIs:    []string{apiAddr},
	})
	_, port, _ := net.SplitHostPort(s.nginx.Addr())
	apiBase := "http://api.example.localhost:" + port
	serveSPA(t, spaLn, spa.Config{
		AgentBaseURL:     apiBase + "/oauth-agent",
		APIBaseURL:       apiBase + "/api",
		CookieNamePrefix: cookiePrefix,
	})
	return s
}

// listen opens a loopback listener on a free port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// waitForEvent waits until the provider has logged event at least once
// (optest.Provider.Count): it logs before it answers, but the line may
// still be in the pipe.
func waitForEvent(t *testing.T, op *optest.Provider, event string) {
	t.Helper()
	if !bintest.Within(5*time.Second, func() bool { return op.Count(0, event) > 0 }) {
		t.Errorf("oidc-provider logged no %q event within 5 s", event)
	}
}

// startAPI serves the demo API on a free loopback port and returns its
// address.
func startAPI(t *testing.T, opts api.Options) string {
	t.Helper()
	a, err := api.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return serveFast(t, a.Handler)
}

// startAgent runs the OAuth Agent in-process until the test ends, once it
// has the provider's metadata, and returns its address and, with
// cfg.MetricsListen, its metrics listener's URL ("" without).
func startAgent(t *testing.T, cfg *agent.Config) (addr, metricsURL string) {
	t.Helper()
	var logs bintest.Buffer
	srv, err := agent.NewServer(cfg, zerolog.New(&logs).With().Timestamp().Logger())
	if err != nil {
		t.Fatal(err)
	}
	serve(t, "OAuth Agent", srv.Serve, srv.Shutdown, &logs)
	if !bintest.Within(10*time.Second, srv.Agent.Ready) {
		t.Fatalf("the agent did not load the provider's metadata within 10 s:\n%s", logs.String())
	}
	if a := srv.MetricsAddr(); a != nil {
		metricsURL = "http://" + a.String()
	}
	return srv.Addr().String(), metricsURL
}

// startProxy runs the OAuth Proxy in-process with the configuration yaml
// until the test ends, and returns its address.
func startProxy(t *testing.T, yaml string) string {
	t.Helper()
	cfg, err := proxy.ParseConfig([]byte(yaml), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var logs bintest.Buffer
	srv, err := proxy.NewServer(cfg, zerolog.New(&logs).With().Timestamp().Logger())
	if err != nil {
		t.Fatal(err)
	}
	serve(t, "OAuth Proxy", srv.Serve, srv.Shutdown, &logs)
	return srv.Addr().String()
}

// serve runs a server until the test ends, then shuts it down within 5 s;
// its log is shown when the test failed.
func serve(t *testing.T, name string, run func() error, shutdown func(context.Context) error, logs *bintest.Buffer) {
	t.Helper()
	// Cleanups run last first: bintest.Serve's stops the server, then this
	// one prints its log.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", name, logs.String())
		}
	})
	bintest.Serve(t, run, shutdown)
}

// serveSPA serves the demo SPA with cfg on ln until the test ends.
func serveSPA(t *testing.T, ln net.Listener, cfg spa.Config) {
	t.Helper()
	serveHTTP(t, ln, spa.Handler(cfg))
}

// serveHTTP serves h on ln until the test ends.
func serveHTTP(t *testing.T, ln net.Listener, h http.Handler) {
	t.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	bintest.Serve(t, func() error { return srv.Serve(ln) }, srv.Shutdown)
}

// accessLog returns NGINX's access log so far.
func accessLog(t *testing.T, n *nginxtest.Process) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.Params().RunDir, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// opProxyYAML is the proxy of the browser tests: in upstream mode with a
// route to the API at apiAddr, in auth_request mode without routes; extra
// is appended.
func opProxyYAML(key crypto.Key, spaOrigin, mode, apiAddr, extra string) string {
	routes := ""
	if mode == nginx.ModeUpstream {
		routes = fmt.Sprintf(`routes: [{path_prefix: /api/, upstream: "http://%s"}]`, apiAddr)
	}
	return fmt.Sprintf(`
listen: 127.0.0.1:0
encryption_keys: [%q]
trusted_web_origins: [%q]
timeouts: {upstream: 10s}
log: {level: info}
%s%s
`, key.AppendHex(nil), spaOrigin, extra, routes)
}
