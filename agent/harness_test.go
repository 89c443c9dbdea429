package agent

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/agent/astest"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/internal/spatest"
	"github.com/tokenhandler/tokenhandler/session"
)

const spaOrigin = "http://www.example.localhost:3000"

// testConfig is a valid configuration against as.
func testConfig(as *astest.Server) *Config {
	keys, _ := crypto.NewKeyring(crypto.GenerateKey())
	return &Config{
		BasePath:              "/oauth-agent",
		Issuer:                as.URL,
		ClientID:              as.ClientID,
		ClientSecret:          as.ClientSecret,
		ClientAuthMethod:      "client_secret_basic",
		RedirectURI:           as.RedirectURI,
		PostLogoutRedirectURI: spaOrigin + "/",
		Scope:                 "openid profile",
		CookieNamePrefix:      "example",
		Cookie:                Cookie{BasePath: "/", SameSite: "strict"},
		CookieFormat:          crypto.FormatV2,
		Keys:                  keys,
		TrustedWebOrigins:     []string{spaOrigin},
		CORSEnabled:           true,
		PAR:                   "auto",
		IDToken:               IDToken{AllowedAlgs: []string{"RS256", "PS256", "ES256", "EdDSA"}, ClockSkew: 30 * time.Second},
		Refresh:               Refresh{GracePeriod: DefaultGracePeriod},
		Timeouts:              Timeouts{ServerTimeouts: settings.ServerTimeouts{Read: 5 * time.Second, Write: 5 * time.Second, Idle: 5 * time.Second, Shutdown: time.Second}, AS: 3 * time.Second},
		Log:                   Log{Level: zerolog.WarnLevel},
	}
}

// testAgent is an agent on a loopback port and the fake AS behind it.
type testAgent struct {
	t     *testing.T
	as    *astest.Server
	agent *Agent
	cfg   *Config
	url   string
	logs  *bintest.Buffer
	clock *clock
	// host and origin, when set, are an application's (a configuration
	// with apps): its browsers send them as Host and Origin.
	host, origin string
}

// clock is the agent's time: the real time plus an offset a test moves.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func startAgent(t *testing.T, change func(*Config)) *testAgent {
	t.Helper()
	as := astest.New(t, astest.Options{})
	return startAgentWith(t, as, change)
}

func startAgentWith(t *testing.T, as *astest.Server, change func(*Config)) *testAgent {
	t.Helper()
	cfg := testConfig(as)
	clk := &clock{}
	cfg.Now = clk.now
	if change != nil {
		change(cfg)
	}
	logs := &bintest.Buffer{}
	a, url := serveAgent(t, cfg, metrics.NewSet(), logs)
	waitReady(t, a, logs)
	return &testAgent{t: t, as: as, agent: a, cfg: cfg, url: url, logs: logs, clock: clk}
}

// serveAgent starts the agent of cfg, its metrics in reg and its log in
// logs, on a loopback port until the test ends, and returns it with its
// URL.
func serveAgent(t *testing.T, cfg *Config, reg *metrics.Set, logs *bintest.Buffer) (*Agent, string) {
	t.Helper()
	a, err := New(cfg, reg, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: a.Handler, ReadBufferSize: 16 << 10}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return a, "http://" + ln.Addr().String()
}

// waitReady waits until a has the AS metadata.
func waitReady(t *testing.T, a *Agent, logs *bintest.Buffer) {
	t.Helper()
	if !bintest.Within(5*time.Second, a.Ready) {
		t.Fatalf("the agent did not load the AS metadata within 5s; logs:\n%s", logs.String())
	}
}

// spa returns a new browser for the SPA's origin.
func (a *testAgent) spa() *spatest.Browser {
	if a.origin == "" {
		return spatest.New(a.t, spaOrigin)
	}
	b := spatest.New(a.t, a.origin)
	b.Host = a.host
	return b
}

// call sends a request from b to the agent.
func (a *testAgent) call(b *spatest.Browser, method, path string, body any, extra ...string) spatest.Answer {
	a.t.Helper()
	return b.Call(method, a.url+path, body, extra...)
}

// login runs login/start, the AS's authorize step and login/end, and keeps
// the CSRF token in b.
func (a *testAgent) login(b *spatest.Browser) map[string]any {
	a.t.Helper()
	start := a.call(b, "POST", "/oauth-agent/login/start", nil)
	if start.Status != 200 {
		a.t.Fatalf("login/start: %d %s", start.Status, start.Body)
	}
	authURL, _ := start.JSON()["authorizationRequestUrl"].(string)
	redirect, err := a.as.Authorize(authURL)
	if err != nil {
		a.t.Fatalf("authorize: %v", err)
	}
	end := a.call(b, "POST", "/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()})
	if end.Status != 200 {
		a.t.Fatalf("login/end: %d %s", end.Status, end.Body)
	}
	m := end.JSON()
	b.CSRF, _ = m["csrf"].(string)
	return m
}

// open decrypts one of b's cookies with the agent's keys, for the purpose
// its name says.
func (a *testAgent) open(b *spatest.Browser, name string) string {
	plain, _ := a.openEnv(b, name)
	return plain
}

// openEnv is open that also returns the cookie's session envelope.
func (a *testAgent) openEnv(b *spatest.Browser, name string) (string, session.Envelope) {
	a.t.Helper()
	c := b.Cookie(name)
	if c == nil {
		a.t.Fatalf("no cookie %s", name)
	}
	p, err := session.ParsePurpose(name[strings.LastIndexByte(name, '-')+1:])
	if err != nil {
		a.t.Fatal(err)
	}
	codec, err := session.NewCodec(a.cfg.Keys, crypto.FormatV2, crypto.FormatV1, crypto.FormatDARE)
	if err != nil {
		a.t.Fatal(err)
	}
	var env session.Envelope
	plain, _, err := codec.Open(nil, []byte(c.Value), p, 0, &env)
	if err != nil {
		a.t.Fatalf("cookie %s does not open: %v", name, err)
	}
	return string(plain), env
}
