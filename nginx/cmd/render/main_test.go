package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/nginx"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"-mode", "auth_request", "-snippet", "-agent", "127.0.0.1:8080,127.0.0.1:8090", "-agent", "127.0.0.1:8091",
		"-proxy", "unix:/run/th/proxy.sock", "-api", "127.0.0.1:9000", "-cookie-prefix", "app", "-name-prefix", "host-http"}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want, err := nginx.Render(nginx.ModeAuthRequest, nginx.Params{Snippet: true, Agents: []string{"127.0.0.1:8080", "127.0.0.1:8090", "127.0.0.1:8091"},
		Proxies: []string{"unix:/run/th/proxy.sock"}, APIs: []string{"127.0.0.1:9000"}, CookiePrefix: "app", NamePrefix: browser.NamePrefixHostHTTP})
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) || !strings.Contains(out.String(), "__Host-Http-app-auth") {
		t.Errorf("render wrote\n%s\nwant\n%s", out.String(), want)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "nginx.conf")
	if err := run([]string{"-mode", "upstream", "-run-dir", dir, "-o", file}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if conf, err := os.ReadFile(file); err != nil || !strings.Contains(string(conf), "pid "+dir+"/nginx.pid;") {
		t.Errorf("-o wrote %q (%v)", conf, err)
	}
}

// TestRunModes: upstream is the default mode, TLS a flag in either mode,
// and -mode tls, the third mode of before, still renders upstream over TLS
// with a warning.
func TestRunModes(t *testing.T) {
	render := func(mode string, p nginx.Params) string {
		t.Helper()
		conf, err := nginx.Render(mode, p)
		if err != nil {
			t.Fatal(err)
		}
		return string(conf)
	}
	tlsParams := nginx.Params{Snippet: true, TLSCertificate: "/etc/ssl/th.pem", TLSCertificateKey: "/etc/ssl/th.key"}
	cert := []string{"-tls-certificate", "/etc/ssl/th.pem", "-tls-certificate-key", "/etc/ssl/th.key"}
	for _, tt := range []struct {
		name        string
		args        []string
		want        string
		wantWarning string
	}{
		{"no mode is upstream", []string{"-snippet"}, render(nginx.ModeUpstream, nginx.Params{Snippet: true}), ""},
		{"auth_request", []string{"-snippet", "-mode", "auth_request"}, render(nginx.ModeAuthRequest, nginx.Params{Snippet: true}), ""},
		{"-tls", append([]string{"-snippet", "-tls"}, cert...), render(nginx.ModeUpstream, tlsParams), ""},
		{"-tls with auth_request", append([]string{"-snippet", "-tls", "-mode", "auth_request"}, cert...), render(nginx.ModeAuthRequest, tlsParams), ""},
		{"certificates alone", append([]string{"-snippet"}, cert...), render(nginx.ModeUpstream, tlsParams), ""},
		{"-cors-enabled=false", []string{"-snippet", "-mode", "auth_request", "-cors-enabled=false"}, render(nginx.ModeAuthRequest, nginx.Params{Snippet: true, CORSDisabled: true}), ""},
		{"-mode tls", append([]string{"-snippet", "-mode", "tls"}, cert...), render(nginx.ModeTLS, tlsParams),
			"render: warning: -mode tls is deprecated: write -tls (the mode is upstream by default)\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, warn bytes.Buffer
			if err := run(tt.args, &out, &warn); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("render %q wrote\n%s\nwant\n%s", tt.args, out.String(), tt.want)
			}
			if warn.String() != tt.wantWarning {
				t.Errorf("stderr %q, want %q", warn.String(), tt.wantWarning)
			}
		})
	}
	// -mode tls and -tls are the same configuration.
	if render(nginx.ModeTLS, tlsParams) != render(nginx.ModeUpstream, tlsParams) {
		t.Error("nginx.ModeTLS differs from upstream with a certificate: -mode tls is no alias")
	}
}

// TestRunRefuses: every error names the flag to change, never a Go field.
func TestRunRefuses(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string // the whole message, or how it starts when it ends in ": "
	}{
		{[]string{}, `-run-dir: "" must be an absolute path of A-Z a-z 0-9 . _ ~ / + @ = , -`},
		{[]string{"-run-dir", "relative"}, `-run-dir: "relative" must be an absolute path of A-Z a-z 0-9 . _ ~ / + @ = , -`},
		{[]string{"-mode", "tls", "-snippet"}, "-tls-certificate: is required with -tls (the PEM certificate chain of the https listener)"},
		{[]string{"-tls", "-snippet", "-tls-certificate", "/c.pem"}, "-tls-certificate-key: is required with -tls (the PEM private key of the https listener)"},
		{[]string{"-snippet", "-tls-certificate-key", "/k.pem"}, "-tls-certificate: is required with -tls (the PEM certificate chain of the https listener)"},
		{[]string{"-tls", "-snippet", "-tls-certificate", "c.pem", "-tls-certificate-key", "/k.pem"}, `-tls-certificate: "c.pem" must be an absolute path of A-Z a-z 0-9 . _ ~ / + @ = , -`},
		{[]string{"-mode", "grpc", "-snippet"}, `-mode: "grpc" is not a mode: want upstream (the default) or auth_request, and -tls for https`},
		{[]string{"-snippet", "x"}, `unexpected arguments ["x"]`},
		{[]string{"-snippet", "-agent", "127.0.0.1:8080", "-agent", "x;y"}, `-agent: "x;y" is not host:port or unix:/path`},
		{[]string{"-snippet", "-proxy", "h:0"}, `-proxy: "h:0" has an invalid port`},
		{[]string{"-snippet", "-mode", "auth_request", "-api", "bad host:1"}, `-api: "bad host:1" has an invalid host`},
		{[]string{"-snippet", "-listen", "RunDir;:80"}, `-listen: "RunDir;:80" has an invalid host`}, // a field name inside quotes stays
		{[]string{"-snippet", "-name-prefix", "__Host-"}, `-name-prefix: must be none, host or host-http, got "__Host-"`},
		{[]string{"-snippet", "-name-prefix", "host-http", "-host-prefix"}, "-host-prefix contradicts -name-prefix host-http"},
		{[]string{"-snippet", "-cookie-prefix", "a.b"}, "-cookie-prefix: "},
		{[]string{"-snippet", "-server-name", "a;b"}, `-server-name: "a;b" is not a list of host names`},
		{[]string{"-snippet", "-user", "a;b"}, `-user: "a;b" is not a user name (and optional group)`},
		{[]string{"-snippet", "-workers", "-1"}, "-workers: -1 is negative"},
		{[]string{"-snippet", "-proxy-workers", "many"}, `-proxy-workers: "many" is not a number or auto`},
		{[]string{"-snippet", "-proxy-workers", "65"}, "-proxy-workers: 65 is not between 0 and 64"},
		{[]string{"-snippet", "-agent-base-path", "/"}, `-agent-base-path: must not be "/"`},
		{[]string{"-snippet", "-api-path-prefix", "/api"}, `-api-path-prefix: "/api" must end with "/" and not be "/"`},
		{[]string{"-snippet", "-auth-path", "/api/auth"}, `-auth-path: "/api/auth" must lie outside -api-path-prefix and -agent-base-path`},
		{[]string{"-snippet", "-api-path-prefix", "/oauth-agent/api/"}, `-api-path-prefix "/oauth-agent/api/" and -agent-base-path "/oauth-agent" overlap`},
	} {
		err := run(tt.args, &bytes.Buffer{}, io.Discard)
		if err == nil {
			t.Errorf("render %q succeeded", tt.args)
			continue
		}
		// A want ending in ": " is the start of a message from elsewhere.
		if prefix := strings.HasSuffix(tt.want, ": "); prefix && !strings.HasPrefix(err.Error(), tt.want) || !prefix && err.Error() != tt.want {
			t.Errorf("render %q: %q, want %q", tt.args, err, tt.want)
		}
		// No Go field, no package prefix: what the user typed is a flag.
		if m := regexp.MustCompile(`(?:^|[^"-])\b(?:Params|nginx:|[A-Z][a-z]+[A-Z][A-Za-z]*)`).FindString(unquote(err.Error())); m != "" {
			t.Errorf("render %q: %q names %q, not a flag", tt.args, err, m)
		}
	}
}

// unquote drops the quoted values from msg: they are what the user typed.
func unquote(msg string) string {
	return regexp.MustCompile(`"(?:[^"\\]|\\.)*"`).ReplaceAllString(msg, `""`)
}

// TestFlagOf: every field of nginx.Params that Render's errors can name
// maps to a flag run defines.
func TestFlagOf(t *testing.T) {
	fs := reflect.TypeFor[nginx.Params]()
	for i := range fs.NumField() {
		name := fs.Field(i).Name
		if name == "Snippet" || name == "KeepCookieHeaders" || name == "CORSDisabled" {
			continue // booleans Render never refuses
		}
		flag, ok := flagOf[name]
		if !ok {
			t.Errorf("nginx.Params.%s has no flag in flagOf", name)
			continue
		}
		var usage bytes.Buffer
		run([]string{"-h"}, io.Discard, &usage)
		if !strings.Contains(usage.String(), "  "+flag+" ") && !strings.Contains(usage.String(), "  "+flag+"\n") {
			t.Errorf("flagOf[%s] = %s, which render does not define", name, flag)
		}
	}
}
