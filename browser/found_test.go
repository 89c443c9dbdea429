package browser

import (
	"testing"
)

func TestScan(t *testing.T) {
	n, err := NewNames("example", NamePrefixNone)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		headers   []string
		ambiguous bool
		at        string // the access-token value, "-" when absent
		chunks    int
	}{
		{"none", []string{"other=1"}, false, "-", 0},
		{"whole", []string{"a=1; example-at=AT; b=2"}, false, "AT", 0},
		{"empty value", []string{"example-at="}, false, "", 0},
		{"chunks in order", []string{"example-at.0=A; example-at.1=B; example-at.2=C"}, false, "ABC", 3},
		{"chunks out of order", []string{"example-at.2=C; example-at.0=A", "example-at.1=B"}, false, "ABC", 3},
		{"twice in one header", []string{"example-at=X; example-at=Y"}, true, "", 0},
		{"twice in two headers", []string{"example-at=X", "example-at=Y"}, true, "", 0},
		{"twice, the same value", []string{"example-at=X; example-at=X"}, true, "", 0},
		{"a chunk twice", []string{"example-at.0=A; example-at.1=B; example-at.0=C"}, true, "", 0},
		{"whole and chunks", []string{"example-at=X; example-at.0=A; example-at.1=B"}, true, "", 0},
		{"a gap in the chunks", []string{"example-at.0=A; example-at.2=C"}, true, "", 0},
		{"chunks without the first", []string{"example-at.1=B"}, true, "", 0},
		{"csrf twice", []string{"example-at=X; example-csrf=1; example-csrf=2"}, true, "", 0},
		{"login twice", []string{"example-at=X; example-login=1; example-login=2"}, true, "", 0},
		{"spaces around the name", []string{" example-at =X;example-at= Y"}, true, "", 0},
		{"not ours: other suffix", []string{"example-atx=1; example-at.8=1; example-at.10=1; example-at.=1; example-at=X"}, false, "X", 0},
		{"not ours: host prefix", []string{"__Host-example-at=H; example-at=X"}, false, "X", 0},
		{"not ours: case", []string{"Example-at=H; example-at=X"}, false, "X", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := RawCookies{}
			for _, h := range tc.headers {
				rc = append(rc, []byte(h))
			}
			var f Found
			n.Scan(&f, &rc)
			if f.Ambiguous() != tc.ambiguous {
				t.Fatalf("Ambiguous() = %v, want %v", f.Ambiguous(), tc.ambiguous)
			}
			if tc.ambiguous {
				return
			}
			v, chunks, ok := f.AppendValue([]byte("x"), &n.AccessToken)
			if tc.at == "-" {
				if ok || f.Present(&n.AccessToken) {
					t.Fatalf("found an access token %q", v)
				}
				return
			}
			if !ok || string(v) != "x"+tc.at || chunks != tc.chunks || f.Chunks(&n.AccessToken) != tc.chunks || !f.Present(&n.AccessToken) {
				t.Errorf("AppendValue = %q, %d, %v; Chunks %d; want %q, %d", v, chunks, ok, f.Chunks(&n.AccessToken), tc.at, tc.chunks)
			}
		})
	}
}

// TestScanHostPrefix: with cookie.name_prefix host only the __Host- names are the
// token handler's; a plain name is another site's cookie and cannot make a
// request ambiguous.
func TestScanHostPrefix(t *testing.T) {
	n, _ := NewNames("example", NamePrefixHost)
	rc := RawCookies{[]byte("example-at=X; __Host-example-at=H; example-at=Y")}
	var f Found
	n.Scan(&f, &rc)
	v, _, ok := f.AppendValue(nil, &n.AccessToken)
	if f.Ambiguous() || !ok || string(v) != "H" {
		t.Errorf("host prefix: ambiguous %v, value %q", f.Ambiguous(), v)
	}
}

// TestScanIndexes: the slots follow the names, which package session
// numbers its purposes by.
func TestScanIndexes(t *testing.T) {
	n, _ := NewNames("p", NamePrefixNone)
	for i, c := range []*Cookie{&n.Login, &n.AccessToken, &n.RefreshToken, &n.IDToken, &n.CSRF} {
		if c.Index() != i {
			t.Errorf("%s: Index() = %d, want %d", c.Name, c.Index(), i)
		}
		rc := RawCookies{[]byte(c.Name + "=v")}
		var f Found
		n.Scan(&f, &rc)
		if v, _, ok := f.AppendValue(nil, c); !ok || string(v) != "v" {
			t.Errorf("%s not found by its slot", c.Name)
		}
	}
}
