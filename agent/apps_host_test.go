package agent

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/agent/astest"
)

// TestAppsHostHeader: the application is the Host header's, as NGINX and
// the proxy read it, never a host in an absolute-form request target: a
// front end that lets requests through by their Host header must not see
// them answered by another application.
func TestAppsHostHeader(t *testing.T) {
	asShop := astest.New(t, astest.Options{RedirectURI: appOrigin("shop") + "/"})
	asAdmin := astest.New(t, astest.Options{RedirectURI: appOrigin("admin") + "/"})
	x := startApps(t, nil, func(top *Config) {
		top.Apps = []*Config{appConfig(asShop, "shop"), appConfig(asAdmin, "admin")}
	})
	x.app("shop", asShop)
	x.app("admin", asAdmin)
	start := func(target, host, origin string) (int, string) {
		c, err := net.Dial("tcp", strings.TrimPrefix(x.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "POST "+target+" HTTP/1.1\r\nHost: "+host+"\r\nOrigin: "+origin+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, body := start("http://admin.example.localhost/oauth-agent/login/start", "shop.example.localhost", appOrigin("shop"))
	if code != 200 || !strings.Contains(body, asShop.URL) || strings.Contains(body, asAdmin.URL) {
		t.Errorf("absolute-form target of admin, Host of shop: %d %.120s; want shop's provider (%s)", code, body, asShop.URL)
	}
	code, body = start("http://shop.example.localhost/oauth-agent/login/start", "other.example.localhost", appOrigin("shop"))
	if code != 404 || !strings.Contains(body, `"not_found"`) {
		t.Errorf("absolute-form target of shop, Host unknown: %d %.120s; want 404 not_found", code, body)
	}
}
