package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/proxy/proxytest"
	"github.com/tokenhandler/tokenhandler/session"
)

// FuzzCookieHeader feeds arbitrary Cookie headers (and a CSRF header) to the
// auth endpoint and to the cookie stripping: nothing panics, the answer is
// 200 with a token68 bearer or the 401, and after stripping no token-handler
// cookie is left while every other cookie is, in order.
func FuzzCookieHeader(f *testing.F) {
	key := crypto.GenerateKey()
	cfg, err := ParseConfig([]byte(fmt.Sprintf("encryption_keys: [%q]\ntrusted_web_origins: [%q]\n", key.AppendHex(nil), trustedOrigin)), nil)
	if err != nil {
		f.Fatal(err)
	}
	p, err := New(cfg, metrics.NewSet(), zerolog.Nop())
	if err != nil {
		f.Fatal(err)
	}
	names, _ := browser.NewNames("example", browser.NamePrefixNone)
	codec, _ := session.NewCodec(cfg.Keys, crypto.FormatV2)
	env := proxytest.NewSession(time.Now())
	seal := func(p session.Purpose, chunks int, v string) string {
		c, err := codec.Seal(nil, p, chunks, &env, []byte(v))
		if err != nil {
			f.Fatal(err)
		}
		return string(c)
	}
	at, csrf, at2 := seal(session.AccessToken, 0, "tok.en"), seal(session.CSRF, 0, "csrf"), seal(session.AccessToken, 2, "tok.en")
	other := proxytest.NewSession(time.Now())
	foreign, _ := codec.Seal(nil, session.CSRF, 0, &other, []byte("csrf"))
	f.Add([]byte("example-at="+at), []byte(""), "GET")
	f.Add([]byte("a=1; example-at="+at+"; b=\"q\"; example-csrf="+csrf), []byte("csrf"), "POST")
	f.Add([]byte("example-at.0="+at2[:9]+";example-at.1="+at2[9:]), []byte(""), "DELETE")
	f.Add([]byte("=; ;;example-at; example-at=\"\"; x=y=z"), []byte("csrf"), "PUT")
	f.Add([]byte("example-at="+at+"; example-at="+at), []byte(""), "GET")
	f.Add([]byte("example-at="+at+"; example-csrf="+string(foreign)), []byte("csrf"), "POST")
	f.Add([]byte("example-at="+csrf+"; example-csrf="+at), []byte("tok.en"), "PATCH")
	f.Fuzz(func(t *testing.T, cookieHeader, csrfHeader []byte, method string) {
		if bytes.ContainsAny(cookieHeader, "\r\n") || bytes.ContainsAny(csrfHeader, "\r\n") || len(method) > 10 || bytes.ContainsAny([]byte(method), "\r\n: ") {
			return // not one header line
		}
		raw := "GET /_oauth-proxy/auth HTTP/1.1\r\nHost: api\r\nOrigin: " + trustedOrigin +
			"\r\nX-Original-Method: " + method + "\r\nx-example-csrf: " + string(csrfHeader) + "\r\nCookie: " + string(cookieHeader) + "\r\n\r\n"
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(bytes.NewReader([]byte(raw)))); err != nil {
			return
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, nil, nil)
		p.Handler(&ctx)
		switch ctx.Response.StatusCode() {
		case 200:
			auth := ctx.Response.Header.Peek("Authorization")
			// The only access token sealed above: no other purpose's
			// value ever comes out as one.
			if string(auth) != "Bearer tok.en" {
				t.Fatalf("200 with Authorization %q", auth)
			}
		case 401:
			if string(ctx.Response.Body()) != unauthorizedBody {
				t.Fatalf("401 with body %q", ctx.Response.Body())
			}
		default:
			t.Fatalf("status %d", ctx.Response.StatusCode())
		}

		// The cookies as fasthttp parses them, from a second copy: parsing
		// them in req would rewrite its raw Cookie headers.
		var parsed fasthttp.Request
		if err := parsed.Read(bufio.NewReader(bytes.NewReader([]byte(raw)))); err != nil {
			t.Fatal(err)
		}
		var before [][2]string
		for k, v := range parsed.Header.Cookies() {
			// fasthttp re-serialises a nameless cookie as its bare value,
			// which may not parse back the same ("==" becomes "="): compare
			// named cookies only.
			if len(k) > 0 && !slices.Contains(names.All(), string(k)) {
				before = append(before, [2]string{string(k), cookieValue(v)})
			}
		}
		s := acquireScratch()
		s.cookies = browser.RawCookies(req.Header.PeekAll("Cookie"))
		stripTokenHandlerCookies(&req.Header, &state{names: names, csrfField: []string{names.CSRFHeader}}, s)
		releaseScratch(s)
		// What the upstream receives, parsed again.
		var again fasthttp.Request
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		req.Header.Write(w)
		w.Flush()
		if err := again.Header.Read(bufio.NewReader(&out)); err != nil {
			t.Fatalf("the rewritten header does not parse: %v", err)
		}
		var after [][2]string
		for k, v := range again.Header.Cookies() {
			if slices.Contains(names.All(), string(k)) {
				t.Fatalf("cookie %q survived stripping", k)
			}
			if len(k) > 0 {
				after = append(after, [2]string{string(k), cookieValue(v)})
			}
		}
		if len(again.Header.Peek("x-example-csrf")) != 0 {
			t.Fatal("the CSRF header survived stripping")
		}
		if !slices.Equal(before, after) {
			t.Fatalf("other cookies changed: %q became %q", before, after)
		}
	})
}

// cookieValue is a cookie value as it survives fasthttp's re-serialisation:
// fasthttp drops the quotes of a quoted value and trims an unquoted one, so
// `a=" x "` reaches the upstream as `a=x` (docs/proxy.md, Known limits).
func cookieValue(v []byte) string {
	return strings.Trim(string(v), " \t")
}
