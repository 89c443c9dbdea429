//go:build !race

package browser

import "testing"

func TestChecksNoAllocs(t *testing.T) {
	n, _ := NewNames("example", NamePrefixNone)
	o := NewOrigins([]string{"https://www.example.com"})
	c := NewCORS(true, nil, nil, []string{"x-a"}, 60)
	j := byteJar{"example-at.0": []byte("abc"), "example-at.1": []byte("def")}
	origin := []byte("https://www.example.com")
	dst := make([]byte, 0, 64)
	var h nopHeaders
	allocs := testing.AllocsPerRun(100, func() {
		if !o.Trusted(origin) || !CSRFMatches(origin, origin) || !ValidToken68(origin[8:]) {
			t.Fatal("checks failed")
		}
		if _, ok := n.AccessToken.AppendValue(dst[:0], j); !ok {
			t.Fatal("no value")
		}
		c.Preflight(h, origin, true, origin)
		c.Response(h, origin, true)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per run, want 0", allocs)
	}
}

type nopHeaders struct{}

func (nopHeaders) Set(string, string)       {}
func (nopHeaders) SetBytesV(string, []byte) {}
func (nopHeaders) Add(string, string)       {}

type byteJar map[string][]byte

func (j byteJar) Cookie(name string) []byte { return j[name] }

func TestScanNoAllocs(t *testing.T) {
	n, _ := NewNames("example", NamePrefixNone)
	rc := RawCookies{[]byte("a=1; example-at.0=abc; example-at.1=def; example-csrf=xyz; b=2")}
	var f Found
	dst := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		n.Scan(&f, &rc)
		if v, chunks, ok := f.AppendValue(dst[:0], &n.AccessToken); !ok || chunks != 2 || len(v) != 6 || f.Ambiguous() {
			t.Fatal("scan failed")
		}
	})
	if allocs != 0 {
		t.Errorf("Scan and AppendValue allocate %v times", allocs)
	}
}
