package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/proxy/proxytest"
	"github.com/tokenhandler/tokenhandler/session"
)

const trustedOrigin = "http://www.example.localhost:3000"

// upstream is a test API that records what it received.
type upstream struct {
	proxytest.API
	srv  *http.Server
	addr string

	mu sync.Mutex
	// handler, when set for a path, answers instead of the API.
	handlers map[string]http.HandlerFunc
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: ln.Addr().String(), handlers: map[string]http.HandlerFunc{}}
	u.srv = &http.Server{Handler: u, ReadHeaderTimeout: 5 * time.Second}
	go u.srv.Serve(ln)
	t.Cleanup(func() { u.srv.Close() })
	return u
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	h := u.handlers[r.URL.Path]
	u.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	w.Header().Set("X-Upstream", "yes")
	u.API.ServeHTTP(w, r)
}

func (u *upstream) handle(path string, h http.HandlerFunc) {
	u.mu.Lock()
	u.handlers[path] = h
	u.mu.Unlock()
}

// harness is a proxy server on a loopback port in front of an upstream,
// and the keys it is configured with: Seal's cookies are in the session
// Env, started a minute ago, valid for an hour.
type harness struct {
	t   *testing.T
	srv *Server
	url string
	up  *upstream
	*proxytest.Keys
	cfg  *Config
	logs *bintest.Buffer // what the proxy logged
	// host, when set, is the Host header of every request: the one of
	// the harness's application (apps_test.go).
	host string
}

// testConfig returns the YAML configuration of a harness; extra is appended.
func testConfig(upAddr, newKey, oldKey, extra string) string {
	return fmt.Sprintf(`
listen: 127.0.0.1:0
encryption_keys: [%q, %q]
trusted_web_origins: [%q]
routes:
  - {path_prefix: /api/, upstream: "http://%s"}
  - {path_prefix: /api/v2/, upstream: "http://%s", strip_prefix: true}
%s`, newKey, oldKey, trustedOrigin, upAddr, upAddr, extra)
}

// noRoutesConfig is testConfig without routes: a proxy for auth_request
// mode alone.
func noRoutesConfig(_, newKey, oldKey, extra string) string {
	return fmt.Sprintf(`
listen: 127.0.0.1:0
encryption_keys: [%q, %q]
trusted_web_origins: [%q]
%s`, newKey, oldKey, trustedOrigin, extra)
}

// defaultTimeouts keeps failing upstreams from slowing the tests down.
const defaultTimeouts = "\ntimeouts: {upstream: 2s}"

// startProxy starts a proxy whose configuration is testConfig plus extra
// YAML (later keys of the same name are refused by YAML, so extra only adds).
func startProxy(t *testing.T, extra string) *harness {
	t.Helper()
	up := newUpstream(t)
	return startProxyTo(t, up, up.addr, extra)
}

// startProxyTo starts a proxy whose routes lead to addr.
func startProxyTo(t *testing.T, up *upstream, addr, extra string) *harness {
	t.Helper()
	return startProxyWith(t, testConfig, up, addr, extra)
}

// startProxyNoRoutes starts a proxy without routes, as for NGINX's
// auth_request mode; extra is added to its configuration.
func startProxyNoRoutes(t *testing.T, extra string) *harness {
	t.Helper()
	up := newUpstream(t)
	return startProxyWith(t, noRoutesConfig, up, up.addr, extra)
}

// startProxyWith starts a proxy configured by config(addr, keys, extra).
func startProxyWith(t *testing.T, config func(addr, newKey, oldKey, extra string) string, up *upstream, addr, extra string) *harness {
	t.Helper()
	k := proxytest.NewKeys(t)
	if !strings.Contains(extra, "timeouts:") {
		extra += defaultTimeouts
	}
	if !strings.Contains(extra, "log:") {
		extra += "\nlog: {level: warn}"
	}
	cfg, err := ParseConfig([]byte(config(addr, k.Hex[0], k.Hex[1], extra)), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Warnings != nil { // the old spellings are config_test.go's
		t.Fatalf("the configuration uses a deprecated spelling: %q", cfg.Warnings)
	}
	logs := &bintest.Buffer{}
	srv, err := NewServer(cfg, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	bintest.Serve(t, srv.Serve, srv.Shutdown)
	return &harness{t: t, srv: srv, url: "http://" + srv.Addr().String(), up: up, Keys: k, cfg: cfg, logs: logs}
}

// seal returns a v2 cookie value of purpose p holding plaintext, in the
// harness's session, sealed with the proxy's first key.
func (h *harness) seal(p session.Purpose, plaintext string) string { return h.Seal(h.t, p, plaintext) }

// sealIn seals plaintext for purpose p in session env, for a cookie split
// into chunks chunks (0: whole).
func (h *harness) sealIn(env *session.Envelope, p session.Purpose, chunks int, plaintext string) string {
	return h.SealIn(h.t, env, p, chunks, plaintext)
}

// sealLegacy seals plaintext in format f (v1 or DARE), which carries no
// purpose and no session.
func (h *harness) sealLegacy(f crypto.Format, plaintext string) string {
	return h.SealLegacy(h.t, f, plaintext)
}

// chunked returns the cookie pairs name.0=…; name.1=… of plaintext sealed
// for purpose p in the harness's session and split into n chunks of equal
// length, as the agent splits them.
func (h *harness) chunked(name string, p session.Purpose, n int, plaintext string) string {
	return joinChunks(name, splitValue(h.sealIn(&h.Env, p, n, plaintext), n))
}

// splitValue cuts v into n parts, the agent's way: all of one length but
// the last.
func splitValue(v string, n int) []string {
	per := (len(v) + n - 1) / n
	parts := make([]string, 0, n)
	for i := range n {
		parts = append(parts, v[i*per:min((i+1)*per, len(v))])
	}
	return parts
}

// joinChunks writes parts as the cookie pairs name.0=parts[0]; name.1=….
func joinChunks(name string, parts []string) string {
	pairs := make([]string, len(parts))
	for i, v := range parts {
		pairs[i] = fmt.Sprintf("%s.%d=%s", name, i, v)
	}
	return strings.Join(pairs, "; ")
}

// request describes one call to the proxy.
type request struct {
	method  string
	path    string
	headers [][2]string // in order; repeated names allowed
	body    io.Reader
	length  int64 // Content-Length when body is set; -1 for chunked
}

// response is what came back.
type response struct {
	status int
	header http.Header
	body   string
}

var client = &http.Client{
	Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true},
	Timeout:   10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

func (h *harness) do(r request) response {
	h.t.Helper()
	if h.host != "" {
		r.headers = append([][2]string{{"Host", h.host}}, r.headers...)
	}
	resp, body := bintest.Do(h.t, client, bintest.NewRequest(h.t, r.method, h.url+r.path, r.headers, r.body, r.length))
	return response{resp.StatusCode, resp.Header, string(body)}
}
