package main

// -proxy-config and -agent-config: the applications and the settings NGINX
// mirrors, read from the daemons' own files with their own LoadConfig
// (issue #15), so that NGINX routes exactly the hosts, paths and cookie
// names the agent and the proxy serve.

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tokenhandler/tokenhandler/agent"
	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/nginx"
	"github.com/tokenhandler/tokenhandler/proxy"
)

// daemonFiles are the configurations of -proxy-config and -agent-config as
// the daemons load them; either may be missing.
type daemonFiles struct {
	proxyPath, agentPath string
	proxy                *proxy.Config
	agent                *agent.Config
}

// loadFiles loads the files that were given, reading the environment as
// the daemons do (the keys and the client secret may come from it, or from
// files it names: render where the daemons run, as their user). Their
// errors name the setting and never quote a secret.
func loadFiles(proxyPath, agentPath string, getenv func(string) string) (*daemonFiles, error) {
	f := &daemonFiles{proxyPath: proxyPath, agentPath: agentPath}
	var err error
	if proxyPath != "" {
		if f.proxy, err = proxy.LoadConfig(proxyPath, getenv); err != nil {
			return nil, fmt.Errorf("-proxy-config: %w", err)
		}
	}
	if agentPath != "" {
		if f.agent, err = agent.LoadConfig(agentPath, getenv); err != nil {
			return nil, fmt.Errorf("-agent-config: %w", err)
		}
	}
	return f, nil
}

// fileApp is one application as the files describe it: the proxy's and
// the agent's view of it (either nil when its file was not given), and
// its cookie names as the first file given says them (the files must
// agree).
type fileApp struct {
	name         string // "" for a file without apps
	hosts        []string
	cookiePrefix string
	namePrefix   browser.NamePrefix
	proxy        *proxy.Config
	agent        *agent.Config
}

// label names the application in messages.
func (a *fileApp) label() string {
	if a.name == "" {
		return "the application"
	}
	return "application " + a.name
}

// apps pairs the applications of the two files by name, in the order of
// the proxy's file (else the agent's), and refuses files that disagree on
// what NGINX has to route alike for both daemons: the applications, their
// hosts and their cookie names.
func (f *daemonFiles) apps() ([]*fileApp, error) {
	var apps []*fileApp
	if f.proxy != nil {
		for _, c := range f.proxy.Applications() {
			apps = append(apps, &fileApp{name: c.Name, hosts: c.Hosts, cookiePrefix: c.CookieNamePrefix, namePrefix: c.NamePrefix, proxy: c})
		}
	}
	if f.agent == nil {
		return apps, nil
	}
	agentApps := f.agent.Applications()
	if f.proxy == nil {
		for _, c := range agentApps {
			apps = append(apps, &fileApp{name: c.Name, hosts: c.Hosts, cookiePrefix: c.CookieNamePrefix, namePrefix: c.Cookie.NamePrefix, agent: c})
		}
		return apps, nil
	}
	pf, af := "-proxy-config "+f.proxyPath, "-agent-config "+f.agentPath
	if (len(f.proxy.Apps) == 0) != (len(f.agent.Apps) == 0) {
		with, without := pf, af
		if len(f.proxy.Apps) == 0 {
			with, without = af, pf
		}
		return nil, fmt.Errorf("%s lists applications (apps:) and %s does not: both files must list the same applications", with, without)
	}
	for _, c := range agentApps {
		i := slices.IndexFunc(apps, func(a *fileApp) bool { return a.name == c.Name })
		if i < 0 {
			return nil, fmt.Errorf("application %s is in %s but not in %s: both files must list the same applications", c.Name, af, pf)
		}
		a := apps[i]
		a.agent = c
		if !sameHosts(a.hosts, c.Hosts) {
			return nil, fmt.Errorf("%s: hosts [%s] in %s, [%s] in %s: NGINX sends one set of hosts to both", a.label(),
				strings.Join(a.hosts, " "), pf, strings.Join(c.Hosts, " "), af)
		}
		if a.proxy.CookieNamePrefix != c.CookieNamePrefix {
			return nil, fmt.Errorf("%s: cookie.prefix %q in %s, %q in %s: they must be equal, the proxy reads the cookies the agent writes", a.label(),
				a.proxy.CookieNamePrefix, pf, c.CookieNamePrefix, af)
		}
		if a.proxy.NamePrefix != c.Cookie.NamePrefix {
			return nil, fmt.Errorf("%s: cookie.name_prefix %s in %s, %s in %s: they must be equal, the proxy reads the cookies the agent writes", a.label(),
				a.proxy.NamePrefix, pf, c.Cookie.NamePrefix, af)
		}
		// The proxy must open what the agent seals: its key (the first
		// of the agent's ring is among the proxy's, or at least one key is
		// shared) and its format.
		if !a.proxy.Keys.Shares(c.Keys) {
			return nil, fmt.Errorf("%s: the encryption keys of %s and %s share no key: the proxy could open no cookie the agent writes", a.label(), pf, af)
		}
		// The zero Format is v2, which every daemon reads.
		if f := cmp.Or(c.CookieFormat, crypto.FormatV2); f != crypto.FormatV2 && f != a.proxy.CookieFormat && !slices.Contains(a.proxy.CookieAccept, f) {
			return nil, fmt.Errorf("%s: cookie.format %s in %s is not read by %s (cookie.format %s, cookie.accept %v)", a.label(), f, af, pf, cmp.Or(a.proxy.CookieFormat, crypto.FormatV2), a.proxy.CookieAccept)
		}
	}
	for _, a := range apps {
		if a.agent == nil {
			return nil, fmt.Errorf("application %s is in %s but not in %s: both files must list the same applications", a.name, pf, af)
		}
	}
	return apps, nil
}

func sameHosts(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// fill sets p from the files for mode: with apps p.Apps, one per
// application, without them the fields of the one application; the agents
// and proxies from the daemons' listen addresses and the proxy's workers
// unless -agent, -proxy or -proxy-workers say otherwise. A flag given on
// the command line (set) that contradicts a file is refused; a flag that
// no file given sets applies to every application. Warnings go to stderr.
func (f *daemonFiles) fill(p *nginx.Params, mode string, set map[string]bool, stderr io.Writer) error {
	apps, err := f.apps()
	if err != nil {
		return err
	}
	pf, af := "-proxy-config "+f.proxyPath, "-agent-config "+f.agentPath

	// The flags' values, the defaults of what no file says.
	flags := nginx.App{CookiePrefix: p.CookiePrefix, NamePrefix: p.NamePrefix, AgentBasePath: p.AgentBasePath,
		APIPathPrefix: p.APIPathPrefix, AuthPath: p.AuthPath, KeepCookieHeaders: p.KeepCookieHeaders, CORSDisabled: p.CORSDisabled}

	multi := apps[0].name != ""
	if multi && set["server-name"] {
		return fmt.Errorf("-server-name: the hosts of the applications in %s are the server names: leave it out", either(f.proxyPath != "", pf, af))
	}
	var out []nginx.App
	for _, a := range apps {
		n := flags
		n.Name, n.ServerNames = a.name, a.hosts
		n.CookiePrefix, n.NamePrefix = a.cookiePrefix, a.namePrefix
		file := either(a.proxy != nil, pf, af)
		for _, chk := range []check{
			{"cookie-prefix", flags.CookiePrefix, "cookie.prefix", n.CookiePrefix, flags.CookiePrefix == n.CookiePrefix},
			{"name-prefix", flags.NamePrefix.String(), "cookie.name_prefix", n.NamePrefix.String(), flags.NamePrefix == n.NamePrefix},
		} {
			if err := chk.refuse(set, a, file); err != nil {
				return err
			}
		}
		if c := a.agent; c != nil {
			n.AgentBasePath = c.BasePath
			chk := check{"agent-base-path", flags.AgentBasePath, "base_path", c.BasePath, strings.TrimSuffix(flags.AgentBasePath, "/") == c.BasePath}
			if err := chk.refuse(set, a, af); err != nil {
				return err
			}
		}
		if c := a.proxy; c != nil {
			n.AuthPath, n.KeepCookieHeaders, n.CORSDisabled = c.AuthPath, !c.RemoveCookieHeaders, !c.CORS.Enabled
			for _, chk := range []check{
				{"auth-path", flags.AuthPath, "auth_path", c.AuthPath, flags.AuthPath == c.AuthPath},
				{"keep-cookie-headers", strconv.FormatBool(flags.KeepCookieHeaders), "remove_cookie_headers", strconv.FormatBool(c.RemoveCookieHeaders), flags.KeepCookieHeaders == n.KeepCookieHeaders},
				{"cors-enabled", strconv.FormatBool(!flags.CORSDisabled), "cors.enabled", strconv.FormatBool(c.CORS.Enabled), flags.CORSDisabled == n.CORSDisabled},
			} {
				if err := chk.refuse(set, a, pf); err != nil {
					return err
				}
			}
			switch {
			case mode == nginx.ModeUpstream && len(c.Routes) == 0:
				return fmt.Errorf("%s has no routes in %s: upstream mode sends the API calls through the proxy's routes (render -mode auth_request for a proxy without routes)", a.label(), pf)
			case mode == nginx.ModeUpstream:
				n.APIPathPrefix = c.Routes[0].PathPrefix
				chk := check{"api-path-prefix", flags.APIPathPrefix, "routes[0].path_prefix", n.APIPathPrefix, flags.APIPathPrefix == n.APIPathPrefix}
				if err := chk.refuse(set, a, pf); err != nil {
					return err
				}
				if len(c.Routes) > 1 {
					var rest []string
					for _, r := range c.Routes[1:] {
						rest = append(rest, r.PathPrefix)
					}
					fmt.Fprintf(stderr, "render: warning: %s: NGINX sends only routes[0].path_prefix %s to the proxy; the other routes (%s) of %s get NGINX's 404\n",
						a.label(), n.APIPathPrefix, strings.Join(rest, " "), pf)
				}
			case !c.AuthEndpoint:
				return fmt.Errorf("%s: auth_endpoint is off in %s: -mode auth_request asks the proxy's auth endpoint (on by default for a proxy without routes)", a.label(), pf)
			}
		}
		out = append(out, n)
	}

	var one nginx.App // with apps, the fields of Params that an App has stay zero
	if multi {
		p.Apps = out
	} else {
		one = out[0]
	}
	p.CookiePrefix, p.NamePrefix, p.AgentBasePath, p.APIPathPrefix, p.AuthPath = one.CookiePrefix, one.NamePrefix, one.AgentBasePath, one.APIPathPrefix, one.AuthPath
	p.KeepCookieHeaders, p.CORSDisabled = one.KeepCookieHeaders, one.CORSDisabled

	if c := f.proxy; c != nil {
		if set["proxy-workers"] && p.ProxyWorkers != c.Workers {
			return fmt.Errorf("-proxy-workers %d contradicts workers %d in %s: leave the flag out", p.ProxyWorkers, c.Workers, pf)
		}
		p.ProxyWorkers = c.Workers
		if !set["proxy"] {
			addr, err := dialable(c.Listen)
			if err != nil {
				return fmt.Errorf("-proxy: the proxy listens on %q (%s), %v: say where NGINX reaches it with -proxy", c.Listen, pf, err)
			}
			p.Proxies = []string{addr}
		}
	}
	if c := f.agent; c != nil && !set["agent"] {
		addr, err := dialable(c.Listen)
		if err != nil {
			return fmt.Errorf("-agent: the agent listens on %q (%s), %v: say where NGINX reaches it with -agent", c.Listen, af, err)
		}
		p.Agents = []string{addr}
	}
	return nil
}

// check is a flag beside the file's setting it mirrors.
type check struct {
	flag, flagValue   string
	setting, setValue string
	agree             bool // the flag says what the setting says
}

// refuse refuses the flag when it was given (set) and disagrees with the
// setting of application a in file.
func (c check) refuse(set map[string]bool, a *fileApp, file string) error {
	if !set[c.flag] || c.agree {
		return nil
	}
	return fmt.Errorf("-%s %s contradicts %s %s of %s in %s: leave the flag out", c.flag, c.flagValue, c.setting, c.setValue, a.label(), file)
}

// either returns a when first, else b.
func either(first bool, a, b string) string {
	if first {
		return a
	}
	return b
}

// dialable returns the address NGINX dials for a daemon's listen address,
// or why there is none: a Unix socket or a host and port, but not an
// unspecified address (0.0.0.0, ::, none), which says nothing of where
// NGINX reaches the daemon, nor port 0.
func dialable(listen string) (string, error) {
	if strings.HasPrefix(listen, "unix:") {
		return listen, nil
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("not host:port")
	}
	if port == "0" {
		return "", fmt.Errorf("a port chosen at start")
	}
	if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
		return "", fmt.Errorf("every address")
	}
	return listen, nil
}

// setFlags returns the names of the flags fs was given.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}
