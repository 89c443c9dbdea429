package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/spatest"
	"github.com/tokenhandler/tokenhandler/nginx"
	"github.com/tokenhandler/tokenhandler/nginx/nginxtest"
	"github.com/tokenhandler/tokenhandler/session"
)

// nginxBinary returns the path of NGINX (nginxtest.Binary).
func nginxBinary(t *testing.T) string { return nginxtest.Binary(t) }

// daemons are the built oauth-agent and oauth-proxy binaries.
type daemons struct{ agent, proxy *bintest.Binary }

// buildDaemons builds cmd/oauth-agent and cmd/oauth-proxy (with the race
// detector when the test runs with it) and removes them when t ends.
func buildDaemons(t *testing.T) daemons {
	t.Helper()
	// The secrets' variables would clash with the configurations' own.
	d := daemons{
		agent: &bintest.Binary{Name: "oauth-agent", Unset: []string{"TH_ENCRYPTION_KEYS", "TH_CLIENT_SECRET"}},
		proxy: &bintest.Binary{Name: "oauth-proxy", Unset: []string{"TH_ENCRYPTION_KEYS"}},
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		dir string
		b   *bintest.Binary
	}{{"../cmd/oauth-agent", d.agent}, {"../cmd/oauth-proxy", d.proxy}} {
		// A Binary builds the package in the working directory.
		t.Chdir(filepath.Join(wd, x.dir))
		path := x.b.Path(t)
		t.Cleanup(func() { os.RemoveAll(filepath.Dir(path)) })
	}
	t.Chdir(wd)
	return d
}

// fixture is what the stacks of one test share: NGINX, the built daemons
// and oidc-provider.
type fixture struct {
	ngx  string
	bins daemons
	op   *oidcProvider
}

// newFixture finds NGINX (skipping the test without it), builds the
// daemons and starts oidc-provider.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	fx := &fixture{ngx: nginxBinary(t), bins: buildDaemons(t)}
	fx.op = startOIDCProvider(t)
	return fx
}

// stack starts a stack of fx's parts shaped by o.
func (fx *fixture) stack(t *testing.T, o stackOptions) *binStack {
	t.Helper()
	return startStack(t, fx.op, fx.bins, fx.ngx, o)
}

// stackOptions shape a stack; the zero value is the default deployment.
type stackOptions struct {
	// format is cookie.format of the agent and the proxies; default v2.
	format string
	// agentYAML and proxyYAML are lines appended to the agent's and to
	// both proxies' configuration files.
	agentYAML, proxyYAML string
	// cookiePrefix is cookie.prefix of all three; default "example".
	cookiePrefix string
	// namePrefix is cookie.name_prefix of the agent and the proxies, and
	// NGINX's NamePrefix; default none.
	namePrefix browser.NamePrefix
	// params changes the NGINX parameters of both modes before rendering.
	params func(*nginx.Params)
	// revocation gives the agent a revocation state_dir (the embedded
	// store, persisted in a temporary directory) and makes both proxies
	// follow its feed on the agent's ops listener; without it the agent
	// keeps its store in memory and the proxies follow nothing.
	revocation bool
	// agentAddr is the agent's listen address; default a free one. A test
	// that must name the agent before it starts (an OP's
	// backchannel_logout_uri) picks it with bintest.FreeTCPAddr.
	agentAddr string
}

// binStack is one deployment of the built binaries: the agent, a proxy with
// routes behind NGINX in upstream mode, a proxy without routes behind
// NGINX in auth_request mode, and the recording API.
type binStack struct {
	format       string
	cookiePrefix string
	key          string         // hex
	codec        *session.Codec // opens cookies sealed with key
	op           *oidcProvider
	upstream     string   // NGINX in upstream mode, http://host:port
	authReq      string   // NGINX in auth_request mode
	proxyURL     string   // the upstream-mode proxy directly, http://host:port
	authURL      string   // the auth_request proxy's auth endpoint, directly
	agentURL     string   // the agent directly, http://host:port
	agentOps     string   // the agent's ops listener, http://host:port
	proxyOps     []string // the proxies' ops listeners (upstream mode first), http://host:port
	api          *recordingAPI
}

func startStack(t *testing.T, op *oidcProvider, bins daemons, ngx string, o stackOptions) *binStack {
	t.Helper()
	if o.format == "" {
		o.format = "v2"
	}
	if o.cookiePrefix == "" {
		o.cookiePrefix = "example"
	}
	s := &binStack{format: o.format, cookiePrefix: o.cookiePrefix, op: op, api: startRecordingAPI(t)}
	key := crypto.GenerateKey()
	s.key = string(key.AppendHex(nil))
	ring, _ := crypto.NewKeyring(key)
	s.codec, _ = session.NewCodec(ring, crypto.FormatV2)
	dir := t.TempDir()

	agentAddr, agentOps := o.agentAddr, bintest.FreeTCPAddr(t)
	if agentAddr == "" {
		agentAddr = bintest.FreeTCPAddr(t)
	}
	s.agentURL, s.agentOps = "http://"+agentAddr, "http://"+agentOps
	if o.revocation {
		o.agentYAML += fmt.Sprintf("revocation: {state_dir: %q}\n", filepath.Join(dir, "revocation"))
		o.proxyYAML += fmt.Sprintf("revocation: {feed: %q}\n", s.agentOps)
	}
	// shared is what both daemons' configurations say alike.
	shared := func(addr, ops, timeout string) string {
		return fmt.Sprintf(`listen: %q
metrics_listen: %q
cookie: {prefix: %s, name_prefix: %s, format: %s}
encryption_keys: [%q]
trusted_web_origins: [%q]
timeouts: {%s, shutdown: 2s}
log: {level: warn}
`, addr, ops, o.cookiePrefix, o.namePrefix, o.format, s.key, spaOrigin, timeout)
	}
	agentYAML := shared(agentAddr, agentOps, "as: 5s") + fmt.Sprintf(`issuer: %q
client_id: spa-client
client_secret: %q
redirect_uri: %q
post_logout_redirect_uri: %q
`, op.Issuer, op.secret, spaOrigin+"/", spaOrigin+"/") + o.agentYAML
	bintest.WriteFile(t, filepath.Join(dir, "oauth-agent.yaml"), agentYAML)
	agentProc := bins.agent.Start(t, "-config", filepath.Join(dir, "oauth-agent.yaml"))

	proxyAddrs := map[string]string{}
	var proxyOps []string
	var proxyProcs []*bintest.Process
	for _, mode := range []string{nginx.ModeUpstream, nginx.ModeAuthRequest} {
		addr, ops := bintest.FreeTCPAddr(t), bintest.FreeTCPAddr(t)
		routes := ""
		if mode == nginx.ModeUpstream {
			routes = fmt.Sprintf("routes: [{path_prefix: /api/, upstream: %q}]\n", "http://"+s.api.addr)
		}
		yaml := shared(addr, ops, "upstream: 5s") + routes + o.proxyYAML
		file := filepath.Join(dir, "oauth-proxy-"+mode+".yaml")
		bintest.WriteFile(t, file, yaml)
		proxyProcs = append(proxyProcs, bins.proxy.Start(t, "-config", file))
		proxyAddrs[mode] = addr
		proxyOps = append(proxyOps, ops)
		s.proxyOps = append(s.proxyOps, "http://"+ops)
	}
	s.proxyURL = "http://" + proxyAddrs[nginx.ModeUpstream]
	s.authURL = "http://" + proxyAddrs[nginx.ModeAuthRequest] + "/_oauth-proxy/auth"

	// Ready: the agent has the OP's metadata, the proxies serve.
	client := &http.Client{Timeout: 2 * time.Second}
	ready := func(p *bintest.Process, ops, what string) {
		p.Eventually(t, 20*time.Second, what+" /readyz", func() bool {
			code, _, err := bintest.Get(client, "http://"+ops+"/readyz")
			return err == nil && code == 200
		})
	}
	ready(agentProc, agentOps, "oauth-agent")
	for i, p := range proxyProcs {
		ready(p, proxyOps[i], "oauth-proxy")
	}
	// The configurations above are written as contract §7 spells them: a
	// daemon that logged a deprecated spelling (at warn, before serving)
	// means this file, or what a caller appended, fell behind the shape.
	noDeprecation(t, "oauth-agent", agentProc.Stderr())
	for _, p := range proxyProcs {
		noDeprecation(t, "oauth-proxy", p.Stderr())
	}

	for _, mode := range []string{nginx.ModeUpstream, nginx.ModeAuthRequest} {
		params := nginx.Params{
			Agents: []string{agentAddr}, Proxies: []string{proxyAddrs[mode]}, APIs: []string{s.api.addr},
			CookiePrefix: o.cookiePrefix, NamePrefix: o.namePrefix,
		}
		if o.params != nil {
			o.params(&params)
		}
		n := nginxtest.Start(t, ngx, mode, params)
		if mode == nginx.ModeUpstream {
			s.upstream = "http://" + n.Addr()
		} else {
			s.authReq = "http://" + n.Addr()
		}
	}
	return s
}

// noDeprecation fails t when a daemon's stderr, read once it is ready,
// has a deprecation warning: the test configurations use only the spellings
// of contract §7, so that what they test is what the docs tell people to
// write.
func noDeprecation(t *testing.T, what, stderr string) {
	t.Helper()
	for line := range strings.Lines(stderr) {
		if strings.Contains(line, "deprecated") {
			t.Errorf("%s logged a deprecated spelling: %s", what, strings.TrimSpace(line))
		}
	}
}

// login logs a new browser in as user, through NGINX in upstream mode and
// the OP's own login and consent pages, and fails t unless the agent
// wrote an access token cookie (a name ending in "-at").
func (s *binStack) login(t *testing.T, user string) *spatest.Browser {
	t.Helper()
	return s.loginWith(t, newOPUserAgent(t, s.op), user)
}

// loginWith is login with the user's browser on the OP's pages: its cookie
// jar holds the OP session the login makes, which a test may then end.
func (s *binStack) loginWith(t *testing.T, ua *opUserAgent, user string) *spatest.Browser {
	t.Helper()
	b := spatest.New(t, spaOrigin)
	b.CSRFHeader = "x-" + s.cookiePrefix + "-csrf"
	authURL, _ := redirectURL(t, b.Call("POST", s.upstream+"/oauth-agent/login/start", nil),
		"login/start", "authorizationRequestUrl", s.op.Issuer+"/")
	redirect := ua.authorize(t, authURL, user)
	end := b.Call("POST", s.upstream+"/oauth-agent/login/end", map[string]string{"pageUrl": redirect.String()})
	if end.Status != 200 || end.JSON()["isLoggedIn"] != true {
		t.Fatalf("login/end: %d %s", end.Status, end.Body)
	}
	b.CSRF, _ = end.JSON()["csrf"].(string)
	for _, c := range b.Cookies {
		if strings.HasSuffix(c.Name, "-at") {
			return b
		}
	}
	t.Fatalf("the login of %s wrote no access token cookie", user)
	return nil
}

// apiRequest is what the recording API received.
type apiRequest struct {
	Method, Path string
	Header       http.Header
}

// recordingAPI is the protected API: it records every request and answers
// 200 {"ok":true}, with one answer header for each query parameter
// h=Name:value.
type recordingAPI struct {
	addr string
	mu   sync.Mutex
	reqs []apiRequest
}

func startRecordingAPI(t *testing.T) *recordingAPI {
	t.Helper()
	a := &recordingAPI{}
	ln := listen(t)
	a.addr = ln.Addr().String()
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.reqs = append(a.reqs, apiRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()})
		a.mu.Unlock()
		for _, h := range r.URL.Query()["h"] {
			if name, value, ok := strings.Cut(h, ":"); ok {
				w.Header().Add(name, value)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

// mark is the number of requests so far, for since and requests.
func (a *recordingAPI) mark() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.reqs)
}

// requests returns the requests after mark.
func (a *recordingAPI) requests(mark int) []apiRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.reqs[mark:])
}

// since returns the Authorization headers of the requests after mark.
func (a *recordingAPI) since(mark int) []string {
	var auth []string
	for _, r := range a.requests(mark) {
		auth = append(auth, r.Header.Get("Authorization"))
	}
	return auth
}
