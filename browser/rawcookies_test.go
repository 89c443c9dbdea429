package browser

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func raw(headers ...string) *RawCookies {
	rc := RawCookies{}
	for _, h := range headers {
		rc = append(rc, []byte(h))
	}
	return &rc
}

func TestRawCookies(t *testing.T) {
	rc := raw("a=1; example-at=abc; b=\"q\"", "example-at=second;  c = 3 ;novalue; =empty; d=x=y")
	for name, want := range map[string]string{
		"a": "1", "example-at": "abc", "b": `"q"`, "c": "3", "": "novalue", "d": "x=y", "missing": "<nil>",
	} {
		got := rc.Cookie(name)
		if got == nil {
			got = []byte("<nil>")
		}
		if string(got) != want {
			t.Errorf("Cookie(%q) = %q, want %q", name, got, want)
		}
	}
	if v := raw("example-at=").Cookie("example-at"); v == nil || len(v) != 0 {
		t.Errorf("an empty value must be present and empty, got %v", v)
	}
	got := rc.AppendWithout([]byte("x"), []string{"example-at", "c"})
	if want := `xa=1; b="q"; novalue; =empty; d=x=y`; string(got) != want {
		t.Errorf("AppendWithout = %q, want %q", got, want)
	}
	if got := raw("example-at=1", "example-csrf=2").AppendWithout(nil, []string{"example-at", "example-csrf"}); len(got) != 0 {
		t.Errorf("AppendWithout of only dropped cookies = %q", got)
	}
	if got := raw(" ; ;;").AppendWithout(nil, nil); len(got) != 0 {
		t.Errorf("empty pairs kept: %q", got)
	}
}

// FuzzRawCookies: lookups agree with a plain reference parse, and dropping
// names removes exactly those pairs, keeping the others in order.
func FuzzRawCookies(f *testing.F) {
	f.Add("a=1; example-at=abc; b=\"q\"", "example-at=x;;c", "example-at")
	f.Add("=; ;;example-at; example-at=\"\"; x=y=z", "", "")
	f.Fuzz(func(t *testing.T, h1, h2, name string) {
		rc := raw(h1, h2)
		var pairs [][2]string // reference parse
		for _, h := range []string{h1, h2} {
			for _, p := range strings.Split(h, ";") {
				p = strings.Trim(p, " \t")
				if p != "" {
					pairs = append(pairs, cookiePair(p))
				}
			}
		}
		want := []byte(nil)
		for _, p := range pairs {
			if p[0] == name {
				want = []byte(p[1])
				break
			}
		}
		if got := rc.Cookie(name); (got == nil) != (want == nil) || !bytes.Equal(got, want) {
			t.Fatalf("Cookie(%q) = %q, want %q", name, got, want)
		}
		kept := rc.AppendWithout(nil, []string{name})
		var again [][2]string
		for _, p := range pairs {
			if p[0] != name {
				again = append(again, p)
			}
		}
		var parsed [][2]string
		for _, p := range strings.Split(string(kept), "; ") {
			if p != "" {
				parsed = append(parsed, cookiePair(p))
			}
		}
		if !slices.Equal(parsed, again) {
			t.Fatalf("AppendWithout(%q) = %q, want the pairs %q", name, kept, again)
		}
	})
}

// BenchmarkRawCookie looks up the access-token cookie, a 1,411-byte value
// between two others, as the proxy does on every request.
func BenchmarkRawCookie(b *testing.B) {
	rc := raw("theme=dark; example-at=" + strings.Repeat("A", 1411) + "; example-csrf=" + strings.Repeat("c", 100))
	for b.Loop() {
		if len(rc.Cookie("example-at")) != 1411 {
			b.Fatal("wrong value")
		}
	}
}

// cookiePair is the reference parse of one cookie-pair: name and value
// around the first "=", blanks trimmed; without "=", the value alone.
func cookiePair(p string) [2]string {
	k, v, ok := strings.Cut(p, "=")
	if !ok {
		k, v = "", p
	}
	return [2]string{strings.Trim(k, " \t"), strings.Trim(v, " \t")}
}
