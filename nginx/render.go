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
	"github.com/tokenhandler/tokenhandler/internal/settings"
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

	// Apps are the applications of a configuration with several (issue
	// #15, the daemons' apps): each gets a server block of its own, named
	// by its ServerNames, with its own cookie names, maps and agent, API
	// and auth locations. Listen, TLS, the upstreams and the main context
	// stay one, shared by every application. With Apps, leave ServerName
	// and every field App has (CookiePrefix, NamePrefix, AgentBasePath,
	// APIPathPrefix, AuthPath, KeepCookieHeaders, CORSDisabled) zero: each
	// App says its own, and Render refuses them here. Empty: one
	// application on ServerName, as before Apps.
	Apps []App

	// TLSCertificate and TLSCertificateKey are the PEM files of the https
	// listener; both required in ModeTLS, and either mode serves https when
	// they are set.
	TLSCertificate    string
	TLSCertificateKey string
}

// App is one application of [Params].Apps: what NGINX does differently per
// application. Each field mirrors the application's own setting in the
// daemons' files (apps[i]) and has the default of the [Params] field of
// the same name. It is plain data and may be copied.
type App struct {
	// Name is the application's apps[i].name (settings.CheckAppName: 1 to
	// 32 of a-z 0-9 -, starting with a letter); unique. Its maps are named
	// after it ($th_api_cookie_<name>, a '-' written '_').
	Name string
	// ServerNames are apps[i].hosts: the server_name of its server block,
	// host names or [IPv6] addresses without a port; at least one, and no
	// two applications share one. The agent and the proxy pick the
	// application by the same Host, which NGINX passes on to them.
	ServerNames []string
	// CookiePrefix and NamePrefix are its cookie.prefix and
	// cookie.name_prefix; no two applications share a CookiePrefix.
	CookiePrefix string
	NamePrefix   browser.NamePrefix
	// AgentBasePath is its agent base_path; APIPathPrefix its API location
	// (in upstream mode the path_prefix of one of its routes); AuthPath its
	// proxy auth_path (auth_request mode).
	AgentBasePath string
	APIPathPrefix string
	AuthPath      string
	// KeepCookieHeaders and CORSDisabled mirror its remove_cookie_headers:
	// false and cors.enabled: false, as the fields of Params.
	KeepCookieHeaders bool
	CORSDisabled      bool
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

// view is what the template sees: Params with the defaults applied, and
// one application (an app) per server block.
type view struct {
	Params
	Mode    string
	TLS     bool
	Workers string
	// Apps are the server blocks: one per Params.Apps, or the one
	// application of Params without Apps.
	Apps []*app
	// Multi is true with Params.Apps: the server blocks and their maps are
	// named by application, and a server for unknown hosts comes first.
	Multi bool
	// ServerNamesBucketSize is the server_names_hash_bucket_size the
	// longest server name needs, or 0 when NGINX's default holds it.
	ServerNamesBucketSize int
}

// app is one server block: an App with the defaults applied and the names
// derived from it. The shared view and the App are embedded: the template
// reads all from one dot, and the App's fields hide the Params fields of
// the same name (they are one level less deep).
type app struct {
	*view
	App                      // Name "" without Params.Apps
	Suffix            string // of the app's map variables: "" without Params.Apps, else "_" and Name with '_' for '-'
	ServerName        string // names separated by spaces
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

	var err error
	if len(p.Apps) == 0 {
		if v.ServerName == "" {
			v.ServerName = "api.example.localhost"
		}
		if !serverName.MatchString(v.ServerName) {
			return nil, fmt.Errorf("nginx: ServerName: %q is not a list of host names", v.ServerName)
		}
		one := App{CookiePrefix: p.CookiePrefix, NamePrefix: p.NamePrefix, AgentBasePath: p.AgentBasePath,
			APIPathPrefix: p.APIPathPrefix, AuthPath: p.AuthPath, KeepCookieHeaders: p.KeepCookieHeaders, CORSDisabled: p.CORSDisabled}
		a, err := newApp(v, one, func(field string) string { return field })
		if err != nil {
			return nil, err
		}
		a.ServerName = v.ServerName
		v.Apps = []*app{a}
	} else if v.Apps, err = newApps(v, p); err != nil {
		return nil, err
	}
	v.Multi = len(p.Apps) > 0
	longest := 0
	for _, a := range v.Apps {
		for name := range strings.FieldsSeq(a.ServerName) {
			longest = max(longest, len(name))
		}
	}
	if size := headersBucketSize(longest); size > 64 {
		v.ServerNamesBucketSize = size
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
	return v, nil
}

// newApps checks p.Apps, each alone and across them, and returns their
// server blocks. The fields that are an App's must be left zero in p.
func newApps(v *view, p Params) ([]*app, error) {
	for _, f := range []struct {
		field string
		set   bool
	}{
		{"ServerName", p.ServerName != ""}, {"CookiePrefix", p.CookiePrefix != ""}, {"NamePrefix", p.NamePrefix != browser.NamePrefixNone},
		{"AgentBasePath", p.AgentBasePath != ""}, {"APIPathPrefix", p.APIPathPrefix != ""},
		{"AuthPath", p.AuthPath != ""}, {"KeepCookieHeaders", p.KeepCookieHeaders}, {"CORSDisabled", p.CORSDisabled},
	} {
		if f.set {
			return nil, fmt.Errorf("nginx: %s: must be left zero with Apps: each App sets its own", f.field)
		}
	}
	var apps []*app
	hostOwner := make(map[string]int)
	for i, in := range p.Apps {
		field := func(f string) string { return fmt.Sprintf("Apps[%d].%s", i, f) }
		if err := settings.CheckAppName(field("Name"), in.Name); err != nil {
			return nil, fmt.Errorf("nginx: %w", err)
		}
		if len(in.ServerNames) == 0 {
			return nil, fmt.Errorf("nginx: %s: at least one host is required", field("ServerNames"))
		}
		for _, h := range in.ServerNames {
			// As the daemons' apps[i].hosts, which settings.CheckHost
			// returns lower case, without a trailing dot.
			if checked, err := settings.CheckHost("", h); err != nil || checked != h {
				return nil, fmt.Errorf("nginx: %s: %q is not a lower-case host name or [IPv6] address", field("ServerNames"), h)
			}
			if j, dup := hostOwner[h]; dup {
				return nil, fmt.Errorf("nginx: %s: %q is also a host of Apps[%d] (%s)", field("ServerNames"), h, j, p.Apps[j].Name)
			}
			hostOwner[h] = i
		}
		a, err := newApp(v, in, field)
		if err != nil {
			return nil, err
		}
		for j, b := range apps {
			if a.Name == b.Name {
				return nil, fmt.Errorf("nginx: %s: %q is also Apps[%d].Name", field("Name"), a.Name, j)
			}
			if a.CookiePrefix == b.CookiePrefix {
				return nil, fmt.Errorf("nginx: %s: %q is also the cookie prefix of Apps[%d] (%s)", field("CookiePrefix"), a.CookiePrefix, j, b.Name)
			}
		}
		a.ServerName = strings.Join(in.ServerNames, " ")
		apps = append(apps, a)
	}
	return apps, nil
}

// newApp checks one application's settings and applies their defaults;
// field names a setting in its errors. An application with a Name gets
// map variables of its own.
func newApp(v *view, in App, field func(string) string) (*app, error) {
	a := &app{view: v, App: in}
	if a.CookiePrefix == "" {
		a.CookiePrefix = browser.DefaultPrefix
	}
	// The names are browser.Names', as the agent and the proxy use them.
	// browser.CheckPrefix keeps the prefix to A-Z a-z 0-9 - _, so it is
	// safe in a regular expression ('-' is special only inside brackets),
	// a variable name and a directive.
	if err := browser.CheckPrefix(a.CookiePrefix); err != nil {
		return nil, fmt.Errorf("nginx: %s: %w", field("CookiePrefix"), err)
	}
	names, err := browser.NewNames(a.CookiePrefix, a.NamePrefix)
	if err != nil {
		return nil, fmt.Errorf("nginx: %s: %w", field("CookiePrefix"), err) // an unknown NamePrefix
	}
	// Five cookies and their chunks .0 to .7 (browser.MaxChunks).
	var cookies []string
	for _, c := range names.Cookies() {
		cookies = append(cookies, regexp.QuoteMeta(c.Name))
	}
	a.CookieNames = `(?:` + strings.Join(cookies, "|") + `)(?:\.[0-` + strconv.Itoa(browser.MaxChunks-1) + `])?`
	a.RefreshCookie = names.RefreshToken.Name
	a.CSRFHeader = names.CSRFHeader
	a.HeadersBucketSize = headersBucketSize(len(a.CSRFHeader))

	if a.AgentBasePath == "" {
		a.AgentBasePath = "/oauth-agent"
	}
	if err := checkPath(field("AgentBasePath"), a.AgentBasePath); err != nil {
		return nil, err
	}
	a.AgentBasePath = strings.TrimSuffix(a.AgentBasePath, "/")
	if a.AgentBasePath == "" {
		return nil, fmt.Errorf(`nginx: %s: must not be "/"`, field("AgentBasePath"))
	}
	if a.APIPathPrefix == "" {
		a.APIPathPrefix = "/api/"
	}
	if err := checkPath(field("APIPathPrefix"), a.APIPathPrefix); err != nil {
		return nil, err
	}
	if !strings.HasSuffix(a.APIPathPrefix, "/") || a.APIPathPrefix == "/" {
		return nil, fmt.Errorf("nginx: %s: %q must end with \"/\" and not be \"/\"", field("APIPathPrefix"), a.APIPathPrefix)
	}
	if a.AuthPath == "" {
		a.AuthPath = "/_oauth-proxy/auth"
	}
	if err := checkPath(field("AuthPath"), a.AuthPath); err != nil {
		return nil, err
	}
	if strings.HasPrefix(a.AuthPath, a.APIPathPrefix) || strings.HasPrefix(a.AuthPath, a.AgentBasePath+"/") {
		return nil, fmt.Errorf("nginx: %s: %q must lie outside %s and %s", field("AuthPath"), a.AuthPath, field("APIPathPrefix"), field("AgentBasePath"))
	}
	if strings.HasPrefix(a.APIPathPrefix, a.AgentBasePath+"/") || strings.HasPrefix(a.AgentBasePath+"/", a.APIPathPrefix) {
		return nil, fmt.Errorf("nginx: %s %q and %s %q overlap", field("APIPathPrefix"), a.APIPathPrefix, field("AgentBasePath"), a.AgentBasePath)
	}

	if in.Name != "" {
		// Names are a-z 0-9 and '-', which ends an NGINX variable name:
		// '_' stands for it, and no name has a '_' of its own. The suffix
		// ends every name, so that no application's variable is another's
		// ($th_cookie_1_<name> against $th_cookie_checked_<name>: a name
		// starts with a letter).
		a.Suffix = "_" + strings.ReplaceAll(in.Name, "-", "_")
	}
	src := "$http_cookie"
	for i := range stripSteps {
		out := "$th_cookie_" + strconv.Itoa(i+1) + a.Suffix
		a.StripSteps = append(a.StripSteps, stripStep{In: src, Out: out})
		src = out
	}
	a.StripLast = src
	return a, nil
}

// headersBucketSize returns a proxy_headers_hash_bucket_size that holds a
// header name of n bytes. NGINX's default, 64, fits names up to 46 bytes;
// x-<prefix>-csrf with a 40-character prefix and longer failed `nginx -t`
// with "could not build proxy_headers_hash". An entry takes a pointer and
// the name plus a two-byte length, rounded up to the pointer size
// (NGX_HASH_ELT_SIZE in ngx_hash.h); a bucket holds one entry and the
// terminating pointer and is rounded up to the 64-byte cache line. The
// server name hash is built alike (server_names_hash_bucket_size: names up
// to 46 characters fit the default; TestNginxAcceptsApps tries 253).
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
