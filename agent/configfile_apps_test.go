package agent_test

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/agent"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/internal/settings/settingstest"
)

// TestParseConfigApps: two applications on two providers, sharing a host
// under two base paths; the client secret and the timeouts come from the
// top level, each application's own settings from its entry.
func TestParseConfigApps(t *testing.T) {
	shopKey, adminKey := string(crypto.GenerateKey().AppendHex(nil)), string(crypto.GenerateKey().AppendHex(nil))
	text := `
listen: 127.0.0.1:8080
timeouts: {as: 3s}
client_secret: ` + configSecret + `
scope: openid profile email
apps:
  - name: shop
    hosts: [api.shop.example]
    issuer: https://login.example.com
    client_id: shop-spa
    redirect_uri: https://www.shop.example/
    trusted_web_origins: ["https://www.shop.example"]
    cookie: {prefix: shop}
    encryption_keys: ["` + shopKey + `"]
  - name: admin
    hosts: [api.shop.example]
    base_path: /admin/oauth-agent
    issuer: https://idp.admin.example
    client_id: admin-spa
    client_secret: other-secret
    redirect_uri: https://admin.example/
    trusted_web_origins: ["https://admin.example"]
    cookie: {prefix: admin, base_path: /admin/}
    encryption_keys: ["` + adminKey + `"]
`
	cfg, err := agent.ParseConfig([]byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Apps) != 2 || cfg.Listen != "127.0.0.1:8080" || cfg.Timeouts.AS.Seconds() != 3 || cfg.ClientID != "" {
		t.Fatalf("top level: %+v", cfg)
	}
	shop, admin := cfg.Apps[0], cfg.Apps[1]
	if shop.Name != "shop" || shop.BasePath != "/oauth-agent" || admin.BasePath != "/admin/oauth-agent" || admin.Hosts[0] != "api.shop.example" {
		t.Errorf("names and base paths: %q %q, %q %q", shop.Name, shop.BasePath, admin.Name, admin.BasePath)
	}
	if shop.ClientSecret != configSecret || admin.ClientSecret != "other-secret" || shop.Scope != "openid profile email" || admin.Scope != shop.Scope {
		t.Error("the top level's client_secret and scope are not the defaults of the apps")
	}
	if shop.Issuer != "https://login.example.com" || admin.Issuer != "https://idp.admin.example" || admin.Timeouts.AS != cfg.Timeouts.AS {
		t.Error("issuers or timeouts")
	}
	settingstest.SealsWith(t, shop.Keys, shopKey)
	settingstest.SealsWith(t, admin.Keys, adminKey)

	// The same host and base path twice is refused; a revocation section
	// in an application too.
	_, err = agent.ParseConfig([]byte(text+"    base_path: /oauth-agent\n"), nil)
	settingstest.Refused(t, err, `apps[1].base_path: set twice`, configSecret)
	dup := text[:len(text)-len("    encryption_keys: [\""+adminKey+"\"]\n")] + "    encryption_keys: [\"" + adminKey + "\"]\n"
	_, err = agent.ParseConfig([]byte(dup+"    revocation: {store: off}\n"), nil)
	settingstest.Refused(t, err, `apps[1].revocation: is process-wide`, configSecret)
}

func TestParseConfigAppsSameRoute(t *testing.T) {
	k1, k2 := string(crypto.GenerateKey().AppendHex(nil)), string(crypto.GenerateKey().AppendHex(nil))
	app := func(name, key string) string {
		return "  - {name: " + name + ", hosts: [api.example.com], trusted_web_origins: [\"https://" + name + ".example.com\"], cookie: {prefix: " + name + "}, encryption_keys: [\"" + key + "\"]}\n"
	}
	_, err := agent.ParseConfig([]byte(without("encryption_keys")+"apps:\n"+app("shop", k1)+app("admin", k2)), nil)
	settingstest.Refused(t, err, `apps[1].hosts[0]: "api.example.com": apps[0] (shop) answers the host and base_path already`, configSecret, k1, k2)
}

// TestParseConfigAppsSecrets: a client secret given once (top level or
// TH_CLIENT_SECRET) may serve several applications of one provider, never
// two providers; an application's own secret replaces the environment's.
func TestParseConfigAppsSecrets(t *testing.T) {
	k1, k2 := string(crypto.GenerateKey().AppendHex(nil)), string(crypto.GenerateKey().AppendHex(nil))
	app := func(name, issuer, key, extra string) string {
		return "  - {name: " + name + ", hosts: [" + name + ".example.com], issuer: \"" + issuer + "\", client_id: " + name +
			", redirect_uri: \"https://" + name + ".example.com/\", trusted_web_origins: [\"https://" + name + ".example.com\"], cookie: {prefix: " + name + "}, encryption_keys: [\"" + key + "\"]" + extra + "}\n"
	}
	env := settingstest.Env(map[string]string{"TH_CLIENT_SECRET": configSecret})
	oneIssuer := "apps:\n" + app("shop", "https://login.example.com", k1, "") + app("admin", "https://login.example.com", k2, "")
	twoIssuers := "apps:\n" + app("shop", "https://login.example.com", k1, "") + app("admin", "https://idp.other.example", k2, "")
	if _, err := agent.ParseConfig([]byte("client_secret: "+configSecret+"\n"+oneIssuer), nil); err != nil {
		t.Errorf("one provider, one secret: %v", err)
	}
	if _, err := agent.ParseConfig([]byte(oneIssuer), env); err != nil {
		t.Errorf("one provider, TH_CLIENT_SECRET: %v", err)
	}
	_, err := agent.ParseConfig([]byte("client_secret: "+configSecret+"\n"+twoIssuers), nil)
	settingstest.Refused(t, err, `apps[1].client_secret: is the top level's client secret, which apps[0] (shop) sends to another provider (https://login.example.com)`, configSecret)
	_, err = agent.ParseConfig([]byte(twoIssuers), env)
	settingstest.Refused(t, err, `apps[1].client_secret: is TH_CLIENT_SECRET, which apps[0] (shop)`, configSecret)
	// admin's own secret replaces the environment's: shop alone takes it.
	own := "apps:\n" + app("shop", "https://login.example.com", k1, "") + app("admin", "https://idp.other.example", k2, ", client_secret: other-secret")
	cfg, err := agent.ParseConfig([]byte(own), env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Apps[0].ClientSecret != configSecret || cfg.Apps[1].ClientSecret != "other-secret" {
		t.Error("an application's own secret does not replace TH_CLIENT_SECRET")
	}
}

// TestParseConfigAppsNested: on one host, base paths that nest are
// refused: one application's endpoints would hide the other's.
func TestParseConfigAppsNested(t *testing.T) {
	k1, k2 := string(crypto.GenerateKey().AppendHex(nil)), string(crypto.GenerateKey().AppendHex(nil))
	app := func(name, base, key string) string {
		return "  - {name: " + name + ", hosts: [api.example.com], base_path: " + base + ", trusted_web_origins: [\"https://" + name + ".example.com\"], cookie: {prefix: " + name + "}, encryption_keys: [\"" + key + "\"]}\n"
	}
	_, err := agent.ParseConfig([]byte(without("encryption_keys")+"apps:\n"+app("shop", "/auth", k1)+app("admin", "/auth/login", k2)), nil)
	settingstest.Refused(t, err, `apps[1].hosts[0]: "api.example.com": base_path "/auth/login" and apps[0] (shop)'s "/auth" on the same host nest`, configSecret)
	if _, err := agent.ParseConfig([]byte(without("encryption_keys")+"apps:\n"+app("shop", "/auth", k1)+app("admin", "/authx", k2)), nil); err != nil {
		t.Errorf("/auth and /authx: %v", err)
	}
}

// TestParseConfigAppsAliases: an entry's renamed setting never reaches
// another entry through a YAML alias.
func TestParseConfigAppsAliases(t *testing.T) {
	k1, k2 := string(crypto.GenerateKey().AppendHex(nil)), string(crypto.GenerateKey().AppendHex(nil))
	text := without("encryption_keys") + "apps:\n" +
		"  - {name: shop, hosts: [a.example.com], cors: &c {}, cors_enabled: false, cookie: {prefix: shop}, encryption_keys: [\"" + k1 + "\"]}\n" +
		"  - {name: admin, hosts: [b.example.com], trusted_web_origins: [\"https://admin.example.com\"], cors: *c, cookie: {prefix: admin}, encryption_keys: [\"" + k2 + "\"]}\n"
	cfg, err := agent.ParseConfig([]byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Apps[0].CORSEnabled || !cfg.Apps[1].CORSEnabled {
		t.Errorf("cors: shop %v (want false), admin %v (want true)", cfg.Apps[0].CORSEnabled, cfg.Apps[1].CORSEnabled)
	}
}

// TestParseConfigAppsProvider: an entry on an issuer of its own takes none
// of the top level's endpoints (they are the top level's issuer's: its
// token endpoint would get the other client's secret and codes); an entry
// on the top level's issuer keeps them. An entry's keys file replaces the
// top level's inline keys.
func TestParseConfigAppsProvider(t *testing.T) {
	adminKey := string(crypto.GenerateKey().AppendHex(nil))
	keyFile := bintest.WriteFiles(t, map[string]string{"admin.keys": adminKey + "\n"})("admin.keys")
	text := `
issuer: https://login.example.com
token_endpoint: https://login.example.com/token
revocation_endpoint: https://login.example.com/revoke
jwks_uri: https://login.example.com/jwks
client_id: spa
encryption_keys: ["` + string(crypto.GenerateKey().AppendHex(nil)) + `"]
apps:
  - {name: shop, hosts: [shop.example.com], redirect_uri: "https://shop.example.com/", trusted_web_origins: ["https://shop.example.com"], cookie: {prefix: shop}, client_secret: s1}
  - {name: admin, hosts: [admin.example.com], issuer: "https://idp.corp.example", redirect_uri: "https://admin.example.com/", trusted_web_origins: ["https://admin.example.com"], cookie: {prefix: admin}, client_secret: s2, encryption_keys_file: "` + keyFile + `"}
`
	cfg, err := agent.ParseConfig([]byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	shop, admin := cfg.Apps[0], cfg.Apps[1]
	if shop.Endpoints.Token != "https://login.example.com/token" || shop.Endpoints.JWKSURI == "" {
		t.Errorf("shop lost the top level's endpoints: %+v", shop.Endpoints)
	}
	if admin.Endpoints != (agent.Endpoints{}) {
		t.Errorf("admin, on its own issuer, has the top level's endpoints: %+v", admin.Endpoints)
	}
	settingstest.SealsWith(t, admin.Keys, adminKey)
}
