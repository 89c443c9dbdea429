package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/session"
)

const unauthorizedBody = `{"code":"unauthorized","message":"Access denied due to missing or invalid credentials"}`

// The token every valid cookie in these tests holds: a JWT-shaped token68.
const token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJkZW1vIn0.c2ln-_~+/="

// pipelineCase is one request through contract §6 steps 1 to 7.
type pipelineCase struct {
	name    string
	extra   string // configuration added to the harness's
	method  string
	headers func(h *harness) [][2]string
	status  int
	// cors: whether the answer must carry Access-Control-Allow-Origin for
	// the trusted origin (and never for another).
	cors bool
	// upstream checks what the API received (upstream mode) and, through
	// the Authorization header, what the auth endpoint answered.
	bearer string // the Authorization the API must receive; "" = not reached
	check  func(t *testing.T, r *http.Request)
	// authStatus is the auth endpoint's status for the same request, when it
	// differs from status (preflights are not the auth endpoint's job).
	authStatus int
}

func origin(o string) [2]string       { return [2]string{"Origin", o} }
func cookie(c string) [2]string       { return [2]string{"Cookie", c} }
func header(k, v string) [2]string    { return [2]string{k, v} }
func trusted() [2]string              { return origin(trustedOrigin) }
func at(h *harness) string            { return "example-at=" + h.seal(session.AccessToken, token) }
func csrfPair(h *harness) [][2]string { return csrfHeaders(h, "csrf-token-value") }
func csrfHeaders(h *harness, tok string) [][2]string {
	return [][2]string{cookie("example-csrf=" + h.seal(session.CSRF, tok)), header("x-example-csrf", tok)}
}

func pipelineCases() []pipelineCase {
	cases := []pipelineCase{
		{name: "valid cookie", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(h *harness) [][2]string {
				return [][2]string{trusted(), cookie("theme=dark; " + at(h) + "; example-csrf=x; example-id=y; example-auth=z; example-login=w; lang=fr")}
			},
			check: func(t *testing.T, r *http.Request) {
				if got := r.Header.Get("Cookie"); got != "theme=dark; lang=fr" {
					t.Errorf("the API received Cookie %q, want only the other cookies", got)
				}
			}},
		{name: "old key still in the ring", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(h *harness) [][2]string {
				old, _ := session.NewCodec(h.Old, crypto.FormatV2)
				c, _ := old.Seal(nil, session.AccessToken, 0, &h.Env, []byte(token))
				return [][2]string{trusted(), cookie("example-at=" + string(c))}
			}},
		// Formats: v2 is written and read by default; v1 and DARE only
		// when cookie.format or cookie.accept names them.
		{name: "v1 cookie, default format", method: "GET", status: 401, cors: true,
			headers: func(h *harness) [][2]string {
				return [][2]string{trusted(), cookie("example-at=" + h.sealLegacy(crypto.FormatV1, token))}
			}},
		{name: "DARE cookie, default format", method: "GET", status: 401, cors: true,
			headers: func(h *harness) [][2]string {
				return [][2]string{trusted(), cookie("example-at=" + h.sealLegacy(crypto.FormatDARE, token))}
			}},
		{name: "v1 cookie, cookie.format v1", extra: "cookie: {format: v1}", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(h *harness) [][2]string {
				return [][2]string{trusted(), cookie("example-at=" + h.sealLegacy(crypto.FormatV1, token))}
			}},
		{name: "DARE cookie, cookie.format v1", extra: "cookie: {format: v1}", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(h *harness) [][2]string {
				return [][2]string{trusted(), cookie("example-at=" + h.sealLegacy(crypto.FormatDARE, token))}
			}},
		{name: "v2 cookie, cookie.format v1", extra: "cookie: {format: v1}", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(h *harness) [][2]string { return [][2]string{trusted(), cookie(at(h))} }},
		{name: "v1 POST, cookie.format v1", extra: "cookie: {format: v1}", method: "POST", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(h *harness) [][2]string {
				return [][2]string{trusted(), cookie("example-at=" + h.sealLegacy(crypto.FormatV1, token) + "; example-csrf=" + h.sealLegacy(crypto.FormatV1, "csrf-token-value")),
					header("x-example-csrf", "csrf-token-value")}
			}},
		{name: "v1 P-at beside a v2 P-csrf, cookie.format v1", extra: "cookie: {format: v1}", method: "POST", status: 401, cors: true,
			headers: func(h *harness) [][2]string {
				return append(csrfPair(h), trusted(), cookie("example-at="+h.sealLegacy(crypto.FormatV1, token)))
			}},
		{name: "v1 cookie, cookie.accept [v1]", extra: "cookie: {format: v2, accept: [v1]}", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(h *harness) [][2]string {
				return [][2]string{trusted(), cookie("example-at=" + h.sealLegacy(crypto.FormatV1, token))}
			}},
		{name: "DARE cookie, cookie.accept [v1]", extra: "cookie: {format: v2, accept: [v1]}", method: "GET", status: 401, cors: true,
			headers: func(h *harness) [][2]string {
				return [][2]string{trusted(), cookie("example-at=" + h.sealLegacy(crypto.FormatDARE, token))}
			}},
		{name: "browser Authorization replaced", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(h *harness) [][2]string {
				return [][2]string{trusted(), cookie(at(h)), header("Authorization", "Bearer forged")}
			}},
		{name: "no cookie", method: "GET", status: 401, cors: true,
			headers: func(h *harness) [][2]string { return [][2]string{trusted()} }},
		{name: "other cookies only", method: "GET", status: 401, cors: true,
			headers: func(h *harness) [][2]string { return [][2]string{trusted(), cookie("theme=dark")} }},
		{name: "empty cookie", method: "GET", status: 401, cors: true,
			headers: func(h *harness) [][2]string { return [][2]string{trusted(), cookie("example-at=")} }},
		{name: "tampered cookie", method: "GET", status: 401, cors: true,
			headers: func(h *harness) [][2]string {
				c := []byte(h.seal(session.AccessToken, token))
				c[20] ^= 1
				return [][2]string{trusted(), cookie("example-at=" + string(c))}
			}},
		{name: "wrong key", method: "GET", status: 401, cors: true,
			headers: func(h *harness) [][2]string {
				ring, _ := crypto.NewKeyring(crypto.GenerateKey())
				other, _ := session.NewCodec(ring, crypto.FormatV2)
				c, _ := other.Seal(nil, session.AccessToken, 0, &h.Env, []byte(token))
				return [][2]string{trusted(), cookie("example-at=" + string(c))}
			}},
		{name: "token outside token68", method: "GET", status: 401, cors: true,
			headers: func(h *harness) [][2]string {
				return [][2]string{trusted(), cookie("example-at=" + h.seal(session.AccessToken, "abc def\r\nX-Injected: 1"))}
			}},
		{name: "missing Origin", method: "GET", status: 401,
			headers: func(h *harness) [][2]string { return [][2]string{cookie(at(h))} }},
		{name: "untrusted Origin", method: "GET", status: 401,
			headers: func(h *harness) [][2]string { return [][2]string{origin("https://evil.example"), cookie(at(h))} }},
		{name: "Origin with a trailing slash", method: "GET", status: 401,
			headers: func(h *harness) [][2]string { return [][2]string{origin(trustedOrigin + "/"), cookie(at(h))} }},
		{name: "CORS off, GET without Origin", extra: "cors: {enabled: false}", method: "GET", status: 200, bearer: "Bearer " + token,
			headers: func(h *harness) [][2]string { return [][2]string{cookie(at(h))} }},
		{name: "CORS off, POST without Origin", extra: "cors: {enabled: false}", method: "POST", status: 401,
			headers: func(h *harness) [][2]string { return append(csrfPair(h), cookie(at(h))) }},
		{name: "CORS off, no CORS headers even for a trusted origin", extra: "cors: {enabled: false}", method: "GET", status: 200, bearer: "Bearer " + token,
			headers: func(h *harness) [][2]string { return [][2]string{trusted(), cookie(at(h))} },
			check:   func(t *testing.T, r *http.Request) {}},
		{name: "several Cookie headers", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(h *harness) [][2]string {
				return [][2]string{trusted(), cookie("a=1"), cookie(at(h)), cookie("b=2")}
			},
			check: func(t *testing.T, r *http.Request) {
				if got := strings.Join(r.Header.Values("Cookie"), "; "); got != "a=1; b=2" {
					t.Errorf("the API received Cookie %q, want a=1; b=2", got)
				}
			}},
		{name: "chunked cookie", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(h *harness) [][2]string {
				c := splitValue(h.sealIn(&h.Env, session.AccessToken, 2, token), 2)
				return [][2]string{trusted(), cookie("example-at.1=" + c[1] + "; keep=1; example-at.0=" + c[0])}
			},
			check: func(t *testing.T, r *http.Request) {
				if got := r.Header.Get("Cookie"); got != "keep=1" {
					t.Errorf("the API received Cookie %q, want keep=1", got)
				}
			}},
		{name: "chunks in the wrong order", method: "GET", status: 401, cors: true,
			headers: func(h *harness) [][2]string {
				c := splitValue(h.sealIn(&h.Env, session.AccessToken, 2, token), 2)
				return [][2]string{trusted(), cookie("example-at.0=" + c[1] + "; example-at.1=" + c[0])}
			}},
		{name: "allow_tokens off: a bearer token without cookie", method: "GET", status: 401, cors: true,
			headers: func(h *harness) [][2]string {
				return [][2]string{trusted(), header("Authorization", "Bearer mobile-token")}
			}},
		{name: "allow_tokens on: a bearer token passes unchanged", extra: "allow_tokens: true", method: "POST", status: 200, bearer: "Bearer mobile-token",
			headers: func(h *harness) [][2]string { return [][2]string{header("Authorization", "Bearer mobile-token")} }},
		{name: "allow_tokens on: Basic is not a bearer token", extra: "allow_tokens: true", method: "GET", status: 401, cors: true,
			headers: func(h *harness) [][2]string {
				return [][2]string{trusted(), header("Authorization", "Basic dTpw")}
			}},
		{name: "remove_cookie_headers off keeps the cookies", extra: "remove_cookie_headers: false", method: "GET", status: 200, cors: true, bearer: "Bearer " + token,
			headers: func(h *harness) [][2]string { return [][2]string{trusted(), cookie("theme=dark; " + at(h))} },
			check: func(t *testing.T, r *http.Request) {
				if !strings.Contains(r.Header.Get("Cookie"), "example-at=") {
					t.Error("the token cookie was removed although remove_cookie_headers is off")
				}
			}},
		{name: "HEAD error without a body", method: "HEAD", status: 401, cors: true,
			headers: func(h *harness) [][2]string { return [][2]string{trusted()} }},
	}
	// browser.NeedsCSRF: every method but GET, HEAD and OPTIONS, extension
	// methods (WebDAV's, QUERY) and a lower-case "post" included.
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "PROPFIND", "QUERY", "post"} {
		cases = append(cases,
			pipelineCase{name: m + " with CSRF", method: m, status: 200, cors: true, bearer: "Bearer " + token,
				headers: func(h *harness) [][2]string { return append(csrfPair(h), trusted(), cookie(at(h))) },
				check: func(t *testing.T, r *http.Request) {
					if r.Header.Get("X-Example-Csrf") != "" || strings.Contains(r.Header.Get("Cookie"), "csrf") {
						t.Error("the CSRF header or cookie reached the API")
					}
				}},
			pipelineCase{name: m + " without CSRF cookie", method: m, status: 401, cors: true,
				headers: func(h *harness) [][2]string {
					return [][2]string{trusted(), cookie(at(h)), header("x-example-csrf", "csrf-token-value")}
				}},
			pipelineCase{name: m + " without CSRF header", method: m, status: 401, cors: true,
				headers: func(h *harness) [][2]string {
					return [][2]string{trusted(), cookie(at(h)), cookie("example-csrf=" + h.seal(session.CSRF, "csrf-token-value"))}
				}},
			pipelineCase{name: m + " with a CSRF mismatch", method: m, status: 401, cors: true,
				headers: func(h *harness) [][2]string {
					return [][2]string{trusted(), cookie(at(h)), cookie("example-csrf=" + h.seal(session.CSRF, "csrf-token-value")), header("x-example-csrf", "csrf-token-valuf")}
				}},
			pipelineCase{name: m + " with an unencrypted CSRF cookie", method: m, status: 401, cors: true,
				headers: func(h *harness) [][2]string {
					return [][2]string{trusted(), cookie(at(h)), cookie("example-csrf=csrf-token-value"), header("x-example-csrf", "csrf-token-value")}
				}},
			pipelineCase{name: m + " from an untrusted origin", method: m, status: 401,
				headers: func(h *harness) [][2]string {
					return append(csrfPair(h), origin("https://evil.example"), cookie(at(h)))
				}},
		)
	}
	return cases
}

// TestPipeline runs every case in upstream mode and through the auth
// endpoint, which must agree.
func TestPipeline(t *testing.T) {
	harnesses := map[string]*harness{}
	for _, tc := range pipelineCases() {
		h := harnesses[tc.extra]
		if h == nil {
			// Routes and the auth endpoint both: every case runs both ways.
			h = startProxy(t, tc.extra+"\nauth_endpoint: true")
			harnesses[tc.extra] = h
		}
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			hdrs := tc.headers(h)
			h.up.Received()
			resp := h.do(request{method: tc.method, path: "/api/things?q=1", headers: hdrs})
			checkAnswer(t, "upstream mode", tc, tc.status, resp)
			r, _ := h.up.Received()
			switch {
			case tc.bearer == "" && r != nil:
				t.Fatalf("the API was reached with Authorization %q", r.Header.Get("Authorization"))
			case tc.bearer != "" && r == nil:
				t.Fatal("the API was not reached")
			case tc.bearer != "":
				if got := r.Header.Get("Authorization"); got != tc.bearer {
					t.Errorf("the API received Authorization %q, want %q", got, tc.bearer)
				}
				if tc.check != nil {
					tc.check(t, r)
				}
			}

			// The same request as NGINX's auth_request subrequest.
			authHdrs := append([][2]string{header("X-Original-Method", tc.method), header("X-Original-URI", "/api/things?q=1")}, hdrs...)
			method := "GET"
			if tc.method == "HEAD" {
				method = "HEAD"
			}
			want := tc.status
			if tc.authStatus != 0 {
				want = tc.authStatus
			}
			resp = h.do(request{method: method, path: "/_oauth-proxy/auth", headers: authHdrs})
			checkAnswer(t, "auth endpoint", tc, want, resp)
			if got := resp.header.Get("Authorization"); got != tc.bearer {
				t.Errorf("auth endpoint: Authorization %q, want %q", got, tc.bearer)
			}
			if r, _ := h.up.Received(); r != nil {
				t.Error("the auth endpoint forwarded the request")
			}
		})
	}
}

func checkAnswer(t *testing.T, mode string, tc pipelineCase, status int, resp response) {
	t.Helper()
	if resp.status != status {
		t.Fatalf("%s: status %d, want %d (body %q)", mode, resp.status, status, resp.body)
	}
	acao := resp.header.Get("Access-Control-Allow-Origin")
	switch {
	case tc.cors && acao != trustedOrigin:
		t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", mode, acao, trustedOrigin)
	case !tc.cors && acao != "":
		t.Errorf("%s: Access-Control-Allow-Origin %q, want none", mode, acao)
	}
	if tc.cors && (resp.header.Get("Access-Control-Allow-Credentials") != "true" || !contains(resp.header.Values("Vary"), "Origin")) {
		t.Errorf("%s: credentials %q, Vary %q", mode, resp.header.Get("Access-Control-Allow-Credentials"), resp.header.Values("Vary"))
	}
	if status == 401 {
		wantBody := unauthorizedBody
		if tc.method == "HEAD" {
			wantBody = ""
		}
		if resp.body != wantBody || resp.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: 401 body %q (%s), want %q", mode, resp.body, resp.header.Get("Content-Type"), wantBody)
		}
	}
	if resp.header.Get("X-Request-Id") == "" {
		t.Errorf("%s: no X-Request-Id", mode)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		for _, part := range strings.Split(v, ",") {
			if strings.TrimSpace(part) == s {
				return true
			}
		}
	}
	return false
}
