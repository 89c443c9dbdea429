package settings

import (
	"testing"
)

func TestHostTable(t *testing.T) {
	tab := NewHostTableOf(map[string]int{"api.shop.example": 1, "[::1]": 2, "127.0.0.1": 3})
	for host, want := range map[string]int{
		"api.shop.example": 1, "API.Shop.Example:8443": 1, "api.shop.example.": 1, "api.shop.example.:80": 1,
		"[::1]:8081": 2, "[::1]": 2, "127.0.0.1:9": 3,
		"": 0, "shop.example": 0, "api.shop.example.evil": 0, "[::1": 0, "api.shop.example..": 0, ":80": 0,
		string(make([]byte, 300)): 0,
	} {
		got, ok := tab.Lookup([]byte(host))
		if ok != (want != 0) || got != want {
			t.Errorf("Lookup(%q) = %d, %v; want %d", host, got, ok, want)
		}
	}
	any := NewHostTable(7)
	if v, ok := any.Lookup(nil); !ok || v != 7 {
		t.Errorf("the table of one application: %d, %v", v, ok)
	}
}

func TestHostTableNoAllocs(t *testing.T) {
	hosts := map[string]int{}
	for i := range 50 {
		hosts[string(rune('a'+i%26))+"pp"+string(rune('a'+i/26))+".example"] = i
	}
	tab := NewHostTableOf(hosts)
	host := []byte("APPB.example:8443")
	if allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := tab.Lookup(host); !ok {
			t.Fatal("not found")
		}
	}); allocs != 0 {
		t.Errorf("Lookup allocates %.1f times, want 0", allocs)
	}
}

func TestCheckHost(t *testing.T) {
	for in, want := range map[string]string{"API.Example.com": "api.example.com", "a.example.": "a.example", "[::1]": "[::1]", "10.0.0.1": "10.0.0.1", "under_score.example": "under_score.example"} {
		if got, err := CheckHost("h", in); err != nil || got != want {
			t.Errorf("CheckHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "https://a.example", "a.example/x", "a.example:443", "*.example", "::1", "[::1]:80", "[a;b]", "[10.0.0.1]", "[fe80::1%eth0]", "[]", "a..example", "-a.example", "a b.example", "user@a.example"} {
		if _, err := CheckHost("h", bad); err == nil {
			t.Errorf("CheckHost(%q) accepted", bad)
		}
	}
}

func TestCheckAppName(t *testing.T) {
	for _, ok := range []string{"shop", "a", "admin-2", "abcdefghijklmnopqrstuvwxyz012345"} {
		if err := CheckAppName("n", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Shop", "2shop", "shop-", "sh op", "abcdefghijklmnopqrstuvwxyz0123456", "shöp"} {
		if err := CheckAppName("n", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
