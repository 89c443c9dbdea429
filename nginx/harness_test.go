package nginx_test

// The test harness: real NGINX processes on loopback ports, with the real
// oauth-proxy in-process and a test API behind them.

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/nginx"
	"github.com/tokenhandler/tokenhandler/nginx/nginxtest"
	"github.com/tokenhandler/tokenhandler/proxy"
	"github.com/tokenhandler/tokenhandler/proxy/proxytest"
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
	conf, err := os.ReadFile(filepath.Join(n.Params().RunDir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	return &instance{url: scheme + "://" + n.Addr(), conf: conf}
}

// api is the protected API: it records the last request and answers with
// its path as JSON.
type api struct {
	*httptest.Server
	proxytest.API
}

func newAPI(t *testing.T) *api {
	t.Helper()
	a := &api{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "websocket" {
			a.echo(w, r)
			return
		}
		a.API.ServeHTTP(w, r)
	}))
	t.Cleanup(a.Close)
	return a
}

// echo switches to the WebSocket-like protocol "echo a line" and records the
// request. It stands for a WebSocket API: NGINX only has to carry the
// upgrade.
func (a *api) echo(w http.ResponseWriter, r *http.Request) {
	a.Record(r, nil)
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

// addr is the API's host:port.
func (a *api) addr() string { return strings.TrimPrefix(a.URL, "http://") }

// chunked returns the cookie pairs name.0=…; name.1=… of plaintext sealed
// for purpose p in session k.Env, split into chunks of at most per
// characters as the agent splits them: the chunk count is sealed in.
func chunked(t *testing.T, k *proxytest.Keys, name string, p session.Purpose, per int, plaintext string) string {
	t.Helper()
	n := max(2, (k.Codec.SealedLen(len(plaintext))+per-1)/per)
	sealed := k.SealIn(t, &k.Env, p, n, plaintext)
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
func startProxy(t *testing.T, k *proxytest.Keys, apiAddr, extra string) string {
	t.Helper()
	return startProxyOn(t, "127.0.0.1:0", k, apiAddr, extra)
}

// startProxyOn is startProxy listening on listen: "host:port" or
// "unix:/path".
func startProxyOn(t *testing.T, listen string, k *proxytest.Keys, apiAddr, extra string) string {
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
%s`, listen, k.Hex[0], k.Hex[1], trustedOrigin, routes, extra)
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
	resp, body := bintest.Do(t, c, bintest.NewRequest(t, r.method, base+r.path, r.headers, r.body, r.length))
	return response{resp.StatusCode, resp.Header, string(body), resp.TLS}
}

// rawGet writes "GET target HTTP/1.1" and headers (lines ending in CRLF) on
// a new connection to base (http://host:port), as they are: no client
// cleans the target. It reads one answer.
func rawGet(t *testing.T, base, target, headers string) bintest.RawAnswer {
	t.Helper()
	return bintest.Raw(t, strings.TrimPrefix(base, "http://"), "GET "+target+" HTTP/1.1\r\nHost: "+apiHost+"\r\n"+headers+"Connection: close\r\n\r\n")
}
