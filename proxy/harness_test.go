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
	"github.com/tokenhandler/tokenhandler/session"
)

const trustedOrigin = "http://www.example.localhost:3000"

// upstream is a test API that records what it received.
type upstream struct {
	srv  *http.Server
	addr string

	mu   sync.Mutex
	last *http.Request
	body []byte
	// handler, when set for a path, answers instead of the default echo.
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
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.last, u.body = r, body
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Upstream", "yes")
	fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
}

func (u *upstream) handle(path string, h http.HandlerFunc) {
	u.mu.Lock()
	u.handlers[path] = h
	u.mu.Unlock()
}

// received returns the last request the default handler saw, and forgets it.
func (u *upstream) received() (*http.Request, []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	r, b := u.last, u.body
	u.last, u.body = nil, nil
	return r, b
}

// harness is a proxy server on a loopback port in front of an upstream.
type harness struct {
	t     *testing.T
	srv   *Server
	url   string
	up    *upstream
	keys  *crypto.Keyring // the ring the proxy uses: newKey, oldKey
	old   *crypto.Keyring // oldKey alone
	codec *session.Codec  // seals v2 cookies with keys, as the agent does
	// env is the session every cookie of seal belongs to: started a
	// minute ago, valid for an hour.
	env  session.Envelope
	cfg  *Config
	logs *bintest.Buffer // what the proxy logged
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
	newKey, oldKey := crypto.GenerateKey(), crypto.GenerateKey()
	if !strings.Contains(extra, "timeouts:") {
		extra += defaultTimeouts
	}
	if !strings.Contains(extra, "log:") {
		extra += "\nlog: {level: warn}"
	}
	cfg, err := ParseConfig([]byte(config(addr, string(newKey.AppendHex(nil)), string(oldKey.AppendHex(nil)), extra)), func(string) string { return "" })
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
	old, _ := crypto.NewKeyring(oldKey)
	codec, err := session.NewCodec(cfg.Keys, crypto.FormatV2)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, srv: srv, url: "http://" + srv.Addr().String(), up: up, keys: cfg.Keys, old: old, codec: codec,
		env: newSession(time.Now()), cfg: cfg, logs: logs}
}

// newSession returns the envelope of a session that started a minute
// before now, whose cookies stay valid for an hour.
func newSession(now time.Time) session.Envelope {
	return session.Envelope{
		ID:      session.NewID(),
		Started: now.Add(-time.Minute).Unix(),
		Expires: now.Add(time.Hour).Unix(),
		SID:     session.HashSID("https://login.example", "op-session"),
		Sub:     session.HashSub("https://login.example", "demo-user"),
	}
}

// seal returns a v2 cookie value of purpose p holding plaintext, in the
// harness's session, sealed with the proxy's first key.
func (h *harness) seal(p session.Purpose, plaintext string) string {
	return h.sealIn(&h.env, p, 0, plaintext)
}

// sealIn seals plaintext for purpose p in session env, for a cookie split
// into chunks chunks (0: whole).
func (h *harness) sealIn(env *session.Envelope, p session.Purpose, chunks int, plaintext string) string {
	h.t.Helper()
	c, err := h.codec.Seal(nil, p, chunks, env, []byte(plaintext))
	if err != nil {
		h.t.Fatal(err)
	}
	return string(c)
}

// sealLegacy seals plaintext in format f (v1 or DARE), which carries no
// purpose and no session.
func (h *harness) sealLegacy(f crypto.Format, plaintext string) string {
	h.t.Helper()
	c, err := h.keys.Seal(nil, []byte(plaintext), f)
	if err != nil {
		h.t.Fatal(err)
	}
	return string(c)
}

// chunked returns the cookie pairs name.0=…; name.1=… of plaintext sealed
// for purpose p in the harness's session and split into n chunks of equal
// length, as the agent splits them.
func (h *harness) chunked(name string, p session.Purpose, n int, plaintext string) string {
	return joinChunks(name, splitValue(h.sealIn(&h.env, p, n, plaintext), n))
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
	req, err := http.NewRequest(r.method, h.url+r.path, r.body)
	if err != nil {
		h.t.Fatal(err)
	}
	if r.body != nil {
		req.ContentLength = r.length
	}
	for _, kv := range r.headers {
		if strings.EqualFold(kv[0], "Host") {
			req.Host = kv[1]
			continue
		}
		req.Header[http.CanonicalHeaderKey(kv[0])] = append(req.Header[http.CanonicalHeaderKey(kv[0])], kv[1])
	}
	resp, err := client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: reading the body: %v", r.method, r.path, err)
	}
	return response{resp.StatusCode, resp.Header, string(body)}
}
