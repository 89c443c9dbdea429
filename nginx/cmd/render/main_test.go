package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/nginx"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"-mode", "auth_request", "-snippet", "-agent", "127.0.0.1:8080,127.0.0.1:8090", "-agent", "127.0.0.1:8091",
		"-proxy", "unix:/run/th/proxy.sock", "-api", "127.0.0.1:9000", "-cookie-prefix", "app", "-name-prefix", "host-http"}, &out)
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
	if err := run([]string{"-mode", "upstream", "-run-dir", dir, "-o", file}, &out); err != nil {
		t.Fatal(err)
	}
	if conf, err := os.ReadFile(file); err != nil || !strings.Contains(string(conf), "pid "+dir+"/nginx.pid;") {
		t.Errorf("-o wrote %q (%v)", conf, err)
	}
}

func TestRunRefuses(t *testing.T) {
	for _, args := range [][]string{
		{},                                     // no mode
		{"-mode", "upstream"},                  // no run directory
		{"-mode", "tls", "-snippet"},           // no certificate
		{"-mode", "upstream", "-snippet", "x"}, // stray argument
		{"-mode", "upstream", "-snippet", "-agent", "x;y"},
		{"-mode", "upstream", "-snippet", "-name-prefix", "__Host-"},
		{"-mode", "upstream", "-snippet", "-name-prefix", "host-http", "-host-prefix"}, // contradicting
	} {
		if err := run(args, &bytes.Buffer{}); err == nil {
			t.Errorf("render %q succeeded", args)
		}
	}
}
