package browser

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// jar is a Cookies backed by a map.
type jar map[string]string

func (j jar) Cookie(name string) []byte {
	v, ok := j[name]
	if !ok {
		return nil
	}
	return []byte(v)
}

func TestNewNames(t *testing.T) {
	n, err := NewNames("example", NamePrefixNone)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{n.Login.Name, n.AccessToken.Name, n.RefreshToken.Name, n.IDToken.Name, n.CSRF.Name, n.CSRFHeader, n.AccessToken.Chunk(0), n.IDToken.Chunk(7)}
	want := []string{"example-login", "example-at", "example-auth", "example-id", "example-csrf", "x-example-csrf", "example-at.0", "example-id.7"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("names = %v, want %v", got, want)
	}
	if len(n.All()) != 5*(1+MaxChunks)+1 {
		t.Fatalf("All has %d names", len(n.All()))
	}
	h, err := NewNames("shop", NamePrefixHost)
	if err != nil {
		t.Fatal(err)
	}
	if h.AccessToken.Name != "__Host-shop-at" || h.CSRF.Chunk(1) != "__Host-shop-csrf.1" || h.CSRFHeader != "x-shop-csrf" {
		t.Fatalf("host-prefixed names = %q %q %q", h.AccessToken.Name, h.CSRF.Chunk(1), h.CSRFHeader)
	}
	hh, err := NewNames("shop", NamePrefixHostHTTP)
	if err != nil {
		t.Fatal(err)
	}
	if hh.AccessToken.Name != "__Host-Http-shop-at" || hh.CSRF.Chunk(1) != "__Host-Http-shop-csrf.1" || hh.CSRFHeader != "x-shop-csrf" {
		t.Fatalf("host-http names = %q %q %q", hh.AccessToken.Name, hh.CSRF.Chunk(1), hh.CSRFHeader)
	}
	if _, err := NewNames("shop", NamePrefix(3)); err == nil {
		t.Error("NewNames accepts an unknown NamePrefix")
	}
	for _, bad := range []string{"", strings.Repeat("a", 65), "a b", "a;b", "a=b", "a.b", "é",
		"__Host-x", "__host-x", "__HOST", "__Secure-x", "__secure", "__Http-x", "__Host-Http-x"} { // names browsers give rules (review N3)
		if _, err := NewNames(bad, NamePrefixNone); err == nil || !strings.HasPrefix(err.Error(), "browser: cookie name prefix") {
			t.Errorf("NewNames(%q) error = %v", bad, err)
		}
	}
	if _, err := NewNames(strings.Repeat("a", 64), NamePrefixNone); err != nil {
		t.Errorf("a 64-character prefix is refused: %v", err)
	}
}

func TestAppendValue(t *testing.T) {
	n, _ := NewNames("example", NamePrefixNone)
	at := &n.AccessToken
	tests := []struct {
		name   string
		jar    jar
		want   string
		wantOK bool
	}{
		{"absent", jar{"other": "x"}, "", false},
		{"single", jar{"example-at": "abc"}, "abc", true},
		{"empty single", jar{"example-at": ""}, "", true},
		{"single wins over chunks", jar{"example-at": "abc", "example-at.0": "zzz"}, "abc", true},
		{"chunks in order", jar{"example-at.1": "def", "example-at.0": "abc", "example-at.2": "g"}, "abcdefg", true},
		{"chunks stop at the first gap", jar{"example-at.0": "abc", "example-at.2": "ghi"}, "abc", true},
		{"chunk 1 without chunk 0", jar{"example-at.1": "def"}, "", false},
		{"all chunks", func() jar {
			j := jar{}
			for i := range MaxChunks {
				j[at.Chunk(i)] = string(rune('a' + i))
			}
			return j
		}(), "abcdefgh", true},
		{"another prefix", jar{"other-at": "abc"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := at.AppendValue([]byte("pre:"), tt.jar)
			if ok != tt.wantOK || string(got) != "pre:"+tt.want {
				t.Fatalf("AppendValue = %q, %v; want %q, %v", got, ok, "pre:"+tt.want, tt.wantOK)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	for _, tt := range []struct {
		n, per, chunks int
		ok             bool
	}{
		{0, 100, 1, true}, {100, 100, 1, true}, {101, 100, 2, true}, {800, 100, 8, true}, {801, 100, 9, false}, {10, 0, 0, false},
	} {
		if c, ok := Split(tt.n, tt.per); c != tt.chunks || ok != tt.ok {
			t.Errorf("Split(%d, %d) = %d, %v; want %d, %v", tt.n, tt.per, c, ok, tt.chunks, tt.ok)
		}
	}
}

func TestOrigins(t *testing.T) {
	o := NewOrigins([]string{"https://www.example.com", "http://www.example.localhost:3000"})
	for origin, want := range map[string]bool{
		"https://www.example.com":           true,
		"http://www.example.localhost:3000": true,
		"":                                  false,
		"null":                              false,
		"https://www.example.com/":          false,
		"https://WWW.example.com":           false,
		"https://www.example.com:443":       false,
		"http://www.example.com":            false,
		"https://www.example.com.evil.com":  false,
		"https://evil.www.example.com":      false,
		" https://www.example.com":          false,
	} {
		if got := o.Trusted([]byte(origin)); got != want {
			t.Errorf("Trusted(%q) = %v, want %v", origin, got, want)
		}
	}
	if o.Trusted(nil) {
		t.Error("a missing Origin is trusted")
	}
}

func TestCSRFMatches(t *testing.T) {
	for _, tt := range []struct {
		header, token string
		want          bool
	}{
		{"abc", "abc", true}, {"abc", "abd", false}, {"ab", "abc", false}, {"abcd", "abc", false}, {"", "", false}, {"abc", "", false}, {"", "abc", false},
	} {
		if got := CSRFMatches([]byte(tt.header), []byte(tt.token)); got != tt.want {
			t.Errorf("CSRFMatches(%q, %q) = %v", tt.header, tt.token, got)
		}
	}
}

func TestValidToken68(t *testing.T) {
	for tok, want := range map[string]bool{
		"abc":                         true,
		"eyJhbGciOi.eyJzdWIi.c2ln-_~": true,
		"a+b/c==":                     true,
		"=":                           false,
		"":                            false,
		"abc def":                     false,
		"abc\r\nX-Injected: 1":        false,
		"a=b":                         false,
		"abc,def":                     false,
		"\"abc\"":                     false,
		"abc\x00":                     false,
		"jeton\xc3\xa9":               false,
	} {
		if got := ValidToken68([]byte(tok)); got != want {
			t.Errorf("ValidToken68(%q) = %v, want %v", tok, got, want)
		}
	}
	// Every byte, alone, after a token character and before padding,
	// against the grammar written out.
	grammar := regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)
	for c := range 256 {
		for _, tok := range [][]byte{{byte(c)}, {'a', byte(c)}, {byte(c), '='}, {'a', '=', byte(c)}} {
			if got, want := ValidToken68(tok), grammar.Match(tok); got != want {
				t.Errorf("ValidToken68(%q) = %v, the grammar says %v", tok, got, want)
			}
		}
	}
}

func TestMethodsAndFetchSite(t *testing.T) {
	for m, want := range map[string]bool{
		"POST": true, "PUT": true, "PATCH": true, "DELETE": true, "PROPFIND": true, "MKCOL": true, "LOCK": true,
		"TRACE": true, "CONNECT": true, "QUERY": true, "post": true, "get": true, "": true,
		"GET": false, "HEAD": false, "OPTIONS": false,
	} {
		if NeedsCSRF([]byte(m)) != want {
			t.Errorf("NeedsCSRF(%q) != %v", m, want)
		}
	}
	if !CrossSite([]byte("cross-site")) || CrossSite([]byte("same-site")) || CrossSite(nil) {
		t.Error("CrossSite is wrong")
	}
}

// headers records what CORS writes.
type headers struct{ lines []string }

func (h *headers) Set(k, v string)              { h.lines = append(h.lines, k+": "+v) }
func (h *headers) SetBytesV(k string, v []byte) { h.Set(k, string(v)) }
func (h *headers) Add(k, v string)              { h.Set(k, v) }
func (h *headers) String() string               { return strings.Join(h.lines, "\n") }

func TestCORS(t *testing.T) {
	origin := []byte("https://www.example.com")
	tests := []struct {
		name      string
		cors      *CORS
		preflight bool
		trusted   bool
		reqHdrs   string
		want      string
	}{
		{"preflight, defaults, echo requested headers", NewCORS(true, nil, nil, nil, 86400), true, true, "x-example-csrf, content-type",
			"Vary: Origin\nAccess-Control-Allow-Origin: https://www.example.com\nAccess-Control-Allow-Credentials: true\nAccess-Control-Allow-Methods: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\nAccess-Control-Allow-Headers: x-example-csrf, content-type\nAccess-Control-Max-Age: 86400"},
		{"preflight, configured", NewCORS(true, []string{"GET", "POST"}, []string{"x-example-csrf"}, []string{"x-total"}, 0), true, true, "x-other",
			"Vary: Origin\nAccess-Control-Allow-Origin: https://www.example.com\nAccess-Control-Allow-Credentials: true\nAccess-Control-Allow-Methods: GET, POST\nAccess-Control-Allow-Headers: x-example-csrf\nAccess-Control-Expose-Headers: x-total"}, // max_age 0: no Access-Control-Max-Age
		{"preflight, untrusted", NewCORS(true, nil, nil, nil, 86400), true, false, "", "Vary: Origin"},
		{"response, trusted", NewCORS(true, nil, nil, []string{"x-a", "x-b"}, 86400), false, true, "",
			"Vary: Origin\nAccess-Control-Allow-Origin: https://www.example.com\nAccess-Control-Allow-Credentials: true\nAccess-Control-Expose-Headers: x-a, x-b"},
		{"response, untrusted", NewCORS(true, nil, nil, nil, 86400), false, false, "", "Vary: Origin"},
		{"response, CORS off", NewCORS(false, nil, nil, nil, 86400), false, true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h headers
			if tt.preflight {
				tt.cors.Preflight(&h, origin, tt.trusted, []byte(tt.reqHdrs))
			} else {
				tt.cors.Response(&h, origin, tt.trusted)
			}
			if h.String() != tt.want {
				t.Fatalf("headers:\n%s\nwant:\n%s", h.String(), tt.want)
			}
			if strings.Contains(h.String(), "*") {
				t.Fatal("a wildcard was written")
			}
		})
	}
}

// FuzzOriginCSRF: the Origin check is exact set membership and the CSRF check
// is byte equality of non-empty values, for any input.
func FuzzOriginCSRF(f *testing.F) {
	f.Add([]byte("https://www.example.com"), []byte("tok"), []byte("tok"))
	f.Add([]byte("https://www.example.com/"), []byte(""), []byte(""))
	f.Add([]byte("HTTPS://www.example.com"), []byte("a"), []byte("b"))
	list := []string{"https://www.example.com", "http://www.example.localhost:3000"}
	o := NewOrigins(list)
	f.Fuzz(func(t *testing.T, origin, header, token []byte) {
		want := false
		for _, s := range list {
			want = want || string(origin) == s
		}
		if o.Trusted(origin) != want {
			t.Fatalf("Trusted(%q) = %v", origin, !want)
		}
		if got := CSRFMatches(header, token); got != (len(token) > 0 && bytes.Equal(header, token)) {
			t.Fatalf("CSRFMatches(%q, %q) = %v", header, token, got)
		}
		if ValidToken68(token) && (bytes.ContainsAny(token, " \t\r\n,;\"") || len(token) == 0) {
			t.Fatalf("ValidToken68 accepts %q", token)
		}
	})
}

// BenchmarkValidToken68 checks a 1,029-byte JWT, as the proxy does with
// every decrypted access token.
func BenchmarkValidToken68(b *testing.B) {
	tok := []byte(strings.Repeat("eyJhbGciOiJSUzI1NiJ9.", 49))
	for b.Loop() {
		if !ValidToken68(tok) {
			b.Fatal("refused")
		}
	}
}

// TestParseNamePrefix: the three spellings of cookie.name_prefix round-trip,
// anything else is refused, and Host tells which carry __Host-.
func TestParseNamePrefix(t *testing.T) {
	tests := []struct {
		in   string
		want NamePrefix
		host bool
	}{
		{"none", NamePrefixNone, false},
		{"host", NamePrefixHost, true},
		{"host-http", NamePrefixHostHTTP, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseNamePrefix(tt.in)
			if err != nil || got != tt.want || got.String() != tt.in || got.Host() != tt.host {
				t.Errorf("ParseNamePrefix(%q) = %v (host %v), %v", tt.in, got, got.Host(), err)
			}
		})
	}
	for _, bad := range []string{"", "Host", "__Host-", "http", "host_http", "true"} {
		if _, err := ParseNamePrefix(bad); err == nil {
			t.Errorf("ParseNamePrefix(%q) accepted", bad)
		}
	}
}
