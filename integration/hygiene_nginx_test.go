package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/nginx"
)

// TestHygieneNGINX: issue #12's NGINX and operator-safety bullets against
// the built binaries, through NGINX in both modes.
func TestHygieneNGINX(t *testing.T) {
	fx := newFixture(t)

	// A login through upstream mode, then an API call with its cookies
	// through both modes.
	apiThroughBoth := func(t *testing.T, s *binStack, namePrefix string) {
		b := s.login(t, "alice")
		for _, c := range b.Cookies {
			if !strings.HasPrefix(c.Name, namePrefix+s.cookiePrefix+"-") || !c.HttpOnly || !c.Secure {
				t.Errorf("cookie %s (HttpOnly %v, Secure %v), want the prefix %q", c.Name, c.HttpOnly, c.Secure, namePrefix+s.cookiePrefix+"-")
			}
		}
		for _, base := range []string{s.upstream, s.authReq} {
			mark := s.api.mark()
			a := b.Call("POST", base+"/api/x", nil)
			if a.Status != 200 || len(s.api.since(mark)) != 1 || !strings.HasPrefix(s.api.since(mark)[0], "Bearer ") {
				t.Errorf("POST %s/api/x: %d %s; the API got %q", base, a.Status, a.Body, s.api.since(mark))
			}
		}
	}

	t.Run("longest prefix", func(t *testing.T) {
		s := fx.stack(t, stackOptions{cookiePrefix: strings.Repeat("p", browser.MaxPrefix)})
		apiThroughBoth(t, s, "")
	})
	t.Run("host-http prefix", func(t *testing.T) {
		s := fx.stack(t, stackOptions{namePrefix: browser.NamePrefixHostHTTP})
		apiThroughBoth(t, s, "__Host-Http-")
	})

	t.Run("header names", func(t *testing.T) {
		s := fx.stack(t, stackOptions{})
		b := s.login(t, "bob")
		var cookies []string
		for _, c := range b.Cookies {
			cookies = append(cookies, c.Name+"="+c.Value)
		}
		for _, name := range []string{"Bad Name", `Bad"Name`, "Bad(Name", "Bad/Name", "Bad@Name", "Bad{Name", "Bad\\Name", "Bad=Name"} {
			for mode, base := range map[string]string{nginx.ModeUpstream: s.upstream, nginx.ModeAuthRequest: s.authReq} {
				t.Run(mode+"/"+name, func(t *testing.T) {
					mark := s.api.mark()
					status := rawGET(t, strings.TrimPrefix(base, "http://"), "/api/x",
						"Origin: "+spaOrigin, "Cookie: "+strings.Join(cookies, "; "), name+": x")
					if status != 400 {
						t.Errorf("%q: status %d, want 400", name, status)
					}
					if got := s.api.requests(mark); len(got) != 0 {
						t.Errorf("%q reached the API", name)
					}
				})
			}
			// The same request without the bad header passes: the 400 is the name's.
		}
		for mode, base := range map[string]string{nginx.ModeUpstream: s.upstream, nginx.ModeAuthRequest: s.authReq} {
			if status := rawGET(t, strings.TrimPrefix(base, "http://"), "/api/x", "Origin: "+spaOrigin, "Cookie: "+strings.Join(cookies, "; "), "Good-Name: x"); status != 200 {
				t.Errorf("%s: a token header name: status %d, want 200", mode, status)
			}
		}
	})

	t.Run("operator safety", func(t *testing.T) {
		dir := t.TempDir()
		fresh := "1111111111111111111111111111111111111111111111111111111111111111"
		write := func(name, content string, mode os.FileMode) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
			return p
		}
		base := fmt.Sprintf("trusted_web_origins: [%q]\nlog: {level: warn}\n", spaOrigin)
		for _, tc := range []struct {
			name, yaml, want string
		}{
			{"key file 0640", base + "listen: 127.0.0.1:0\nencryption_keys_file: " + write("keys640", fresh+"\n", 0o640) + "\n", "is accessible by group or others (mode 0640): run chmod 600 " + filepath.Join(dir, "keys640")},
			{"key file 0604", base + "listen: 127.0.0.1:0\nencryption_keys_file: " + write("keys604", fresh+"\n", 0o604) + "\n", "run chmod 600 " + filepath.Join(dir, "keys604")},
			{"published key on all interfaces", base + fmt.Sprintf("listen: 0.0.0.0:0\nencryption_keys: [%q]\n", settings.PublishedTestKeys[0]), "encryption_keys: key 1 is a published test key"},
			{"published key in a file, public metrics", base + "listen: 127.0.0.1:0\nmetrics_listen: \":0\"\nencryption_keys_file: " + write("pub", settings.PublishedTestKeys[1]+"\n", 0o600) + "\n", "encryption_keys_file: key 1 is a published test key"},
			{"published key on loopback", base + fmt.Sprintf("listen: 127.0.0.1:0\nmetrics_listen: \"[::1]:0\"\nencryption_keys: [%q]\n", settings.PublishedTestKeys[0]), ""},
			{"key file 0600", base + "listen: 127.0.0.1:0\nencryption_keys_file: " + write("keys600", fresh+"\n", 0o600) + "\n", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
				if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
				for _, args := range [][]string{{"-config", file, "-check-config"}} {
					r := fx.bins.proxy.Run(t, args...)
					if tc.want == "" {
						if r.Code != 0 {
							t.Errorf("oauth-proxy %v: exit %d, %s", args, r.Code, r.Stderr)
						}
						continue
					}
					if r.Code == 0 || !strings.Contains(r.Stderr, tc.want) {
						t.Errorf("oauth-proxy %v: exit %d, stderr %q; want %q", args, r.Code, r.Stderr, tc.want)
					}
				}
				if tc.want != "" { // and at start
					p := fx.bins.proxy.Start(t, "-config", file)
					if code := p.WaitExit(t, 10*time.Second); code == 0 || !strings.Contains(p.Stderr(), tc.want) {
						t.Errorf("oauth-proxy at start: exit %d, stderr %q", code, p.Stderr())
					}
				}
			})
		}
	})
}

// rawGET writes a GET with the given header lines byte for byte (no client
// library would send a header name that is not a token) and returns the
// status of the answer.
func rawGET(t *testing.T, addr, path string, headers ...string) int {
	t.Helper()
	a := bintest.Raw(t, addr, "GET "+path+" HTTP/1.1\r\nHost: api.example.localhost\r\nConnection: close\r\n"+strings.Join(headers, "\r\n")+"\r\n\r\n")
	if a.Err != nil {
		t.Fatalf("reading the answer: %v", a.Err)
	}
	return a.Status
}
