// Command render writes an NGINX configuration for the token handler
// (nginx/README.md):
//
//	go run ./nginx/cmd/render [-mode upstream|auth_request] [-tls -tls-certificate F -tls-certificate-key F] [flags] [-o FILE]
//	go run ./nginx/cmd/render -proxy-config proxy.yaml -agent-config agent.yaml [-mode auth_request] [flags] [-o FILE]
//
// The mode is upstream unless -mode says auth_request; -tls serves https in
// either mode (-mode tls, upstream over TLS, is still read, with a warning).
// Without -snippet it writes a whole nginx.conf that keeps its pid file, logs
// and temporary files in -run-dir; with -snippet only the part for
// /etc/nginx/conf.d/. Repeat -agent, -proxy and -api for several instances.
// Errors name the flag to change.
//
// -proxy-config and -agent-config read the daemons' own files as they do
// (their LoadConfig, the real environment): the applications of a file with
// apps, one server block each (issue #15), or the one application's cookie
// names and paths, and the daemons' addresses. Files that disagree, and
// flags that contradict a file, are refused.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/nginx"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(2)
	}
}

// flagOf maps the nginx.Params fields that Render's errors name to the
// flags that set them, so that an error says what to change on the command
// line. TestFlagOf keeps it complete.
var flagOf = map[string]string{
	"RunDir":            "-run-dir",
	"User":              "-user",
	"WorkerProcesses":   "-workers",
	"Listen":            "-listen",
	"ServerName":        "-server-name",
	"CookiePrefix":      "-cookie-prefix",
	"NamePrefix":        "-name-prefix",
	"AgentBasePath":     "-agent-base-path",
	"APIPathPrefix":     "-api-path-prefix",
	"AuthPath":          "-auth-path",
	"Agents":            "-agent",
	"Proxies":           "-proxy",
	"ProxyWorkers":      "-proxy-workers",
	"APIs":              "-api",
	"TLSCertificate":    "-tls-certificate",
	"TLSCertificateKey": "-tls-certificate-key",
	"Apps":              "-proxy-config",
}

// usage is the synopsis -h prints before the flags.
const usage = `Usage of render: an NGINX configuration for the token handler (nginx/README.md).

  render [-mode upstream|auth_request] [-tls -tls-certificate FILE -tls-certificate-key FILE]
         [-snippet | -run-dir DIR] [-agent ADDR]... [-proxy ADDR]... [-api ADDR]... [flags] [-o FILE]

From the daemons' configuration files, read as they read them (the same environment: run it
where they run, as their user); with apps: in them, one server block per application:

  render -proxy-config /etc/tokenhandler/proxy.yaml -agent-config /etc/tokenhandler/agent.yaml
         [-mode auth_request] [-snippet | -run-dir DIR] [-o FILE]

The files give the applications (names, hosts), their cookie.prefix and cookie.name_prefix,
the agent's base_path and listen address, the proxy's auth_path, remove_cookie_headers,
cors.enabled, workers, listen address and, in upstream mode, routes[0].path_prefix. A flag
that contradicts them is refused; so are files whose applications, hosts or cookie names differ.

Flags:
`

// fieldOrQuote matches a quoted value (to its closing quote, if any) or a
// Params field in a message, with the index Render adds to a list
// ("Agents[1]"), which the flag, repeated or comma-separated, has no use
// for.
var fieldOrQuote = regexp.MustCompile(`(?s)"(?:[^"\\]|\\.)*"?|\b[A-Z][A-Za-z]+\b(?:\[\d+\])?`)

// flagError rewrites an error of nginx.Render for the command line: its
// "nginx: " goes, and every Params field it names outside quotes becomes
// the flag that sets it. Quoted values are left as they are.
func flagError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "nginx: ")
	return errors.New(replaceFields(msg))
}

// replaceFields replaces the Params fields msg names outside quotes by
// their flags.
func replaceFields(msg string) string {
	return fieldOrQuote.ReplaceAllStringFunc(msg, func(m string) string {
		name, _, _ := strings.Cut(m, "[")
		if flag, ok := flagOf[name]; ok { // never a quoted value: its name keeps the quote
			return flag
		}
		return m
	})
}

// appField matches an application's field in Render's errors:
// "Apps[1].AgentBasePath".
var appField = regexp.MustCompile(`\bApps\[(\d+)\]\.([A-Za-z]+)`)

// appSettingOf names, for a field of nginx.App, the setting of the
// daemons' files it comes from.
var appSettingOf = map[string]string{
	"Name":          "name",
	"ServerNames":   "hosts",
	"CookiePrefix":  "cookie.prefix",
	"NamePrefix":    "cookie.name_prefix",
	"AgentBasePath": "base_path",
	"APIPathPrefix": "routes[0].path_prefix",
	"AuthPath":      "auth_path",
}

// appError rewrites an error of nginx.Render about the applications read
// from the files: "Apps[1].AgentBasePath" becomes "base_path of
// application admin", or the flag that set it when no file did (fromFlag).
func appError(err error, apps []nginx.App, fromFlag map[string]bool) error {
	msg := strings.TrimPrefix(err.Error(), "nginx: ")
	if !appField.MatchString(msg) {
		return flagError(err)
	}
	return errors.New(appField.ReplaceAllStringFunc(msg, func(m string) string {
		sub := appField.FindStringSubmatch(m)
		i, _ := strconv.Atoi(sub[1])
		if fromFlag[sub[2]] || appSettingOf[sub[2]] == "" || i >= len(apps) {
			return replaceFields(sub[2])
		}
		return appSettingOf[sub[2]] + " of application " + apps[i].Name
	}))
}

// list is a repeatable flag; each value may also hold comma-separated items.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }

func (l *list) Set(v string) error {
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var p nginx.Params
	mode := fs.String("mode", nginx.ModeUpstream, "upstream (NGINX → oauth-proxy → API) or auth_request (NGINX asks oauth-proxy, then calls the API)")
	tls := fs.Bool("tls", false, "serve https, with -tls-certificate and -tls-certificate-key")
	out := fs.String("o", "", "write the configuration to this file instead of standard output")
	fs.BoolVar(&p.Snippet, "snippet", false, "only the http{} part, for /etc/nginx/conf.d/")
	fs.StringVar(&p.RunDir, "run-dir", "", "absolute directory for the pid file, logs and temporary files (required without -snippet)")
	fs.StringVar(&p.User, "user", "", `worker user ("www-data" or "user group"); empty leaves the directive out`)
	fs.IntVar(&p.WorkerProcesses, "workers", 0, "worker processes; 0 means auto")
	fs.StringVar(&p.Listen, "listen", "", `listen address: port, host:port or unix:/path (default "80", or "443" with TLS)`)
	fs.StringVar(&p.ServerName, "server-name", "", `server_name (default "api.example.localhost")`)
	fs.StringVar(&p.CookiePrefix, "cookie-prefix", "", `cookie.prefix of the agent and proxy (default "example")`)
	namePrefix := fs.String("name-prefix", "none", "cookie.name_prefix of the agent and proxy: none, host or host-http")
	hostPrefix := fs.Bool("host-prefix", false, "the same as -name-prefix host (kept from before -name-prefix)")
	fs.StringVar(&p.AgentBasePath, "agent-base-path", "", `base_path of the agent (default "/oauth-agent")`)
	fs.StringVar(&p.APIPathPrefix, "api-path-prefix", "", `location of the API (default "/api/")`)
	fs.StringVar(&p.AuthPath, "auth-path", "", `auth_path of the proxy (default "/_oauth-proxy/auth")`)
	fs.Var((*list)(&p.Agents), "agent", `an oauth-agent instance, host:port or unix:/path (default "127.0.0.1:8080", or the listen of -agent-config); repeatable`)
	fs.Var((*list)(&p.Proxies), "proxy", `an oauth-proxy instance (default "127.0.0.1:8081", or the listen of -proxy-config); repeatable`)
	proxyWorkers := fs.String("proxy-workers", "1", "the proxy's workers setting (read from -proxy-config when given), a number or auto (the CPUs this process may use, runtime.GOMAXPROCS: within a cgroup CPU quota): each -proxy unix:/path then stands for /path.0 to /path.<N-1>")
	fs.Var((*list)(&p.APIs), "api", `an API server NGINX calls in auth_request mode (default "127.0.0.1:9000"); repeatable`)
	fs.BoolVar(&p.KeepCookieHeaders, "keep-cookie-headers", false, "auth_request mode: forward the token-handler cookies and CSRF header to the API (remove_cookie_headers: false)")
	corsEnabled := fs.Bool("cors-enabled", true, "auth_request mode: the proxy's cors.enabled; with -cors-enabled=false NGINX sends OPTIONS through auth_request to the API")
	fs.StringVar(&p.TLSCertificate, "tls-certificate", "", "with -tls: PEM certificate (chain) of the https listener")
	fs.StringVar(&p.TLSCertificateKey, "tls-certificate-key", "", "with -tls: PEM private key of the https listener")
	proxyConfig := fs.String("proxy-config", "", "the oauth-proxy's configuration file: its applications, cookie names, auth_path, remove_cookie_headers, cors.enabled, workers, listen and (upstream mode) routes[0].path_prefix")
	agentConfig := fs.String("agent-config", "", "the oauth-agent's configuration file: its applications, cookie names, base_path and listen")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch *mode {
	case nginx.ModeUpstream, nginx.ModeAuthRequest:
	case nginx.ModeTLS:
		// The third mode of before: upstream mode over TLS.
		fmt.Fprintln(stderr, "render: warning: -mode tls is deprecated: write -tls (the mode is upstream by default)")
		*mode, *tls = nginx.ModeUpstream, true
	default:
		return fmt.Errorf("-mode: %q is not a mode: want upstream (the default) or auth_request, and -tls for https", *mode)
	}
	// A certificate alone still turns TLS on, as it did before -tls.
	if *tls || p.TLSCertificate != "" || p.TLSCertificateKey != "" {
		switch {
		case p.TLSCertificate == "":
			return errors.New("-tls-certificate: is required with -tls (the PEM certificate chain of the https listener)")
		case p.TLSCertificateKey == "":
			return errors.New("-tls-certificate-key: is required with -tls (the PEM private key of the https listener)")
		}
	}
	p.CORSDisabled = !*corsEnabled
	var err error
	if p.ProxyWorkers, err = strconv.Atoi(*proxyWorkers); *proxyWorkers == "auto" {
		p.ProxyWorkers = min(runtime.GOMAXPROCS(0), 64)
	} else if err != nil {
		return fmt.Errorf("-proxy-workers: %q is not a number or auto", *proxyWorkers)
	}
	if p.NamePrefix, err = browser.ParseNamePrefix(*namePrefix); err != nil {
		return fmt.Errorf("-name-prefix: %w", err)
	}
	if *hostPrefix {
		if p.NamePrefix != browser.NamePrefixNone && p.NamePrefix != browser.NamePrefixHost {
			return fmt.Errorf("-host-prefix contradicts -name-prefix %s", p.NamePrefix)
		}
		p.NamePrefix = browser.NamePrefixHost
		fs.Set("name-prefix", "host") // given: a file's cookie.name_prefix must agree
	}
	// The App fields no file gave, which Render's errors name by flag.
	fromFlag := map[string]bool{"AgentBasePath": *agentConfig == "", "AuthPath": *proxyConfig == "",
		"APIPathPrefix": *proxyConfig == "" || *mode == nginx.ModeAuthRequest}
	if *proxyConfig != "" || *agentConfig != "" {
		files, err := loadFiles(*proxyConfig, *agentConfig, os.Getenv)
		if err != nil {
			return err
		}
		if err := files.fill(&p, *mode, setFlags(fs), stderr); err != nil {
			return err
		}
	}
	conf, err := nginx.Render(*mode, p)
	if err != nil {
		return appError(err, p.Apps, fromFlag)
	}
	if *out == "" {
		_, err = stdout.Write(conf)
		return err
	}
	return os.WriteFile(*out, conf, 0o644)
}
