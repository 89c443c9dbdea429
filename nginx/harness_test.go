package nginx_test

// The test harness: real NGINX processes on loopback ports, with the real
// oauth-proxy in-process and a test API behind them.

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/nginx"
	"github.com/tokenhandler/tokenhandler/nginx/nginxtest"
	"github.com/tokenhandler/tokenhandler/proxy"
	"github.com/tokenhandler/tokenhandler/session"
)

const (
	trustedOrigin = "http://www.example.localhost:3000"
	apiHost       = "api.example.localhost"
)

// runParams fills in what every test configuration needs: a run directory,
// one worker (round robin is then strict), and as root a user the workers
// can write the run directory with.
func runParams(t *testing.T, p nginx.Params) nginx.Params {
	t.Helper()
	p.RunDir = t.TempDir()
	p.WorkerProcesses = 1
	if os.Geteuid() == 0 {
		p.User = "root"
	}
	return p
}

// instance is one running NGINX.
type instance struct {
	url  string // http(s)://127.0.0.1:port
	conf []byte
}

// startNGINX runs NGINX (nginxtest.Start) with mode and p on a free
// loopback port until the test ends.
func startNGINX(t *testing.T, mode string, p nginx.Params) *instance {
	t.Helper()
	scheme := "http"
	if p.TLSCertificate != "" {
		scheme = "https"
	}
	n := nginxtest.Start(t, nginxtest.Binary(t), mode, p)
	conf, err := os.ReadFile(filepath.Join(n.Dir(), "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	return &instance{url: scheme + "://" + n.Addr(), conf: conf}
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string { return bintest.FreeTCPAddr(t) }

// api is the protected API: it records the last request and answers with
// its path as JSON.
type api struct {
	*httptest.Server
	mu   sync.Mutex
	last *http.Request
	body []byte
}

func newAPI(t *testing.T) *api {
	t.Helper()
	a := &api{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "websocket" {
			a.echo(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.last, a.body = r, body
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	}))
	t.Cleanup(a.Close)
	return a
}

// echo switches to the WebSocket-like protocol "echo a line" and records the
// request. It stands for a WebSocket API: NGINX only has to carry the
// upgrade.
func (a *api) echo(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.last, a.body = r, nil
	a.mu.Unlock()
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	rw.Flush()
	if line, err := rw.ReadString('\n'); err == nil {
		rw.WriteString(line)
		rw.Flush()
	}
}

// received returns the last request the API saw, and forgets it.
func (a *api) received() (*http.Request, []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, b := a.last, a.body
	a.last, a.body = nil, nil
	return r, b
}

// addr is the API's host:port.
func (a *api) addr() string { return strings.TrimPrefix(a.URL, "http://") }

// testKeys are the keys the proxies of one test share, and the session the
// test's cookies belong to.
type testKeys struct {
	hex   [2]string       // the sealing key first, then an older one
	ring  *crypto.Keyring // both
	old   *crypto.Keyring // the older key alone
	codec *session.Codec  // seals v2 cookies with ring, as the agent does
	// env is the session of the cookies seal makes: started a minute ago,
	// valid for an hour.
	env session.Envelope
}

func newTestKeys(t *testing.T) *testKeys {
	t.Helper()
	newKey, oldKey := crypto.GenerateKey(), crypto.GenerateKey()
	k := &testKeys{hex: [2]string{string(newKey.AppendHex(nil)), string(oldKey.AppendHex(nil))}, env: newSession(time.Now())}
	var err error
	if k.ring, err = crypto.NewKeyring(newKey, oldKey); err != nil {
		t.Fatal(err)
	}
	if k.old, err = crypto.NewKeyring(oldKey); err != nil {
		t.Fatal(err)
	}
	if k.codec, err = session.NewCodec(k.ring, crypto.FormatV2); err != nil {
		t.Fatal(err)
	}
	return k
}

// newSession returns the envelope of a session that started a minute
// before now, whose cookies stay valid for an hour.
func newSession(now time.Time) session.Envelope {
	return session.Envelope{ID: session.NewID(), Started: now.Add(-time.Minute).Unix(), Expires: now.Add(time.Hour).Unix()}
}

// seal returns a v2 cookie value of purpose p holding plaintext, in the
// session k.env.
func (k *testKeys) seal(t *testing.T, p session.Purpose, plaintext string) string {
	t.Helper()
	return k.sealIn(t, &k.env, p, 0, plaintext)
}

// sealIn seals plaintext for purpose p in session env, for a cookie split
// into chunks chunks (0: whole).
func (k *testKeys) sealIn(t *testing.T, env *session.Envelope, p session.Purpose, chunks int, plaintext string) string {
	t.Helper()
	c, err := k.codec.Seal(nil, p, chunks, env, []byte(plaintext))
	if err != nil {
		t.Fatal(err)
	}
	return string(c)
}

// sealLegacy seals plaintext in format f (v1 or DARE), without purpose or
// session.
func (k *testKeys) sealLegacy(t *testing.T, f crypto.Format, plaintext string) string {
	t.Helper()
	c, err := k.ring.Seal(nil, []byte(plaintext), f)
	if err != nil {
		t.Fatal(err)
	}
	return string(c)
}

// chunked returns the cookie pairs name.0=…; name.1=… of plaintext sealed
// for purpose p in session k.env, split into chunks of at most per
// characters as the agent splits them: the chunk count is sealed in.
func (k *testKeys) chunked(t *testing.T, name string, p session.Purpose, per int, plaintext string) string {
	t.Helper()
	n := max(2, (k.codec.SealedLen(len(plaintext))+per-1)/per)
	sealed := k.sealIn(t, &k.env, p, n, plaintext)
	size := (len(sealed) + n - 1) / n
	pairs := make([]string, n)
	for i := range n {
		pairs[i] = fmt.Sprintf("%s.%d=%s", name, i, sealed[i*size:min((i+1)*size, len(sealed))])
	}
	return strings.Join(pairs, "; ")
}

// startProxy runs an oauth-proxy with keys k and the configuration extra
// appended: in upstream mode routing /api/ to apiAddr, or with apiAddr ""
// without routes, as NGINX's auth_request mode wants it (its auth endpoint
// is on only then). It returns the proxy's address.
func startProxy(t *testing.T, k *testKeys, apiAddr, extra string) string {
	t.Helper()
	return startProxyOn(t, "127.0.0.1:0", k, apiAddr, extra)
}

// startProxyOn is startProxy listening on listen: "host:port" or
// "unix:/path".
func startProxyOn(t *testing.T, listen string, k *testKeys, apiAddr, extra string) string {
	t.Helper()
	routes := ""
	if apiAddr != "" {
		routes = fmt.Sprintf("routes:\n  - {path_prefix: /api/, upstream: \"http://%s\"}", apiAddr)
	}
	yaml := fmt.Sprintf(`
listen: %s
encryption_keys: [%q, %q]
trusted_web_origins: [%q]
%s
timeouts: {upstream: 5s}
log: {level: warn}
%s`, listen, k.hex[0], k.hex[1], trustedOrigin, routes, extra)
	cfg, err := proxy.ParseConfig([]byte(yaml), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Warnings != nil {
		t.Fatalf("the proxy's configuration uses a deprecated spelling: %q", cfg.Warnings)
	}
	srv, err := proxy.NewServer(cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	bintest.Serve(t, srv.Serve, srv.Shutdown)
	return srv.Addr().String()
}

// request is one call.
type request struct {
	method  string
	path    string
	headers [][2]string // in order; names may repeat
	body    io.Reader
	length  int64 // with body: Content-Length, -1 for chunked
}

// response is what came back.
type response struct {
	status int
	header http.Header
	body   string
	tls    *tls.ConnectionState
}

func newClient(roots *tls.Config) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConnsPerHost:   16,
			DisableCompression:    true,
			TLSClientConfig:       roots,
			ExpectContinueTimeout: 5 * time.Second,
		},
		Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

var client = newClient(nil)

func do(t *testing.T, c *http.Client, base string, r request) response {
	t.Helper()
	req, err := http.NewRequest(r.method, base+r.path, r.body)
	if err != nil {
		t.Fatal(err)
	}
	if r.body != nil {
		req.ContentLength = r.length
	}
	for _, kv := range r.headers {
		if strings.EqualFold(kv[0], "Host") {
			req.Host = kv[1]
			continue
		}
		k := http.CanonicalHeaderKey(kv[0])
		req.Header[k] = append(req.Header[k], kv[1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", r.method, base, r.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s%s: reading the body: %v", r.method, base, r.path, err)
	}
	return response{resp.StatusCode, resp.Header, string(body), resp.TLS}
}

// rawAnswer is what came back for a request written byte for byte.
type rawAnswer struct {
	status int
	header http.Header
	body   string
	err    error // no HTTP answer could be read
}

// rawGet writes "GET target HTTP/1.1" and headers (lines ending in CRLF) on
// a new connection to base (http://host:port), as they are: no client
// cleans the target. It reads one answer.
func rawGet(t *testing.T, base, target, headers string) rawAnswer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: "+apiHost+"\r\n"+headers+"Connection: close\r\n\r\n"); err != nil {
		return rawAnswer{err: err}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return rawAnswer{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return rawAnswer{status: resp.StatusCode, header: resp.Header, body: string(body), err: err}
}
