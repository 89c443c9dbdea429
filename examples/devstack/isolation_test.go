package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/spatest"
)

// TestApplicationsIsolated logs alice in to both applications of the
// running stack, through the one agent and the one proxy (behind NGINX
// too, as make run-nginx runs them), and shows each application's cookies
// refused by the other, both ways: as a browser holds them, and renamed to
// the other application's cookie names (sealed with another key and bound
// to another application, they open nowhere but at home). The same calls
// with the other application's own cookies succeed, so the refusals are
// the cookies'.
func TestApplicationsIsolated(t *testing.T) {
	for _, withNGINX := range []bool{false, true} {
		t.Run(fmt.Sprintf("nginx=%v", withNGINX), func(t *testing.T) { testApplicationsIsolated(t, withNGINX) })
	}
}

func testApplicationsIsolated(t *testing.T, withNGINX bool) {
	d := startStack(t, withNGINX)
	browsers := []*spatest.Browser{d.login(t, 0, "alice"), d.login(t, 1, "alice")}
	for from := range browsers {
		to := 1 - from
		t.Run(fmt.Sprintf("%s cookies at %s", d.apps[from].name, d.apps[to].name), func(t *testing.T) {
			for _, tc := range []struct {
				name    string
				browser *spatest.Browser
				status  int
			}{
				{"its own", at(d, browsers[to], to, "", ""), 200},
				{"as held", at(d, browsers[from], to, "", ""), 401},
				{"renamed", at(d, browsers[from], to, d.apps[from].prefix+"-", d.apps[to].prefix+"-"), 401},
			} {
				api := tc.browser.Call("GET", d.apiURL(to), nil)
				userInfo := tc.browser.Call("GET", d.agentURL(to)+"/userInfo", nil)
				refresh := tc.browser.Call("POST", d.agentURL(to)+"/refresh", nil)
				status := map[string]int{"API": api.Status, "userInfo": userInfo.Status, "refresh": refresh.Status}
				if tc.status == 200 && refresh.Status == 204 {
					status["refresh"] = 200 // no content: refreshed
				}
				for call, got := range status {
					if got != tc.status {
						t.Errorf("%s: %s at %s: %d, want %d", tc.name, call, d.apps[to].name, got, tc.status)
					}
				}
			}
		})
	}
	// Neither application's session suffered from the other's attempts.
	for i, b := range browsers {
		if r := b.Call("GET", d.apiURL(i), nil); r.Status != 200 {
			t.Errorf("alice at %s after the crossed calls: %d %s", d.apps[i].name, r.Status, r.Body)
		}
	}
}

// at returns a copy of b sending application i's origin and CSRF header,
// with its cookies renamed from the prefix from to the prefix to ("" keeps
// their names), as another page than the application's own SPA could
// send them.
func at(d *devStack, b *spatest.Browser, i int, from, to string) *spatest.Browser {
	c := b.Clone()
	c.Origin = strings.TrimSuffix(d.apps[i].spaURL, "/")
	c.CSRFHeader = "x-" + d.apps[i].prefix + "-csrf"
	if from != "" {
		c.Cookies = map[string]*http.Cookie{}
		for _, k := range b.Cookies {
			k := *k
			if rest, ok := strings.CutPrefix(k.Name, from); ok {
				k.Name = to + rest
			}
			c.Cookies[k.Name+"|"+k.Path] = &k
		}
	}
	return c
}
