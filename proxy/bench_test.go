package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/proxy/proxytest"
	"github.com/tokenhandler/tokenhandler/revocation"
	"github.com/tokenhandler/tokenhandler/session"
)

// benchToken is a realistic ~1 KiB JWT access token (three base64url parts).
var benchToken = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJlbmNoIn0." + string(bytes.Repeat([]byte("eyJzdWIiOiJkZW1vLXVzZXIi"), 38)) + ".c2lnbmF0dXJl"

// benchStack is a proxy and an upstream API on in-memory listeners, and a
// keep-alive client: the whole request path without the kernel.
type benchStack struct {
	client *fasthttp.HostClient
	api    *fasthttp.Request // GET /api/things through the proxy
	nginx  *fasthttp.Request // the same GET as NGINX forwards it (X-Forwarded-*, X-Request-Id)
	auth   *fasthttp.Request // GET the auth endpoint
	post   *fasthttp.Request // POST /api/things with CSRF
	// Refused: an untrusted Origin; a P-at sealed with another key.
	denied, foreign *fasthttp.Request
	// revoked is a GET in another session, whose sid revokeMany revokes.
	revoked *fasthttp.Request
	// unknown is api with a Host no application has: 404 with apps.
	unknown *fasthttp.Request
	proxy   *Proxy
}

func newBenchStack(tb testing.TB) *benchStack {
	tb.Helper()
	return newBenchStackWith(tb, zerolog.Nop(), time.Now)
}

// newBenchStackWith is newBenchStack with the proxy logging to log and
// reading the time from now.
func newBenchStackWith(tb testing.TB, log zerolog.Logger, now func() time.Time) *benchStack {
	tb.Helper()
	return newBenchStackApps(tb, log, now, 0)
}

// newBenchStackApps is newBenchStackWith with apps applications (issue
// #15), app0 to app<apps-1> on the hosts app<i>.example.localhost, each
// with the routes and the key of the others, and the requests for the
// last one's host with cookies of that application. With apps 0 the
// configuration has no apps: the one application answers every host.
func newBenchStackApps(tb testing.TB, log zerolog.Logger, now func() time.Time, apps int) *benchStack {
	tb.Helper()
	upLn := fasthttputil.NewInmemoryListener()
	body := []byte(`{"subject":"demo-user","items":[1,2,3]}`)
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.Response.SetBodyRaw(body)
	}}
	go up.Serve(upLn)
	tb.Cleanup(func() { up.Shutdown() })

	key := crypto.GenerateKey()
	cfg, err := ParseConfig([]byte(fmt.Sprintf(`
encryption_keys: [%q]
trusted_web_origins: [%q]
routes: [{path_prefix: /api/, upstream: "http://api.internal"}]
auth_endpoint: true
log: {level: info}
`, key.AppendHex(nil), trustedOrigin)), nil)
	if err != nil {
		tb.Fatal(err)
	}
	keys, host, app := cfg.Keys, "api.example.localhost", ""
	if apps > 0 {
		list := make([]*Config, apps)
		for i := range list {
			a := *cfg
			a.Name = "app" + strconv.Itoa(i)
			a.Hosts = []string{a.Name + ".example.localhost"}
			list[i] = &a
		}
		cfg = appsConfig(cfg, list...)
		host, app = list[apps-1].Hosts[0], list[apps-1].Name
	}
	p, err := newProxy(cfg, metrics.NewSet(), log, func(string) (net.Conn, error) { return upLn.Dial() })
	if err != nil {
		tb.Fatal(err)
	}
	p.now = now
	pLn := fasthttputil.NewInmemoryListener()
	srv := httpConfig(cfg, p.Handler).Server(zerolog.Nop())
	go srv.Serve(pLn)
	tb.Cleanup(func() { srv.Shutdown() })

	// v2 cookies of one session, as the agent writes them by default.
	codec, err := session.NewCodec(keys, crypto.FormatV2)
	if err != nil {
		tb.Fatal(err)
	}
	codec = codec.WithApp(app)
	env := proxytest.NewSession(time.Now())
	at, _ := codec.Seal(nil, session.AccessToken, 0, &env, []byte(benchToken))
	csrf, _ := codec.Seal(nil, session.CSRF, 0, &env, []byte("csrf-token-value-0123456789abcdef"))
	mk := func(method, path string, extra ...string) *fasthttp.Request {
		r := &fasthttp.Request{}
		r.Header.SetMethod(method)
		r.SetRequestURI("http://" + host + path)
		r.Header.Set("Origin", trustedOrigin)
		r.Header.Set("Cookie", "theme=dark; example-at="+string(at)+"; example-csrf="+string(csrf))
		for i := 0; i < len(extra); i += 2 {
			r.Header.Set(extra[i], extra[i+1])
		}
		return r
	}
	foreignRing, _ := crypto.NewKeyring(crypto.GenerateKey())
	foreign, _ := session.NewCodec(foreignRing, crypto.FormatV2)
	foreign = foreign.WithApp(app)
	foreignAT, _ := foreign.Seal(nil, session.AccessToken, 0, &env, []byte(benchToken))
	revokedEnv := proxytest.NewSession(time.Now())
	revokedEnv.SID = revokedSID
	revokedAT, _ := codec.Seal(nil, session.AccessToken, 0, &revokedEnv, []byte(benchToken))
	unknown := mk("GET", "/api/things")
	unknown.SetRequestURI("http://nowhere.example.localhost/api/things") // the client sends the URI's host
	return &benchStack{
		client:  &fasthttp.HostClient{Addr: "proxy", Dial: func(string) (net.Conn, error) { return pLn.Dial() }},
		denied:  mk("GET", "/api/things", "Origin", "https://evil.example"),
		foreign: mk("GET", "/api/things", "Cookie", "example-at="+string(foreignAT)),
		api:     mk("GET", "/api/things"),
		nginx: mk("GET", "/api/things", "X-Forwarded-For", "203.0.113.7", "X-Forwarded-Proto", "https",
			"X-Forwarded-Host", "api.example.localhost", "X-Request-Id", "0123456789abcdef0123456789abcdef"),
		auth:    mk("GET", "/_oauth-proxy/auth", "X-Original-Method", "GET", "X-Original-URI", "/api/things"),
		post:    mk("POST", "/api/things", "x-example-csrf", "csrf-token-value-0123456789abcdef"),
		revoked: mk("GET", "/api/things", "Cookie", "example-at="+string(revokedAT)),
		unknown: unknown,
		proxy:   p,
	}
}

// revokedSID is the Provider session of benchStack.revoked.
var revokedSID = session.HashSID("https://login.example", "revoked-op-session")

// revokeMany puts n sessions on the proxy's revocation list, as a follower
// would: the one of s.revoked, an entry for the subject of s.api's session
// recorded before that session started (so it does not refuse it, but its
// lookup finds an entry and compares the times: the costlier path), and
// n-2 others, half by sid and half by sub, so that both of Revoked's
// lookups search a full map. None of them refuses s.api.
func (s *benchStack) revokeMany(n int) {
	const iss = "https://login.example"
	api := proxytest.NewSession(time.Now())
	entries := make([]revocation.Entry, 0, n)
	entries = append(entries,
		revocation.Entry{Kind: revocation.BySID, Digest: revokedSID, Expires: 1 << 40, Seq: 1},
		revocation.Entry{Kind: revocation.BySub, Digest: api.Sub, At: api.Started - 3600, Expires: 1 << 40, Seq: 2})
	for i := 2; i < n; i++ {
		e := revocation.Entry{Kind: revocation.BySID, Digest: session.HashSID(iss, strconv.Itoa(i)), Expires: 1 << 40, Seq: uint64(i + 1)}
		if i%2 == 1 {
			e.Kind, e.Digest, e.At = revocation.BySub, session.HashSub(iss, "user-"+strconv.Itoa(i)), 1<<40-1
		}
		entries = append(entries, e)
	}
	s.proxy.rev.set.Reset(entries, uint64(n))
}

// roundTrip sends req through the stack and checks the answer.
func (s *benchStack) roundTrip(tb testing.TB, req *fasthttp.Request, resp *fasthttp.Response) {
	if err := s.client.Do(req, resp); err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode() != 200 {
		tb.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
	}
}

// loop is a benchmark of req's round trip: one to warm up, then the
// measured ones, allocations reported.
func (s *benchStack) loop(b *testing.B, req *fasthttp.Request) {
	var resp fasthttp.Response
	s.roundTrip(b, req, &resp)
	b.ReportAllocs()
	for b.Loop() {
		s.roundTrip(b, req, &resp)
	}
}

// BenchmarkProxy: a GET in upstream mode with a 1 KiB token and a small
// JSON answer, client and upstream included.
func BenchmarkProxy(b *testing.B) {
	s := newBenchStack(b)
	s.loop(b, s.api)
}

// BenchmarkProxyNGINX is BenchmarkProxy's GET with the fields NGINX's
// rendered configuration adds, which the proxy removes and writes again
// (rewriteHopByHop): upstream mode's request behind NGINX.
func BenchmarkProxyNGINX(b *testing.B) {
	s := newBenchStack(b)
	s.loop(b, s.nginx)
}

// BenchmarkProxyPOST adds the CSRF check (a second decryption) and a request
// body stream. fasthttp's server allocates once per request that has a body
// stream when it discards what the handler left unread (io.CopyN in
// server.go); see TestRequestNoAllocs.
func BenchmarkProxyPOST(b *testing.B) {
	s := newBenchStack(b)
	s.loop(b, s.post)
}

// BenchmarkProxyRevoked is BenchmarkProxy with an empty revocation list
// and then with 100,000 sessions on it, none of them the request's (issue
// #13: at most 5 % slower than with none, in the same run). Both run on
// one stack, so that they differ only in the list.
func BenchmarkProxyRevoked(b *testing.B) {
	s := newBenchStack(b)
	for _, n := range []int{0, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			s.proxy.rev.set.Reset(nil, 0)
			if n > 0 {
				s.revokeMany(n)
			}
			if got := s.proxy.rev.set.Len(); got != n {
				b.Fatalf("revocation list: %d entries, want %d", got, n)
			}
			s.loop(b, s.api)
		})
	}
}

// BenchmarkProxyApps is BenchmarkProxy's GET with the configuration
// without apps (none) and with 1 and 50 applications (issue #15: 50 at
// most 5 % slower than 1, in the same run), the request for the last
// application's host.
func BenchmarkProxyApps(b *testing.B) {
	forAppCounts(b, func(b *testing.B, s *benchStack, n int) {
		if got := len(s.proxy.apps.Load().byName); got != max(n, 1) {
			b.Fatalf("%d applications configured, want %d", got, max(n, 1))
		}
		s.loop(b, s.api)
	})
}

// forAppCounts runs bench as sub-benchmarks apps=none, apps=1 and apps=50,
// each on a stack with that many applications (none: the configuration
// without apps), n the number.
func forAppCounts(b *testing.B, bench func(b *testing.B, s *benchStack, n int)) {
	for _, n := range []int{0, 1, 50} {
		name := "apps=" + strconv.Itoa(n)
		if n == 0 {
			name = "apps=none"
		}
		b.Run(name, func(b *testing.B) {
			bench(b, newBenchStackApps(b, zerolog.Nop(), time.Now, n), n)
		})
	}
}

func BenchmarkAuthRequest(b *testing.B) {
	s := newBenchStack(b)
	var resp fasthttp.Response
	s.roundTrip(b, s.auth, &resp)
	if !bytes.Equal(resp.Header.Peek("Authorization"), []byte("Bearer "+benchToken)) {
		b.Fatal("no bearer token in the auth answer")
	}
	s.loop(b, s.auth)
}

// BenchmarkDropRequestFields: removing the X-Forwarded-* lines of a request
// as NGINX forwards it (six other fields and the 1.4 KiB cookie of
// BenchmarkProxy), the header parsed again on every iteration; /parse is
// the parsing alone, to subtract.
func BenchmarkDropRequestFields(b *testing.B) {
	raw := []byte("GET /api/things HTTP/1.1\r\nHost: api.example.localhost\r\nX-Forwarded-For: 203.0.113.7\r\n" +
		"X-Forwarded-Proto: https\r\nX-Forwarded-Host: api.example.localhost\r\nX-Request-Id: 0123456789abcdef0123456789abcdef\r\n" +
		"User-Agent: Mozilla/5.0\r\nAccept: application/json\r\nAccept-Language: en\r\nOrigin: " + trustedOrigin + "\r\n" +
		"Cookie: theme=dark; example-at=" + strings.Repeat("A", 1411) + "\r\nSec-Fetch-Mode: cors\r\n\r\n")
	var h fasthttp.RequestHeader
	var br bytes.Reader
	rd := bufio.NewReaderSize(&br, 8192)
	s := scratchPool.Get().(*scratch)
	parse := func(b *testing.B) {
		br.Reset(raw)
		rd.Reset(&br)
		h.Reset()
		if err := h.Read(rd); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			parse(b)
		}
	})
	b.Run("drop", func(b *testing.B) {
		for b.Loop() {
			parse(b)
			dropRequestFields(&h, s, requestDropUntrusted, nil)
		}
		if len(h.Peek(fasthttp.HeaderXForwardedFor)) > 0 || len(h.Peek("Accept")) == 0 {
			b.Fatal("X-Forwarded-For kept or Accept removed")
		}
	})
}

// BenchmarkHostLookup is the part of BenchmarkProxyApps that the number of
// applications changes: finding the request's application by its Host,
// without apps (none), among 1 and among 50.
func BenchmarkHostLookup(b *testing.B) {
	forAppCounts(b, func(b *testing.B, s *benchStack, _ int) {
		table := s.proxy.apps.Load().hosts
		host := s.api.Host() // the Host header the client sends
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := table.Lookup(host); !ok {
				b.Fatalf("no application for %s", host)
			}
		}
	})
}
