package agent_test

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/agent"
	"github.com/tokenhandler/tokenhandler/crypto"
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
		return "  - {name: " + name + ", hosts: [api.example.com], cookie: {prefix: " + name + "}, encryption_keys: [\"" + key + "\"]}\n"
	}
	_, err := agent.ParseConfig([]byte(without("encryption_keys")+"apps:\n"+app("shop", k1)+app("admin", k2)), nil)
	settingstest.Refused(t, err, `apps[1].hosts[0]: "api.example.com": apps[0] (shop) answers the host and base_path already`, configSecret, k1, k2)
}
