// Package nginx renders the NGINX configurations that put the token handler
// behind NGINX (contract §6, §7): upstream mode, where NGINX sends API calls to
// the OAuth Proxy, auth_request mode, where NGINX asks the proxy and calls
// the API itself, and upstream mode over TLS. Both modes route the OAuth
// Agent too, with /refresh hashed on the refresh-token cookie so that
// refresh single-flight holds across several agent instances.
//
// It takes the cookie names and the proxy's error answers (status and JSON
// body, by code) that NGINX gives itself from package browser, so that they
// cannot drift, without linking the proxy; nginx/README.md explains every
// directive of the output.
package nginx

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"github.com/tokenhandler/tokenhandler/browser"
)

// The modes Render knows.
const (
	ModeUpstream    = "upstream"     // NGINX → oauth-proxy → API
	ModeAuthRequest = "auth_request" // NGINX asks oauth-proxy, then NGINX → API
	ModeTLS         = "tls"          // ModeUpstream on an https listener
)

// Modes lists every mode, in the order the README presents them.
var Modes = []string{ModeUpstream, ModeAuthRequest, ModeTLS}

// Params are the settings of a rendered configuration. The zero value of
// each field is a documented default, so Params{} renders a configuration for
// the addresses of deploy/ and contract §7 (the ModeTLS certificate aside).
//
// Params is plain data and may be copied; Render does not modify it or keep
// its slices.
type Params struct {
	// Snippet renders only what belongs in NGINX's http{} context (maps,
	// upstreams, the server), for /etc/nginx/conf.d/. Otherwise Render
	// writes a whole nginx.conf that keeps its pid file, logs and
	// temporary files in RunDir.
	Snippet bool
	// RunDir is the absolute directory of the pid file, error.log,
	// access.log and temporary files of a whole configuration; required
	// unless Snippet. NGINX runs with `nginx -p RunDir -c FILE`.
	RunDir string
	// User is the value of the user directive ("www-data", or "user
	// group"); "" leaves the directive out. It only matters when the
	// master process runs as root: then workers run as this user, "nobody"
	// when it is left out, and must be able to write RunDir.
	User string
	// WorkerProcesses is the number of worker processes; 0 means "auto".
	WorkerProcesses int

	// Listen is the listen address: "port", "host:port", "[v6]:port" or
	// "unix:/path". Default "80", or "443" with TLS.
	Listen string
	// ServerName is the server_name value, names separated by spaces.
	// Default "api.example.localhost".
	ServerName string

	// CookiePrefix is cookie.prefix of the agent and proxy; default
	// "example". The cookies are <prefix>-at, ... and the CSRF header is
	// x-<prefix>-csrf (browser.NewNames computes them).
	CookiePrefix string
	// NamePrefix mirrors cookie.name_prefix of the agent and proxy: the
	// cookie names start with "__Host-" or "__Host-Http-".
	NamePrefix browser.NamePrefix
	// HostPrefix is an alias of NamePrefix browser.NamePrefixHost, kept
	// from before NamePrefix (it mirrored cookie.host_prefix, now
	// cookie.name_prefix: host); with any other NamePrefix it is an error.
	HostPrefix bool
	// AgentBasePath is the agent's base_path; default "/oauth-agent".
	AgentBasePath string
	// APIPathPrefix is the location of the protected API, starting and
	// ending with "/"; default "/api/". In upstream mode it must be a
	// path_prefix of the proxy's routes.
	APIPathPrefix string
	// AuthPath is the proxy's auth_path (auth_request mode); default
	// "/_oauth-proxy/auth".
	AuthPath string

	// Agents are the oauth-agent instances ("host:port" or "unix:/path");
	// default ["127.0.0.1:8080"].
	Agents []string
	// Proxies are the oauth-proxy instances; default ["127.0.0.1:8081"].
	Proxies []string
	// ProxyWorkers mirrors the proxy's workers setting (0 means 1, at
	// most 64): with more than one, a Unix socket "unix:/path" of Proxies
	// stands for its workers' sockets /path.0 to /path.<N-1>, all listed
	// in the upstream; a TCP address is one port the workers share.
	ProxyWorkers int
	// APIs are the servers of the protected API that NGINX calls itself in
	// auth_request mode; default ["127.0.0.1:9000"]. Unused in upstream
	// mode, where the proxy's routes name the API.
	APIs []string
	// KeepCookieHeaders mirrors the proxy's remove_cookie_headers: false in
	// auth_request mode: NGINX then forwards the token-handler cookies and
	// the CSRF header to the API. By default it strips them, as the proxy
	// does.
	KeepCookieHeaders bool
	// CORSDisabled mirrors the proxy's cors.enabled: false in auth_request
	// mode: the proxy answers no preflight then, so NGINX sends OPTIONS
	// through auth_request to the API like any other method (the proxy's
	// auth endpoint lets it pass without a cookie). By default NGINX hands
	// OPTIONS to the proxy, which answers the preflight.
	CORSDisabled bool

	// TLSCertificate and TLSCertificateKey are the PEM files of the https
	// listener; both required in ModeTLS, and either mode serves https when
	// they are set.
	TLSCertificate    string
	TLSCertificateKey string
}

//go:embed tokenhandler.conf.tmpl
var templateText string

var tmpl = template.Must(template.New("tokenhandler.conf").Funcs(template.FuncMap{"errorReturn": errorReturn}).Parse(templateText))

// errorReturn is the template's {{errorReturn "upstream_unavailable"}}: the
// NGINX return of the proxy's error answer with that code, its status and
// JSON body (browser.ErrorAnswer), so that a browser sees the same answer
// whichever of NGINX and the proxy gives it. NGINX quotes the body in '...'.
func errorReturn(code string) (string, error) {
	e := browser.ErrorAnswerFor(code)
	if e == nil || strings.ContainsAny(string(e.Body), `'\$`) {
		return "", fmt.Errorf("no error answer %q that NGINX can quote", code)
	}
	return fmt.Sprintf("return %d '%s';", e.Status, e.Body), nil
}

// stripSteps is how many runs of adjacent token-handler cookies NGINX
// removes from the Cookie header in auth_request mode, one map each. A
// browser sends the cookies of one login side by side, so one or two runs
// are usual; a header with more keeps no cookie at all.
const stripSteps = 6

// view is what the template sees: Params with the defaults applied and the
// names derived from them.
type view struct {
	Params
	Mode              string
	TLS               bool
	Workers           string
	CookieNames       string // regular expression of every token-handler cookie name, chunks included
	RefreshCookie     string // the refresh token cookie's name
	CSRFHeader        string // x-<prefix>-csrf
	HeadersBucketSize int    // proxy_headers_hash_bucket_size: the longest name of proxy_set_header fits
	StripSteps        []stripStep
	StripLast         string // the variable of the last step
}

// stripStep is one map of the cookie stripping: Out is In without its
// first run of token-handler cookies.
type stripStep struct{ In, Out string }

// Render returns the configuration of mode (ModeUpstream, ModeAuthRequest or
// ModeTLS) for p, or an error that names the first invalid parameter.
// Everything Render writes into the configuration is checked against a
// narrow character set first, so no parameter can add a directive.
func Render(mode string, p Params) ([]byte, error) {
	v, err := newView(mode, p)
	if err != nil {
		return nil, err
	}
	var body bytes.Buffer
	if err := tmpl.ExecuteTemplate(&body, "http", v); err != nil {
		return nil, fmt.Errorf("nginx: internal error: %w", err)
	}
	if v.Snippet {
		return body.Bytes(), nil
	}
	var out bytes.Buffer
	if err := tmpl.ExecuteTemplate(&out, "main", v); err != nil {
		return nil, fmt.Errorf("nginx: internal error: %w", err)
	}
	// The http{} block: the snippet, indented.
	for line := range strings.Lines(body.String()) {
		if line != "\n" {
			out.WriteString("    ")
		}
		out.WriteString(line)
	}
	out.WriteString("}\n")
	return out.Bytes(), nil
}

var (
	safePath   = regexp.MustCompile(`^/[A-Za-z0-9._~/+@=,-]*$`)
	serverName = regexp.MustCompile(`^[A-Za-z0-9.*_-]+(?: [A-Za-z0-9.*_-]+)*$`)
	hostName   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
	userName   = regexp.MustCompile(`^[A-Za-z0-9._-]+(?: [A-Za-z0-9._-]+)?$`)
)

func newView(mode string, p Params) (*view, error) {
	v := &view{Params: p, Mode: mode}
	switch mode {
	case ModeUpstream, ModeAuthRequest:
	case ModeTLS:
		if p.TLSCertificate == "" || p.TLSCertificateKey == "" {
			return nil, errors.New("nginx: mode tls needs TLSCertificate and TLSCertificateKey")
		}
	default:
		return nil, fmt.Errorf("nginx: unknown mode %q (want %s)", mode, strings.Join(Modes, ", "))
	}
	v.TLS = p.TLSCertificate != "" || p.TLSCertificateKey != ""
	if v.TLS {
		if err := checkPath("TLSCertificate", p.TLSCertificate); err != nil {
			return nil, err
		}
		if err := checkPath("TLSCertificateKey", p.TLSCertificateKey); err != nil {
			return nil, err
		}
	}

	if !p.Snippet {
		if err := checkPath("RunDir", p.RunDir); err != nil {
			return nil, err
		}
		v.RunDir = strings.TrimSuffix(p.RunDir, "/")
		if v.RunDir == "" {
			return nil, errors.New(`nginx: RunDir: must not be "/"`)
		}
	}
	if p.User != "" && !userName.MatchString(p.User) {
		return nil, fmt.Errorf("nginx: User: %q is not a user name (and optional group)", p.User)
	}
	switch {
	case p.WorkerProcesses < 0:
		return nil, fmt.Errorf("nginx: WorkerProcesses: %d is negative", p.WorkerProcesses)
	case p.WorkerProcesses == 0:
		v.Workers = "auto"
	default:
		v.Workers = strconv.Itoa(p.WorkerProcesses)
	}

	if v.Listen == "" {
		v.Listen = "80"
		if v.TLS {
			v.Listen = "443"
		}
	}
	if err := checkAddr("Listen", v.Listen, true); err != nil {
		return nil, err
	}
	if v.ServerName == "" {
		v.ServerName = "api.example.localhost"
	}
	if !serverName.MatchString(v.ServerName) {
		return nil, fmt.Errorf("nginx: ServerName: %q is not a list of host names", v.ServerName)
	}

	if v.CookiePrefix == "" {
		v.CookiePrefix = browser.DefaultPrefix
	}
	if p.HostPrefix {
		if p.NamePrefix != browser.NamePrefixNone && p.NamePrefix != browser.NamePrefixHost {
			return nil, fmt.Errorf("nginx: HostPrefix contradicts NamePrefix %s", p.NamePrefix)
		}
		v.NamePrefix = browser.NamePrefixHost
	}
	// The names are browser.Names', as the agent and the proxy use them.
	// browser.CheckPrefix keeps the prefix to A-Z a-z 0-9 - _, so it is
	// safe in a regular expression ('-' is special only inside brackets),
	// a variable name and a directive.
	if err := browser.CheckPrefix(v.CookiePrefix); err != nil {
		return nil, fmt.Errorf("nginx: CookiePrefix: %w", err)
	}
	names, err := browser.NewNames(v.CookiePrefix, v.NamePrefix)
	if err != nil {
		return nil, fmt.Errorf("nginx: CookiePrefix: %w", err) // an unknown NamePrefix
	}
	// Five cookies and their chunks .0 to .7 (browser.MaxChunks).
	var cookies []string
	for _, c := range names.Cookies() {
		cookies = append(cookies, regexp.QuoteMeta(c.Name))
	}
	v.CookieNames = `(?:` + strings.Join(cookies, "|") + `)(?:\.[0-` + strconv.Itoa(browser.MaxChunks-1) + `])?`
	v.RefreshCookie = names.RefreshToken.Name
	v.CSRFHeader = names.CSRFHeader
	v.HeadersBucketSize = headersBucketSize(len(v.CSRFHeader))

	if v.AgentBasePath == "" {
		v.AgentBasePath = "/oauth-agent"
	}
	if err := checkPath("AgentBasePath", v.AgentBasePath); err != nil {
		return nil, err
	}
	v.AgentBasePath = strings.TrimSuffix(v.AgentBasePath, "/")
	if v.AgentBasePath == "" {
		return nil, errors.New(`nginx: AgentBasePath: must not be "/"`)
	}
	if v.APIPathPrefix == "" {
		v.APIPathPrefix = "/api/"
	}
	if err := checkPath("APIPathPrefix", v.APIPathPrefix); err != nil {
		return nil, err
	}
	if !strings.HasSuffix(v.APIPathPrefix, "/") || v.APIPathPrefix == "/" {
		return nil, fmt.Errorf("nginx: APIPathPrefix: %q must end with \"/\" and not be \"/\"", v.APIPathPrefix)
	}
	if v.AuthPath == "" {
		v.AuthPath = "/_oauth-proxy/auth"
	}
	if err := checkPath("AuthPath", v.AuthPath); err != nil {
		return nil, err
	}
	if strings.HasPrefix(v.AuthPath, v.APIPathPrefix) || strings.HasPrefix(v.AuthPath, v.AgentBasePath+"/") {
		return nil, fmt.Errorf("nginx: AuthPath: %q must lie outside APIPathPrefix and AgentBasePath", v.AuthPath)
	}
	if strings.HasPrefix(v.APIPathPrefix, v.AgentBasePath+"/") || strings.HasPrefix(v.AgentBasePath+"/", v.APIPathPrefix) {
		return nil, fmt.Errorf("nginx: APIPathPrefix %q and AgentBasePath %q overlap", v.APIPathPrefix, v.AgentBasePath)
	}

	if v.Agents, err = servers("Agents", p.Agents, "127.0.0.1:8080"); err != nil {
		return nil, err
	}
	if v.Proxies, err = servers("Proxies", p.Proxies, "127.0.0.1:8081"); err != nil {
		return nil, err
	}
	if p.ProxyWorkers < 0 || p.ProxyWorkers > 64 {
		return nil, fmt.Errorf("nginx: ProxyWorkers: %d is not between 0 and 64", p.ProxyWorkers)
	}
	if p.ProxyWorkers > 1 {
		var socks []string
		for _, a := range v.Proxies {
			if !strings.HasPrefix(a, "unix:") {
				socks = append(socks, a)
				continue
			}
			for i := range p.ProxyWorkers {
				socks = append(socks, a+"."+strconv.Itoa(i))
			}
		}
		v.Proxies = socks
	}
	if v.APIs, err = servers("APIs", p.APIs, "127.0.0.1:9000"); err != nil {
		return nil, err
	}

	in := "$http_cookie"
	for i := range stripSteps {
		out := "$th_cookie_" + strconv.Itoa(i+1)
		v.StripSteps = append(v.StripSteps, stripStep{In: in, Out: out})
		in = out
	}
	v.StripLast = in
	return v, nil
}

// headersBucketSize returns a proxy_headers_hash_bucket_size that holds a
// header name of n bytes. NGINX's default, 64, fits names up to 46 bytes;
// x-<prefix>-csrf with a 40-character prefix and longer failed `nginx -t`
// with "could not build proxy_headers_hash". An entry takes a pointer and
// the name plus a two-byte length, rounded up to the pointer size
// (NGX_HASH_ELT_SIZE in ngx_hash.h); a bucket holds one entry and the
// terminating pointer and is rounded up to the 64-byte cache line.
func headersBucketSize(n int) int {
	const ptr, line = 8, 64
	need := ptr + (n+2+ptr-1)/ptr*ptr + ptr
	return max(64, (need+line-1)/line*line)
}

func checkPath(setting, p string) error {
	if !safePath.MatchString(p) {
		return fmt.Errorf("nginx: %s: %q must be an absolute path of A-Z a-z 0-9 . _ ~ / + @ = , -", setting, p)
	}
	return nil
}

// servers returns addrs, or def when addrs is empty, after checking each.
func servers(setting string, addrs []string, def string) ([]string, error) {
	if len(addrs) == 0 {
		return []string{def}, nil
	}
	for i, a := range addrs {
		if err := checkAddr(fmt.Sprintf("%s[%d]", setting, i), a, false); err != nil {
			return nil, err
		}
	}
	return append([]string(nil), addrs...), nil
}

// checkAddr accepts "host:port", "[v6]:port", "unix:/path" and, for a
// listen address, a bare port.
func checkAddr(setting, a string, listen bool) error {
	if path, ok := strings.CutPrefix(a, "unix:"); ok {
		return checkPath(setting, path)
	}
	bad := func(why string) error {
		return fmt.Errorf("nginx: %s: %q %s", setting, a, why)
	}
	host, port := "", a
	if !listen || strings.ContainsAny(a, ":") {
		var err error
		if host, port, err = net.SplitHostPort(a); err != nil {
			return bad("is not host:port or unix:/path")
		}
		if ip := net.ParseIP(host); ip == nil && !hostName.MatchString(host) && !(listen && host == "*") {
			return bad("has an invalid host")
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return bad("has an invalid port")
	}
	return nil
}
