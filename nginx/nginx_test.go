package nginx_test

// Black-box tests of the rendered configurations with real NGINX: the
// proxy's pipeline cases through NGINX in both modes answer as the proxy
// alone does; large cookies fit; /refresh sticks to one agent per refresh
// cookie; TLS serves; nginx -t accepts every configuration.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/nginx"
	"github.com/tokenhandler/tokenhandler/nginx/nginxtest"
	"github.com/tokenhandler/tokenhandler/proxy/proxytest"
	"github.com/tokenhandler/tokenhandler/session"
)

const unauthorizedJSON = `{"code":"unauthorized","message":"Access denied due to missing or invalid credentials"}`

// The token every valid cookie here holds: a JWT-shaped token68.
const token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJkZW1vIn0.c2ln-_~+/="

// stack is one API behind two proxies that share their keys, reachable
// three ways: directly through the proxy with routes, through NGINX in
// upstream mode (that proxy), and through NGINX in auth_request mode (the
// other one, without routes: the one whose auth endpoint is on).
type stack struct {
	*proxytest.Keys
	api     *api
	targets []target // the proxy alone first
}

type target struct {
	name string
	url  string
}

// newStack starts a proxy with the configuration extra and both NGINX
// modes in front of it. remove_cookie_headers: false in extra turns on
// KeepCookieHeaders, as an operator would.
func newStack(t *testing.T, extra string) *stack {
	t.Helper()
	a := newAPI(t)
	k := proxytest.NewKeys(t)
	proxyAddr := startProxy(t, k, a.addr(), extra)
	authAddr := startProxy(t, k, "", extra)
	p := nginx.Params{Proxies: []string{proxyAddr}, APIs: []string{a.addr()}, Agents: []string{"127.0.0.1:1"},
		KeepCookieHeaders: strings.Contains(extra, "remove_cookie_headers: false")}
	up := startNGINX(t, nginx.ModeUpstream, p)
	p.Proxies = []string{authAddr}
	auth := startNGINX(t, nginx.ModeAuthRequest, p)
	return &stack{Keys: k, api: a, targets: []target{
		{"proxy alone", "http://" + proxyAddr}, {"NGINX upstream mode", up.url}, {"NGINX auth_request mode", auth.url},
	}}
}

// pipelineCase is one request through contract §6, modelled on
// proxy/pipeline_test.go.
type pipelineCase struct {
	name    string
	extra   string // proxy configuration
	method  string
	headers func(t *testing.T, s *stack) [][2]string
	body    string
	status  int
	cors    bool   // Access-Control-Allow-Origin must be the trusted origin (otherwise absent)
	bearer  string // the Authorization the API must receive; "" = the API must not be reached
	check   func(t *testing.T, r *http.Request, body []byte)
}

func hdr(k, v string) [2]string { return [2]string{k, v} }
func cookie(c string) [2]string { return hdr("Cookie", c) }
func trusted() [2]string        { return hdr("Origin", trustedOrigin) }
func at(t *testing.T, s *stack) string {
	return "example-at=" + s.Seal(t, session.AccessToken, token)
}
func csrfPair(t *testing.T, s *stack) [][2]string {
	return [][2]string{cookie("example-csrf=" + s.Seal(t, session.CSRF, "csrf-token-value")), hdr("x-example-csrf", "csrf-token-value")}
}

// cookieIs checks the Cookie header(s) the API received.
func cookieIs(want string) func(t *testing.T, r *http.Request, _ []byte) {
	return func(t *testing.T, r *http.Request, _ []byte) {
		t.Helper()
		if got := strings.Join(r.Header.Values("Cookie"), "; "); got != want {
			t.Errorf("the API received Cookie %q, want %q", got, want)
		}
	}
}

func pipelineCases() []pipelineCase {
	cases := []pipelineCase{
		{name: "valid cookie", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{trusted(), cookie("theme=dark; " + at(t, s) + "; example-csrf=x; example-id=y; example-auth=z; example-login=w; lang=fr")}
			},
			check: cookieIs("theme=dark; lang=fr")},
		{name: "token-handler cookies first and last", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{trusted(), cookie(at(t, s) + "; theme=dark; example-login=w; lang=fr; example-id=y")}
			},
			check: cookieIs("theme=dark; lang=fr")},
		{name: "old key still in the ring", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(t *testing.T, s *stack) [][2]string {
				old, _ := session.NewCodec(s.Old, crypto.FormatV2)
				c, _ := old.Seal(nil, session.AccessToken, 0, &s.Env, []byte(token))
				return [][2]string{trusted(), cookie("example-at=" + string(c))}
			},
			check: cookieIs("")},
		{name: "v1 cookie, default format", method: "GET", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{trusted(), cookie("example-at=" + s.SealLegacy(t, crypto.FormatV1, token))}
			}},
		{name: "v1 cookie, cookie.format v1", extra: "cookie: {format: v1}", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{trusted(), cookie("example-at=" + s.SealLegacy(t, crypto.FormatV1, token))}
			}},
		{name: "DARE cookie, cookie.format v1", extra: "cookie: {format: v1}", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{trusted(), cookie("example-at=" + s.SealLegacy(t, crypto.FormatDARE, token))}
			}},
		{name: "browser Authorization replaced", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{trusted(), cookie(at(t, s)), hdr("Authorization", "Bearer forged")}
			}},
		{name: "HEAD with a valid cookie", method: "HEAD", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(t *testing.T, s *stack) [][2]string { return [][2]string{trusted(), cookie(at(t, s))} }},
		{name: "no cookie", method: "GET", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string { return [][2]string{trusted()} }},
		{name: "other cookies only", method: "GET", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string { return [][2]string{trusted(), cookie("theme=dark")} }},
		{name: "empty cookie", method: "GET", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string { return [][2]string{trusted(), cookie("example-at=")} }},
		{name: "tampered cookie", method: "GET", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string {
				c := []byte(s.Seal(t, session.AccessToken, token))
				c[20] ^= 1
				return [][2]string{trusted(), cookie("example-at=" + string(c))}
			}},
		{name: "wrong key", method: "GET", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string {
				other := proxytest.NewKeys(t)
				return [][2]string{trusted(), cookie("example-at=" + other.SealIn(t, &s.Env, session.AccessToken, 0, token))}
			}},
		{name: "token outside token68", method: "GET", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{trusted(), cookie("example-at=" + s.Seal(t, session.AccessToken, "abc def\r\nX-Injected: 1"))}
			}},
		{name: "missing Origin", method: "GET", status: 401,
			headers: func(t *testing.T, s *stack) [][2]string { return [][2]string{cookie(at(t, s))} }},
		{name: "untrusted Origin", method: "GET", status: 401,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{hdr("Origin", "https://evil.example"), cookie(at(t, s))}
			}},
		{name: "Origin with a trailing slash", method: "GET", status: 401,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{hdr("Origin", trustedOrigin+"/"), cookie(at(t, s))}
			}},
		{name: "several Cookie headers", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{trusted(), cookie("a=1"), cookie(at(t, s)), cookie("b=2")}
			},
			check: cookieIs("a=1; b=2")},
		{name: "chunked cookie", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(t *testing.T, s *stack) [][2]string {
				c := strings.Split(chunked(t, s.Keys, "example-at", session.AccessToken, 200, token), "; ")
				return [][2]string{trusted(), cookie(c[1] + "; keep=1; " + c[0])}
			},
			check: cookieIs("keep=1")},
		{name: "chunks in the wrong order", method: "GET", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string {
				c := strings.Split(chunked(t, s.Keys, "example-at", session.AccessToken, 200, token), "; ")
				v0, v1 := strings.SplitN(c[0], "=", 2)[1], strings.SplitN(c[1], "=", 2)[1]
				return [][2]string{trusted(), cookie("example-at.0=" + v1 + "; example-at.1=" + v0)}
			}},
		{name: "allow_tokens off: a bearer token without cookie", method: "GET", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{trusted(), hdr("Authorization", "Bearer mobile-token")}
			}},
		{name: "HEAD error without a body", method: "HEAD", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string { return [][2]string{trusted()} }},
		{name: "POST body reaches the API", method: "POST", status: 200, cors: true, bearer: "Bearer " + token,
			body: `{"item":"café"}`,
			headers: func(t *testing.T, s *stack) [][2]string {
				return append(csrfPair(t, s), trusted(), cookie(at(t, s)), hdr("Content-Type", "application/json"))
			},
			check: func(t *testing.T, r *http.Request, body []byte) {
				if string(body) != `{"item":"café"}` || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("the API received %q (%s)", body, r.Header.Get("Content-Type"))
				}
			}},

		// Preflights: the proxy answers them in both modes.
		{name: "preflight from the trusted origin", method: "OPTIONS", status: 204, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{trusted(), hdr("Access-Control-Request-Method", "POST"), hdr("Access-Control-Request-Headers", "x-example-csrf, content-type")}
			}},
		{name: "preflight from an untrusted origin", method: "OPTIONS", status: 204,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{hdr("Origin", "https://evil.example"), hdr("Access-Control-Request-Method", "POST")}
			}},

		// Other proxy configurations.
		{name: "CORS off, GET without Origin", extra: "cors: {enabled: false}", method: "GET", status: 200, bearer: "Bearer " + token,
			headers: func(t *testing.T, s *stack) [][2]string { return [][2]string{cookie(at(t, s))} }},
		{name: "CORS off, POST without Origin", extra: "cors: {enabled: false}", method: "POST", status: 401,
			headers: func(t *testing.T, s *stack) [][2]string { return append(csrfPair(t, s), cookie(at(t, s))) }},
		{name: "CORS off, no CORS headers even for a trusted origin", extra: "cors: {enabled: false}", method: "GET", status: 200, bearer: "Bearer " + token,
			headers: func(t *testing.T, s *stack) [][2]string { return [][2]string{trusted(), cookie(at(t, s))} }},
		{name: "allow_tokens on: a bearer token passes unchanged", extra: "allow_tokens: true", method: "POST", status: 200, bearer: "Bearer mobile-token",
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{hdr("Authorization", "Bearer mobile-token")}
			}},
		{name: "allow_tokens on: Basic is not a bearer token", extra: "allow_tokens: true", method: "GET", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{trusted(), hdr("Authorization", "Basic dTpw")}
			}},
		{name: "remove_cookie_headers off keeps the cookies", extra: "remove_cookie_headers: false", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{trusted(), cookie("theme=dark; " + at(t, s))}
			},
			check: func(t *testing.T, r *http.Request, _ []byte) {
				if !strings.Contains(r.Header.Get("Cookie"), "example-at=") {
					t.Error("the token cookie was removed although remove_cookie_headers is off")
				}
			}},
	}
	cases = append(cases, bindingCases()...)
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		cases = append(cases,
			pipelineCase{name: m + " with CSRF", method: m, status: 200, cors: true, bearer: "Bearer " + token,
				headers: func(t *testing.T, s *stack) [][2]string {
					return append(csrfPair(t, s), trusted(), cookie(at(t, s)))
				},
				check: func(t *testing.T, r *http.Request, _ []byte) {
					if r.Header.Get("X-Example-Csrf") != "" || strings.Contains(r.Header.Get("Cookie"), "csrf") {
						t.Error("the CSRF header or cookie reached the API")
					}
				}},
			pipelineCase{name: m + " without CSRF cookie", method: m, status: 401, cors: true,
				headers: func(t *testing.T, s *stack) [][2]string {
					return [][2]string{trusted(), cookie(at(t, s)), hdr("x-example-csrf", "csrf-token-value")}
				}},
			pipelineCase{name: m + " without CSRF header", method: m, status: 401, cors: true,
				headers: func(t *testing.T, s *stack) [][2]string {
					return [][2]string{trusted(), cookie(at(t, s)), cookie("example-csrf=" + s.Seal(t, session.CSRF, "csrf-token-value"))}
				}},
			pipelineCase{name: m + " with a CSRF mismatch", method: m, status: 401, cors: true,
				headers: func(t *testing.T, s *stack) [][2]string {
					return [][2]string{trusted(), cookie(at(t, s)), cookie("example-csrf=" + s.Seal(t, session.CSRF, "csrf-token-value")), hdr("x-example-csrf", "csrf-token-valuf")}
				}},
			pipelineCase{name: m + " from an untrusted origin", method: m, status: 401,
				headers: func(t *testing.T, s *stack) [][2]string {
					return append(csrfPair(t, s), hdr("Origin", "https://evil.example"), cookie(at(t, s)))
				}},
		)
	}
	return cases
}

// bindingCases are the attacks of issue #11 on the proxy (cookie confusion
// and session binding), each refused alike by the proxy alone and through
// NGINX in both modes, without anything of the misplaced value in the
// answer (checkAnswer wants the exact 401 body and no Authorization).
func bindingCases() []pipelineCase {
	var cases []pipelineCase
	for _, p := range []session.Purpose{session.Login, session.RefreshToken, session.IDToken, session.CSRF} {
		cases = append(cases, pipelineCase{name: "a " + p.String() + " cookie in the P-at slot", method: "GET", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{trusted(), cookie("example-at=" + s.Seal(t, p, "victim."+p.String()+".secret"))}
			}})
	}
	attacker := func(t *testing.T, s *stack) string {
		env := proxytest.NewSession(time.Now())
		return "example-at=" + s.SealIn(t, &env, session.AccessToken, 0, "attacker.token")
	}
	return append(cases,
		pipelineCase{name: "P-at twice, the attacker's first", method: "GET", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{trusted(), cookie(attacker(t, s) + "; " + at(t, s))}
			}},
		pipelineCase{name: "P-at in two Cookie headers", method: "GET", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{trusted(), cookie(at(t, s)), cookie(attacker(t, s))}
			}},
		pipelineCase{name: "P-at whole and chunked", method: "GET", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{trusted(), cookie(at(t, s) + "; " + chunked(t, s.Keys, "example-at", session.AccessToken, 200, token))}
			}},
		pipelineCase{name: "the victim's P-at with the attacker's CSRF pair", method: "POST", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string {
				victim := proxytest.NewSession(time.Now())
				return append(csrfPair(t, s), trusted(), cookie("example-at="+s.SealIn(t, &victim, session.AccessToken, 0, token)))
			}},
		pipelineCase{name: "P-at in the P-csrf slot", method: "POST", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string {
				return [][2]string{trusted(), cookie(at(t, s) + "; example-csrf=" + s.Seal(t, session.AccessToken, token)), hdr("x-example-csrf", token)}
			}},
		pipelineCase{name: "a session older than session.max_lifetime", method: "GET", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string {
				old := proxytest.NewSession(time.Now().Add(-13 * time.Hour))
				old.Expires = time.Now().Add(time.Hour).Unix()
				return [][2]string{trusted(), cookie("example-at=" + s.SealIn(t, &old, session.AccessToken, 0, token))}
			}},
		pipelineCase{name: "an expired cookie", method: "GET", status: 401, cors: true,
			headers: func(t *testing.T, s *stack) [][2]string {
				env := s.Env
				env.Expires = time.Now().Add(-time.Second).Unix()
				return [][2]string{trusted(), cookie("example-at=" + s.SealIn(t, &env, session.AccessToken, 0, token))}
			}},
	)
}

// TestPipeline sends every case to the proxy alone and through NGINX in
// both modes: the browser must see the same status, body and CORS headers,
// and the API the same request.
func TestPipeline(t *testing.T) {
	nginxtest.Binary(t)
	t.Parallel()
	stacks := map[string]*stack{}
	for _, tc := range pipelineCases() {
		s := stacks[tc.extra]
		if s == nil {
			s = newStack(t, tc.extra)
			stacks[tc.extra] = s
		}
		t.Run(tc.name, func(t *testing.T) {
			hdrs := tc.headers(t, s)
			var alone response
			for i, tg := range s.targets {
				req := request{method: tc.method, path: "/api/things?q=1", headers: append([][2]string{hdr("Host", apiHost)}, hdrs...)}
				if tc.body != "" {
					req.body, req.length = strings.NewReader(tc.body), int64(len(tc.body))
				}
				s.api.Received()
				resp := do(t, client, tg.url, req)
				r, body := s.api.Received()
				checkAnswer(t, tg.name, tc, resp)
				checkAPI(t, tg.name, tc, resp, r, body, i > 0)
				if i == 0 {
					alone = resp
				} else {
					sameAnswer(t, tg.name, alone, resp)
				}
			}
		})
	}
}

// checkAnswer checks what the browser sees against the case.
func checkAnswer(t *testing.T, name string, tc pipelineCase, resp response) {
	t.Helper()
	if resp.status != tc.status {
		t.Fatalf("%s: status %d, want %d (body %q)", name, resp.status, tc.status, resp.body)
	}
	acao := resp.header.Get("Access-Control-Allow-Origin")
	switch {
	case tc.cors && acao != trustedOrigin:
		t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", name, acao, trustedOrigin)
	case !tc.cors && acao != "":
		t.Errorf("%s: Access-Control-Allow-Origin %q, want none", name, acao)
	}
	if tc.cors && (resp.header.Get("Access-Control-Allow-Credentials") != "true" || !hasToken(resp.header.Values("Vary"), "Origin")) {
		t.Errorf("%s: Access-Control-Allow-Credentials %q, Vary %q", name, resp.header.Get("Access-Control-Allow-Credentials"), resp.header.Values("Vary"))
	}
	if tc.status == 401 {
		want := unauthorizedJSON
		if tc.method == "HEAD" {
			want = ""
		}
		if resp.body != want || resp.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: 401 body %q (%s), want %q", name, resp.body, resp.header.Get("Content-Type"), want)
		}
	}
	if resp.header.Get("X-Request-Id") == "" {
		t.Errorf("%s: no X-Request-Id", name)
	}
	// The token goes to the API, never back to the browser.
	if a := resp.header.Get("Authorization"); a != "" {
		t.Errorf("%s: the answer carries Authorization %q", name, a)
	}
}

// checkAPI checks what the API received.
func checkAPI(t *testing.T, name string, tc pipelineCase, resp response, r *http.Request, body []byte, viaNGINX bool) {
	t.Helper()
	switch {
	case tc.bearer == "" && r != nil:
		t.Fatalf("%s: the API was reached with Authorization %q", name, r.Header.Get("Authorization"))
	case tc.bearer == "":
		return
	case r == nil:
		t.Fatalf("%s: the API was not reached", name)
	}
	if got := r.Header.Get("Authorization"); got != tc.bearer {
		t.Errorf("%s: the API received Authorization %q, want %q", name, got, tc.bearer)
	}
	if r.URL.RequestURI() != "/api/things?q=1" || r.Method != tc.method {
		t.Errorf("%s: the API received %s %s", name, r.Method, r.URL.RequestURI())
	}
	if got := r.Header.Get("X-Request-Id"); got == "" || got != resp.header.Get("X-Request-Id") {
		t.Errorf("%s: the API received X-Request-Id %q, the browser %q", name, got, resp.header.Get("X-Request-Id"))
	}
	if viaNGINX {
		if !strings.HasPrefix(r.Header.Get("X-Forwarded-For"), "127.0.0.1") || r.Header.Get("X-Forwarded-Proto") != "http" || r.Header.Get("X-Forwarded-Host") != apiHost {
			t.Errorf("%s: X-Forwarded-For %q, -Proto %q, -Host %q", name, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"))
		}
	}
	if tc.check != nil {
		tc.check(t, r, body)
	}
}

// sameAnswer compares an answer through NGINX with the proxy's own.
func sameAnswer(t *testing.T, name string, alone, got response) {
	t.Helper()
	if got.status != alone.status || got.body != alone.body {
		t.Errorf("%s: %d %q, the proxy alone %d %q", name, got.status, got.body, alone.status, alone.body)
	}
	for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods",
		"Access-Control-Allow-Headers", "Access-Control-Max-Age", "Access-Control-Expose-Headers", "Content-Type", "Cache-Control"} {
		if g, w := strings.Join(got.header.Values(h), ", "), strings.Join(alone.header.Values(h), ", "); g != w {
			t.Errorf("%s: %s %q, the proxy alone %q", name, h, g, w)
		}
	}
	if g, w := hasToken(got.header.Values("Vary"), "Origin"), hasToken(alone.header.Values("Vary"), "Origin"); g != w {
		t.Errorf("%s: Vary %q, the proxy alone %q", name, got.header.Values("Vary"), alone.header.Values("Vary"))
	}
}

func hasToken(values []string, tok string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), tok) {
				return true
			}
		}
	}
	return false
}

// bigToken returns a JWT-shaped token68 of about n characters.
func bigToken(n int) string {
	b := make([]byte, n*3/4)
	rand.Read(b)
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(b) + ".c2ln"
}

// TestHeaderBudget: the chunked cookies of a 9 KiB token, 12 KiB in one
// Cookie line, pass both modes (NGINX's default 8k buffers refuse them), and
// the 9 KiB Authorization of the auth answer fits NGINX's proxy buffer. A
// Cookie line over 16 KiB is refused.
func TestHeaderBudget(t *testing.T) {
	nginxtest.Binary(t)
	t.Parallel()
	s := newStack(t, "")
	big := bigToken(9 << 10)
	line := chunked(t, s.Keys, "example-at", session.AccessToken, 4000, big) + "; theme=dark"
	if len(line) < 12<<10 {
		t.Fatalf("the Cookie line is %d bytes, want at least 12 KiB", len(line))
	}
	for _, tg := range s.targets {
		s.api.Received()
		resp := do(t, client, tg.url, request{method: "GET", path: "/api/big", headers: [][2]string{trusted(), cookie(line)}})
		if resp.status != 200 {
			t.Fatalf("%s: a %d-byte Cookie line: status %d (%q)", tg.name, len(line), resp.status, resp.body)
		}
		r, _ := s.api.Received()
		if r == nil || r.Header.Get("Authorization") != "Bearer "+big || r.Header.Get("Cookie") != "theme=dark" {
			t.Fatalf("%s: the API did not receive the big token alone", tg.name)
		}
	}
	tooBig := "theme=" + strings.Repeat("x", 17<<10)
	for _, tg := range s.targets[1:] {
		resp := do(t, client, tg.url, request{method: "GET", path: "/api/big", headers: [][2]string{trusted(), cookie(tooBig)}})
		if resp.status != 400 {
			t.Errorf("%s: a 17 KiB Cookie line: status %d, want 400", tg.name, resp.status)
		}
	}
}

// TestBodyLimit: NGINX takes request bodies up to 10 MiB (its default is
// 1 MiB) and refuses larger ones, chunked ones included (the proxy alone
// cannot count those).
func TestBodyLimit(t *testing.T) {
	nginxtest.Binary(t)
	t.Parallel()
	s := newStack(t, "")
	for _, tg := range s.targets[1:] {
		for _, tc := range []struct {
			size, length int64 // length -1: chunked
			status       int
		}{
			{5 << 20, 5 << 20, 200}, {5 << 20, -1, 200}, {11 << 20, 11 << 20, 413}, {11 << 20, -1, 413},
		} {
			hdrs := append(csrfPair(t, s), trusted(), cookie(at(t, s)))
			if tc.length > 0 {
				hdrs = append(hdrs, hdr("Expect", "100-continue"))
			}
			resp := do(t, client, tg.url, request{method: "POST", path: "/api/upload", headers: hdrs,
				body: io.LimitReader(zeros{}, tc.size), length: tc.length})
			r, body := s.api.Received()
			if resp.status != tc.status {
				t.Errorf("%s: a %d-byte body (Content-Length %d): status %d, want %d", tg.name, tc.size, tc.length, resp.status, tc.status)
			}
			if got, want := int64(len(body)), map[bool]int64{true: tc.size}[tc.status == 200]; got != want || (want > 0) != (r != nil) {
				t.Errorf("%s: the API received %d bytes of a %d-byte body", tg.name, got, tc.size)
			}
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestWebSocket: in auth_request mode NGINX carries a protocol upgrade to
// the API once the proxy has said yes, and refuses it otherwise.
func TestWebSocket(t *testing.T) {
	nginxtest.Binary(t)
	t.Parallel()
	s := newStack(t, "")
	in := s.targets[2]
	addr := strings.TrimPrefix(in.url, "http://")
	for _, tc := range []struct {
		name   string
		cookie string
		status string
	}{
		{"valid cookie", at(t, s), "HTTP/1.1 101 "},
		{"no cookie", "theme=dark", "HTTP/1.1 401 "},
	} {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "GET /api/ws HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nCookie: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", apiHost, trustedOrigin, tc.cookie)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		r, _ := s.api.Received()
		if !strings.HasPrefix(resp.Proto+" "+resp.Status, tc.status) {
			t.Fatalf("%s: %s %s, want %s", tc.name, resp.Proto, resp.Status, tc.status)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			if r != nil {
				t.Errorf("%s: the API was reached", tc.name)
			}
			continue
		}
		if r == nil || r.Header.Get("Authorization") != "Bearer "+token || r.Header.Get("Cookie") != "" {
			t.Fatalf("%s: the API received %v", tc.name, r)
		}
		fmt.Fprint(conn, "ping\n")
		if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
			t.Errorf("%s: echo %q, %v", tc.name, line, err)
		}
	}
}

// TestAuthEndpointInternal: browsers cannot reach the proxy's auth
// endpoint through NGINX, and other paths are 404 JSON.
func TestAuthEndpointInternal(t *testing.T) {
	nginxtest.Binary(t)
	t.Parallel()
	s := newStack(t, "")
	for _, tg := range s.targets[1:] {
		for _, path := range []string{"/_oauth-proxy/auth", "/", "/apix"} {
			resp := do(t, client, tg.url, request{method: "GET", path: path, headers: append([][2]string{trusted(), cookie(at(t, s))}, csrfPair(t, s)...)})
			if resp.status != 404 || resp.header.Get("Authorization") != "" {
				t.Errorf("%s: GET %s: status %d, Authorization %q; want 404 and none", tg.name, path, resp.status, resp.header.Get("Authorization"))
			}
		}
		// Request targets that normalise to the auth path: whatever NGINX
		// makes of them (its 404, or an API call through /api/), the token
		// never comes back in an answer.
		for _, target := range []string{"/api/../_oauth-proxy/auth", "/api/%2e%2e/_oauth-proxy/auth", "/api/..%2f_oauth-proxy/auth",
			"//_oauth-proxy/auth", "/%5Foauth-proxy/auth", "/api/%2e%2e%2f_oauth-proxy/auth"} {
			got := rawGet(t, tg.url, target, "Origin: "+trustedOrigin+"\r\nCookie: "+at(t, s)+"\r\n")
			if got.Err != nil || got.Header.Get("Authorization") != "" || strings.Contains(got.Body, token) {
				t.Errorf("%s: GET %s: status %d, Authorization %q, error %v; want no token in the answer", tg.name, target, got.Status, got.Header.Get("Authorization"), got.Err)
			}
		}
	}
}

// TestUnreachable: when NGINX cannot reach the proxy (or, in auth_request
// mode, the API) the browser gets the proxy's 502 JSON.
func TestUnreachable(t *testing.T) {
	nginxtest.Binary(t)
	t.Parallel()
	closed := bintest.FreeTCPAddr(t)
	a := newAPI(t)
	k := proxytest.NewKeys(t)
	proxyAddr := startProxy(t, k, "", "") // auth_request mode
	c := k.Seal(t, session.AccessToken, token)
	for _, tc := range []struct {
		name string
		mode string
		p    nginx.Params
	}{
		{"upstream mode, proxy down", nginx.ModeUpstream, nginx.Params{Proxies: []string{closed}}},
		{"auth_request mode, proxy down", nginx.ModeAuthRequest, nginx.Params{Proxies: []string{closed}, APIs: []string{a.addr()}}},
		{"auth_request mode, API down", nginx.ModeAuthRequest, nginx.Params{Proxies: []string{proxyAddr}, APIs: []string{closed}}},
	} {
		in := startNGINX(t, tc.mode, tc.p)
		resp := do(t, client, in.url, request{method: "GET", path: "/api/x", headers: [][2]string{trusted(), cookie("example-at=" + c)}})
		if resp.status != 502 || resp.body != string(browser.ErrorAnswerFor("upstream_unavailable").Body) || resp.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q (%s), want 502 %s", tc.name, resp.status, resp.body, resp.header.Get("Content-Type"), browser.ErrorAnswerFor("upstream_unavailable").Body)
		}
	}
}

// fakeAgent answers every request with its id, so a test sees which
// instance NGINX chose.
func fakeAgent(t *testing.T, id string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth-agent/login/end" {
			// Six 4 KiB cookies: a session with a chunked large token.
			for i := range 6 {
				w.Header().Add("Set-Cookie", fmt.Sprintf("example-at.%d=%s; Path=/; HttpOnly; Secure; SameSite=Strict", i, strings.Repeat("v", 4000)))
			}
		}
		w.Header().Set("X-Agent", id)
		fmt.Fprint(w, id)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestRefreshRouting: /refresh reaches the same agent for the same refresh
// cookie, wherever it sits in the Cookie header and chunked or not; distinct
// cookies spread over both agents; other agent paths are balanced.
func TestRefreshRouting(t *testing.T) {
	nginxtest.Binary(t)
	t.Parallel()
	in := startNGINX(t, nginx.ModeUpstream, nginx.Params{Agents: []string{fakeAgent(t, "agent-a"), fakeAgent(t, "agent-b")}, Proxies: []string{"127.0.0.1:1"}})
	call := func(path, cookieLine string) string {
		t.Helper()
		resp := do(t, client, in.url, request{method: "POST", path: path, headers: [][2]string{trusted(), cookie(cookieLine)}})
		if resp.status != 200 {
			t.Fatalf("POST %s: status %d", path, resp.status)
		}
		return resp.body
	}

	perAgent := map[string]int{}
	for i := range 40 {
		v := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("refresh-token-%d-%s", i, bigToken(16))))
		first := call("/oauth-agent/refresh", "example-auth="+v)
		perAgent[first]++
		for _, line := range []string{
			"example-auth=" + v,
			"theme=dark; example-auth=" + v + "; example-csrf=abc",
			"example-csrf=abc;example-auth=" + v,
			"example-auth.0=" + v + "; example-auth.1=more",
		} {
			if got := call("/oauth-agent/refresh", line); got != first {
				t.Fatalf("refresh cookie %d with Cookie %.40q… reached %s, earlier %s", i, line, got, first)
			}
		}
	}
	if perAgent["agent-a"] == 0 || perAgent["agent-b"] == 0 {
		t.Errorf("40 refresh cookies reached %v; want both agents", perAgent)
	}

	others := map[string]int{}
	for range 10 {
		others[call("/oauth-agent/claims", "example-auth=same; example-id=x")]++
	}
	if others["agent-a"] == 0 || others["agent-b"] == 0 {
		t.Errorf("10 calls to /oauth-agent/claims reached %v; want both agents", others)
	}

	// The agent's large Set-Cookie headers fit NGINX's buffer.
	resp := do(t, client, in.url, request{method: "POST", path: "/oauth-agent/login/end", headers: [][2]string{trusted()}})
	if resp.status != 200 || len(resp.header.Values("Set-Cookie")) != 6 {
		t.Errorf("login/end with 24 KiB of Set-Cookie: status %d, %d cookies", resp.status, len(resp.header.Values("Set-Cookie")))
	}
}

// selfSigned writes a self-signed certificate for api.example.localhost and
// 127.0.0.1 into dir and returns the paths and the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return selfSignedWith(t, dir, key.Public(), key)
}

// selfSignedWith is selfSigned with the given key pair.
func selfSignedWith(t *testing.T, dir string, pub, key any) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: apiHost},
		DNSNames:              []string{apiHost},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// TestTLS: the TLS variant serves https with the given certificate,
// proxies a valid request with X-Forwarded-Proto https, and sends HSTS.
func TestTLS(t *testing.T) {
	nginxtest.Binary(t)
	t.Parallel()
	certFile, keyFile, cert := selfSigned(t, t.TempDir())
	a := newAPI(t)
	k := proxytest.NewKeys(t)
	proxyAddr := startProxy(t, k, a.addr(), "")
	in := startNGINX(t, nginx.ModeTLS, nginx.Params{Proxies: []string{proxyAddr}, Agents: []string{fakeAgent(t, "agent-a")},
		TLSCertificate: certFile, TLSCertificateKey: keyFile})
	if !strings.HasPrefix(in.url, "https://") {
		t.Fatalf("url %s", in.url)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	c := newClient(&tls.Config{RootCAs: roots, ServerName: apiHost})
	sealed := k.Seal(t, session.AccessToken, token)

	resp := do(t, c, in.url, request{method: "GET", path: "/api/things", headers: [][2]string{hdr("Host", apiHost), trusted(), cookie("example-at=" + sealed)}})
	if resp.status != 200 || resp.header.Get("Access-Control-Allow-Origin") != trustedOrigin {
		t.Fatalf("status %d, ACAO %q (body %q)", resp.status, resp.header.Get("Access-Control-Allow-Origin"), resp.body)
	}
	if resp.tls == nil || !resp.tls.PeerCertificates[0].Equal(cert) {
		t.Error("NGINX did not present the generated certificate")
	}
	if resp.header.Get("Strict-Transport-Security") == "" {
		t.Error("no Strict-Transport-Security")
	}
	r, _ := a.Received()
	if r == nil || r.Header.Get("Authorization") != "Bearer "+token || r.Header.Get("X-Forwarded-Proto") != "https" {
		t.Fatalf("the API received %v", r)
	}
	if resp := do(t, c, in.url, request{method: "GET", path: "/oauth-agent/claims", headers: [][2]string{trusted()}}); resp.body != "agent-a" {
		t.Errorf("/oauth-agent/claims over https: %d %q", resp.status, resp.body)
	}
	// Plain http on the TLS port is refused.
	if resp := do(t, client, "http://"+strings.TrimPrefix(in.url, "https://"), request{method: "GET", path: "/api/things"}); resp.status != 400 {
		t.Errorf("plain http to the https port: status %d, want 400", resp.status)
	}
}

// TestTLSCiphers: the TLS variant speaks TLS 1.3 and, in TLS 1.2, only
// forward-secret AEAD suites. openssl s_client offers one suite at a time
// to NGINX with an RSA certificate (so that RSA key exchange would be
// possible at all): an RSA key-exchange suite and a CBC-SHA1 suite are
// refused, ECDHE with AES-GCM or ChaCha20-Poly1305 accepted. @SECLEVEL=0
// keeps the client's own policy out of the answer.
func TestTLSCiphers(t *testing.T) {
	nginxtest.Binary(t)
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		bintest.Missing(t, "openssl not found: apt-get install -y openssl")
	}
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, _ := selfSignedWith(t, t.TempDir(), key.Public(), key)
	in := startNGINX(t, nginx.ModeTLS, nginx.Params{Proxies: []string{bintest.FreeTCPAddr(t)}, TLSCertificate: certFile, TLSCertificateKey: keyFile})
	addr := strings.TrimPrefix(in.url, "https://")
	for _, tc := range []struct {
		name   string
		args   []string
		accept bool
	}{
		{"TLS 1.3", []string{"-tls1_3"}, true},
		{"ECDHE-RSA-AES128-GCM-SHA256", []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0"}, true},
		{"ECDHE-RSA-AES256-GCM-SHA384", []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384:@SECLEVEL=0"}, true},
		{"ECDHE-RSA-CHACHA20-POLY1305", []string{"-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305:@SECLEVEL=0"}, true},
		{"RSA key exchange AES128-GCM-SHA256", []string{"-tls1_2", "-cipher", "AES128-GCM-SHA256:@SECLEVEL=0"}, false},
		{"RSA key exchange AES256-SHA", []string{"-tls1_2", "-cipher", "AES256-SHA:@SECLEVEL=0"}, false},
		{"CBC-SHA1 ECDHE-RSA-AES128-SHA", []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA:@SECLEVEL=0"}, false},
		{"CBC-SHA256 ECDHE-RSA-AES128-SHA256", []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA256:@SECLEVEL=0"}, false},
		{"DHE-RSA-AES128-GCM-SHA256", []string{"-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			args := append([]string{"s_client", "-connect", addr, "-servername", apiHost}, tc.args...)
			cmd := exec.CommandContext(ctx, openssl, args...)
			cmd.Stdin = strings.NewReader("")
			out, err := cmd.CombinedOutput()
			// s_client exits 0 only after a handshake; it then prints the suite.
			accepted := err == nil && regexp.MustCompile(`(?m)^New, TLSv1\.[23], Cipher is [A-Z0-9_-]+$`).Match(out)
			if accepted != tc.accept {
				t.Errorf("openssl %s: accepted %v, want %v (%v)\n%s", strings.Join(tc.args, " "), accepted, tc.accept, err, out)
			}
		})
	}
}

// TestNginxAcceptsEveryConfig runs nginx -t on every mode, whole and as a
// conf.d snippet, with varied parameters, and on the committed examples.
func TestNginxAcceptsEveryConfig(t *testing.T) {
	bin := nginxtest.Binary(t)
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir)
	variants := map[string]nginx.Params{
		"defaults": {},
		"several instances, other names": {Agents: []string{"127.0.0.1:8080", "127.0.0.2:8080", "unix:/run/th/agent.sock"},
			Proxies: []string{"127.0.0.1:8081", "[::1]:8081"}, APIs: []string{"localhost:9443", "10.0.0.9:9000"},
			CookiePrefix: "my_app-1", NamePrefix: browser.NamePrefixHost, AgentBasePath: "/bff/agent", APIPathPrefix: "/v1/data/",
			AuthPath: "/_th/check", ServerName: "api.example.com www.api.example.com", Listen: "[::]:8443"},
		"keep cookie headers": {KeepCookieHeaders: true},
		"proxy workers":       {Proxies: []string{"unix:/run/th/proxy.sock", "127.0.0.1:8081"}, ProxyWorkers: 64},
		// x-<prefix>-csrf is 71 characters: NGINX's default
		// proxy_headers_hash_bucket_size (64) failed from a 40-character prefix.
		"longest prefix":            {CookiePrefix: strings.Repeat("p", browser.MaxPrefix), NamePrefix: browser.NamePrefixHostHTTP},
		"longest prefix kept":       {CookiePrefix: strings.Repeat("p", browser.MaxPrefix), KeepCookieHeaders: true},
		"40-character prefix, host": {CookiePrefix: strings.Repeat("p", 40), NamePrefix: browser.NamePrefixHost},
	}
	for _, mode := range nginx.Modes {
		for name, p := range variants {
			for _, snippet := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/snippet=%v", mode, name, snippet), func(t *testing.T) {
					p := p
					p.Snippet = snippet
					if mode == nginx.ModeTLS {
						p.TLSCertificate, p.TLSCertificateKey = certFile, keyFile
					}
					conf, err := nginx.Render(mode, runParams(t, p))
					if err != nil {
						t.Fatal(err)
					}
					nginxTest(t, bin, conf, snippet)
				})
			}
		}
	}
	for _, mode := range nginx.Modes {
		t.Run("example "+mode, func(t *testing.T) {
			conf, err := os.ReadFile(filepath.Join("conf", mode+".conf"))
			if err != nil {
				t.Fatal(err)
			}
			if mode == nginx.ModeTLS {
				// The example names the production certificate paths.
				p := nginx.ExampleParams(mode)
				conf = []byte(strings.NewReplacer(p.TLSCertificate, certFile, p.TLSCertificateKey, keyFile).Replace(string(conf)))
			}
			nginxTest(t, bin, conf, true)
		})
	}
}

// TestHeadersBucketSize: for every prefix length the renderer's bucket size
// is the smallest NGINX accepts for the CSRF header's name: NGINX refuses
// the next smaller cache line, so the formula is neither too small nor
// wasteful.
func TestHeadersBucketSize(t *testing.T) {
	bin := nginxtest.Binary(t)
	t.Parallel()
	for n := 1; n <= browser.MaxPrefix; n++ {
		conf, err := nginx.Render(nginx.ModeAuthRequest, runParams(t, nginx.Params{CookiePrefix: strings.Repeat("p", n)}))
		if err != nil {
			t.Fatal(err)
		}
		size := nginx.HeadersBucketSize(len("x--csrf") + n)
		if !strings.Contains(string(conf), fmt.Sprintf("proxy_headers_hash_bucket_size %d;", size)) {
			t.Fatalf("prefix of %d: no bucket size %d in the configuration", n, size)
		}
		nginxTest(t, bin, conf, false)
		if size > 64 {
			smaller := strings.Replace(string(conf), fmt.Sprintf("proxy_headers_hash_bucket_size %d;", size), fmt.Sprintf("proxy_headers_hash_bucket_size %d;", size-64), 1)
			if err := nginxCheck(t, bin, []byte(smaller)); err == nil || !strings.Contains(err.Error(), "proxy_headers_hash") {
				t.Errorf("prefix of %d: NGINX accepts bucket size %d too (%v): the formula wastes a cache line", n, size-64, err)
			}
		}
	}
}

// nginxTest runs nginx -t on conf; a snippet is included in a minimal
// nginx.conf, as /etc/nginx/nginx.conf includes conf.d.
func nginxTest(t *testing.T, bin string, conf []byte, snippet bool) {
	t.Helper()
	dir := t.TempDir()
	if snippet {
		if err := os.WriteFile(filepath.Join(dir, "th.conf"), conf, 0o644); err != nil {
			t.Fatal(err)
		}
		conf = fmt.Appendf(nil, "pid %[1]s/nginx.pid;\nerror_log %[1]s/error.log;\nevents {}\nhttp {\n"+
			"    client_body_temp_path %[1]s/body;\n    proxy_temp_path %[1]s/proxy;\n    fastcgi_temp_path %[1]s/fastcgi;\n"+
			"    uwsgi_temp_path %[1]s/uwsgi;\n    scgi_temp_path %[1]s/scgi;\n    include %[1]s/th.conf;\n}\n", dir)
	}
	if err := nginxCheck(t, bin, conf); err != nil {
		t.Fatalf("%v\n--- config:\n%s", err, conf)
	}
}

// nginxCheck runs nginx -t on a whole configuration and returns its
// complaint.
func nginxCheck(t *testing.T, bin string, conf []byte) error {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-t", "-q", "-p", dir, "-c", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("nginx -t: %v\n%s", err, out)
	}
	return nil
}

// TestUnixSocket: NGINX reaches the proxy over a Unix socket in both modes
// (Proxies: "unix:/path"), and the proxy's answers come through as over TCP:
// the API gets the token, a request without a cookie gets the proxy's 401.
func TestUnixSocket(t *testing.T) {
	nginxtest.Binary(t)
	t.Parallel()
	a := newAPI(t)
	k := proxytest.NewKeys(t)
	dir := t.TempDir()
	sock, authSock := "unix:"+filepath.Join(dir, "proxy.sock"), "unix:"+filepath.Join(dir, "auth.sock")
	startProxyOn(t, sock, k, a.addr(), "")
	startProxyOn(t, authSock, k, "", "") // auth_request mode: no routes
	c := k.Seal(t, session.AccessToken, token)
	for _, tc := range []struct {
		mode string
		p    nginx.Params
	}{
		{nginx.ModeUpstream, nginx.Params{Proxies: []string{sock}}},
		{nginx.ModeAuthRequest, nginx.Params{Proxies: []string{authSock}, APIs: []string{a.addr()}}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			in := startNGINX(t, tc.mode, tc.p)
			if !strings.Contains(string(in.conf), "server "+tc.p.Proxies[0]+";") {
				t.Fatalf("the configuration names no server %s:\n%s", tc.p.Proxies[0], in.conf)
			}
			a.Received()
			resp := do(t, client, in.url, request{method: "GET", path: "/api/x", headers: [][2]string{hdr("Host", apiHost), trusted(), cookie("example-at=" + c)}})
			r, _ := a.Received()
			if resp.status != 200 || r == nil || r.Header.Get("Authorization") != "Bearer "+token {
				t.Fatalf("GET with the cookie: %d %q; the API got %v", resp.status, resp.body, r)
			}
			if r.Header.Get("Cookie") != "" {
				t.Errorf("the API got Cookie %q, want none", r.Header.Get("Cookie"))
			}
			resp = do(t, client, in.url, request{method: "GET", path: "/api/x", headers: [][2]string{hdr("Host", apiHost), trusted()}})
			if resp.status != 401 || resp.body != string(browser.ErrorAnswerFor("unauthorized").Body) {
				t.Errorf("GET without a cookie: %d %q, want 401 %s", resp.status, resp.body, browser.ErrorAnswerFor("unauthorized").Body)
			}
			if r, _ := a.Received(); r != nil {
				t.Errorf("a request without a cookie reached the API: %s %s", r.Method, r.URL)
			}
		})
	}
}

// TestUnixSocketWorkers: with ProxyWorkers 2 the upstream lists the two
// sockets of a proxy's worker set (workers: 2 with listen unix:/path serves
// /path.0 and /path.1; cmd/oauth-proxy tests the set itself), and NGINX
// sends requests to both: here each socket's proxy routes to its own API.
func TestUnixSocketWorkers(t *testing.T) {
	nginxtest.Binary(t)
	t.Parallel()
	k := proxytest.NewKeys(t)
	sock := "unix:" + filepath.Join(t.TempDir(), "proxy.sock")
	apis := []*api{newAPI(t), newAPI(t)}
	for i, a := range apis {
		startProxyOn(t, fmt.Sprintf("%s.%d", sock, i), k, a.addr(), "")
	}
	in := startNGINX(t, nginx.ModeUpstream, nginx.Params{Proxies: []string{sock}, ProxyWorkers: 2})
	c := k.Seal(t, session.AccessToken, token)
	for range 4 { // round robin with one NGINX worker: two each
		if resp := do(t, client, in.url, request{method: "GET", path: "/api/x", headers: [][2]string{hdr("Host", apiHost), trusted(), cookie("example-at=" + c)}}); resp.status != 200 {
			t.Fatalf("GET with the cookie: %d %q", resp.status, resp.body)
		}
	}
	for i, a := range apis {
		if r, _ := a.Received(); r == nil || r.Header.Get("Authorization") != "Bearer "+token {
			t.Errorf("nothing with the token came through %s.%d: %v", sock, i, r)
		}
	}
}
