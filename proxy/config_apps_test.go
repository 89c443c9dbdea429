package proxy

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/settings/settingstest"
)

// TestParseConfigApps: a file with apps is one Config per application,
// each its top level with its own settings merged over it, and the
// process-wide settings once, at the top.
func TestParseConfigApps(t *testing.T) {
	shopKey, adminKey := newConfigTestKey(), newConfigTestKey()
	text := `
listen: 127.0.0.1:8081
workers: 2
cookie: {name_prefix: host}
trusted_web_origins: ["https://www.shop.example"]
routes: [{path_prefix: /api/, upstream: "http://127.0.0.1:9000"}]
apps:
  - name: shop
    hosts: [API.Shop.Example, "www.shop.example.", "[::1]"]
    cookie: {prefix: shop}
    encryption_keys: ["` + shopKey + `"]
  - name: admin
    hosts: [api.admin.example]
    cookie: {prefix: admin, name_prefix: none}
    encryption_keys: ["` + adminKey + `"]
    trusted_web_origins: ["https://admin.example"]
    routes: [{path_prefix: /admin-api/, upstream: "http://127.0.0.1:9001"}]
`
	cfg, err := ParseConfig([]byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Apps) != 2 || cfg.Workers != 2 || cfg.Listen != "127.0.0.1:8081" || cfg.Keys != nil || cfg.Name != "" {
		t.Fatalf("top level: %d apps, workers %d, listen %q, keys %v, name %q", len(cfg.Apps), cfg.Workers, cfg.Listen, cfg.Keys, cfg.Name)
	}
	shop, admin := cfg.Apps[0], cfg.Apps[1]
	if got := cfg.Applications(); len(got) != 2 || got[0] != shop {
		t.Fatal("Applications is not Apps")
	}
	if shop.Name != "shop" || len(shop.Hosts) != 3 || shop.Hosts[0] != "api.shop.example" || shop.Hosts[1] != "www.shop.example" || shop.Hosts[2] != "[::1]" {
		t.Errorf("shop: name %q hosts %q", shop.Name, shop.Hosts)
	}
	settingstest.SealsWith(t, shop.Keys, shopKey)
	settingstest.SealsWith(t, admin.Keys, adminKey)
	if shop.CookieNamePrefix != "shop" || shop.NamePrefix.String() != "host" || admin.CookieNamePrefix != "admin" || admin.NamePrefix.String() != "none" {
		t.Errorf("cookie sections not merged: shop %q/%s, admin %q/%s", shop.CookieNamePrefix, shop.NamePrefix, admin.CookieNamePrefix, admin.NamePrefix)
	}
	if shop.TrustedWebOrigins[0] != "https://www.shop.example" || admin.TrustedWebOrigins[0] != "https://admin.example" {
		t.Errorf("origins: shop %q admin %q", shop.TrustedWebOrigins, admin.TrustedWebOrigins)
	}
	if shop.Routes[0].PathPrefix != "/api/" || admin.Routes[0].PathPrefix != "/admin-api/" || len(admin.Routes) != 1 {
		t.Errorf("routes: shop %+v admin %+v", shop.Routes, admin.Routes)
	}
	if shop.Workers != 2 || admin.Listen != "127.0.0.1:8081" {
		t.Errorf("process-wide settings not copied into the apps")
	}
	if one, err := ParseConfig([]byte(configBase), nil); err != nil || len(one.Applications()) != 1 || one.Applications()[0] != one || one.Hosts != nil {
		t.Errorf("a file without apps: %v", err)
	}
}

func TestParseConfigAppsRefused(t *testing.T) {
	k1, k2 := newConfigTestKey(), newConfigTestKey()
	app := func(name, host, prefix, key string) string {
		return "  - {name: " + name + ", hosts: [" + host + "], trusted_web_origins: [\"https://" + name + ".example.com\"], cookie: {prefix: " + prefix + "}, encryption_keys: [\"" + key + "\"]}\n"
	}
	inheriting := func(name, host, prefix, key string) string {
		return "  - {name: " + name + ", hosts: [" + host + "], cookie: {prefix: " + prefix + "}, encryption_keys: [\"" + key + "\"]}\n"
	}
	top := "trusted_web_origins: [\"https://www.example.com\"]\napps:\n"
	for _, tc := range []struct{ text, want string }{
		{top + inheriting("shop", "a.example", "shop", k1) + inheriting("admin", "b.example", "admin", k2), `apps[1].trusted_web_origins: "https://www.example.com" is also trusted by apps[0] (shop)`},
		{top + app("shop", "a.example", "shop", k1) + inheriting("admin", "b.example", "admin", k2) + app("partner", "c.example", "partner", newConfigTestKey()), ``},
		{top + app("shop", "a.example", "shop", k1) + app("admin", "b.example", "admin", k1), `apps[1].encryption_keys: share a key with apps[0] (shop)`},
		{top + app("shop", "a.example", "shop", k1) + app("admin", "b.example", "shop", k2), `apps[1].cookie.prefix: "shop" is also the cookie prefix of apps[0] (shop)`},
		{top + app("shop", "a.example", "shop", k1) + app("admin", "A.example", "admin", k2), `apps[1].hosts[0]: "a.example": apps[0] (shop) answers the host already`},
		{top + app("shop", "a.example", "shop", k1) + app("shop", "b.example", "admin", k2), `apps[1].name: "shop" is also apps[0].name`},
		{top + app("Shop", "a.example", "shop", k1), `apps[0].name: "Shop" must be`},
		{top + app("shop", "a.example:443", "shop", k1), `apps[0].hosts[0]: "a.example:443" must be a host name without a port`},
		{top + app("shop", `"*.example"`, "shop", k1), `wildcards are not supported`},
		{top + "  - {name: shop, cookie: {prefix: shop}, encryption_keys: [\"" + k1 + "\"]}\n", `apps[0].hosts: is required`},
		{top + "  - {name: shop, hosts: [a.example], listen: \"127.0.0.1:1\"}\n", `apps[0].listen: is process-wide (line 3): set it at the top level`},
		{top + "  - {name: shop, hosts: [a.example], workers: 2}\n", `apps[0].workers: is process-wide`},
		{top + "  - {name: shop, hosts: [a.example], cookie: {prefix: shop}, encryption_keys: [\"" + k1 + "\"], routes: [{path_prefix: api}]}\n", `apps[0].routes[0].path_prefix`},
		{top + "  - {name: shop, hosts: [a.example], cookie: {prefx: shop}}\n", `unknown setting "apps[0].cookie.prefx"`},
		{"unknown_top: 1\n" + top + app("shop", "a.example", "shop", k1), `unknown setting "unknown_top"`},
		{"cors: {max_age: -1}\n" + top + app("shop", "a.example", "shop", k1), `proxy: config: cors.max_age: must not be negative, got -1 (the top level's, read for apps[0])`},
		{top + "  - {name: shop, hosts: [a.example], cookie: {prefix: shop}, encryption_keys: [\"" + k1 + "\"], cors: {max_age: -1}}\n", `proxy: config: apps[0].cors.max_age: must not be negative`},
		{top, `apps: must be a list of applications`},
		{"apps: []\n", `apps: must be a list of applications`},
	} {
		_, err := ParseConfig([]byte(tc.text), nil)
		if tc.want == "" {
			if err != nil {
				t.Errorf("one application inheriting the top level's origins: %v", err)
			}
			continue
		}
		settingstest.Refused(t, err, tc.want, k1, k2)
	}
	// Not with v1 or DARE, which carry no binding: renamed, a cookie of one
	// application would open at the other.
	for _, cookie := range []string{"format: v1", "accept: [dare]"} {
		text := "allow_shared_keys: true\ncookie: {" + cookie + "}\n" + top + app("shop", "a.example", "shop", k1) + app("admin", "b.example", "admin", k1)
		_, err := ParseConfig([]byte(text), nil)
		settingstest.Refused(t, err, `apps[1].encryption_keys: share a key with apps[0] (shop), and one of them writes or reads cookie format v1 or dare`, k1)
	}
	// allow_shared_keys lets two applications share a key.
	if _, err := ParseConfig([]byte("allow_shared_keys: true\n"+top+app("shop", "a.example", "shop", k1)+app("admin", "b.example", "admin", k1)), nil); err != nil {
		t.Errorf("allow_shared_keys: %v", err)
	}
}
