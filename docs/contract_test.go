package docs

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/agent"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/proxy"
)

// contractSection7 returns §7 of docs/contract.md, up to §8.
func contractSection7(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("contract.md")
	if err != nil {
		t.Fatal(err)
	}
	_, s, ok := strings.Cut(string(b), "\n## §7 ")
	if !ok {
		t.Fatal("contract.md has no §7")
	}
	s, _, _ = strings.Cut(s, "\n## §8 ")
	return s
}

// agentOnly are the settings the agent needs besides the shared ones.
const agentOnly = "issuer: https://login.example.com\nclient_id: spa-client\nclient_secret: s3cret\n" +
	"redirect_uri: https://www.example.com/\n"

// parseBoth parses yaml as the proxy's file and, with agentOnly, as the
// agent's, and returns the warnings of each.
func parseBoth(t *testing.T, yaml string) (agentWarnings, proxyWarnings []string) {
	t.Helper()
	noEnv := func(string) string { return "" }
	p, err := proxy.ParseConfig([]byte(yaml), noEnv)
	if err != nil {
		t.Fatalf("as the proxy's file: %v\n%s", err, yaml)
	}
	a, err := agent.ParseConfig([]byte(agentOnly+yaml), noEnv)
	if err != nil {
		t.Fatalf("as the agent's file: %v\n%s", err, yaml)
	}
	return a.Warnings, p.Warnings
}

// TestContractSharedSettings: the settings §7 shows as shared load in both
// daemons, as it spells them, with no deprecation warning; and every older
// spelling of its table loads with a warning naming the spelling the table
// says to write instead.
func TestContractSharedSettings(t *testing.T) {
	s := contractSection7(t)
	_, block, ok := strings.Cut(s, "```yaml\n")
	if !ok {
		t.Fatal("contract §7 has no YAML block of the shared settings")
	}
	block, _, _ = strings.Cut(block, "```")
	key := string(crypto.GenerateKey().AppendHex(nil))
	shared := strings.Replace(block, "<64 hex>", key, 1)
	if shared == block {
		t.Fatal("the YAML block of §7 has no <64 hex> key to fill in")
	}
	aw, pw := parseBoth(t, shared)
	if aw != nil || pw != nil {
		t.Errorf("§7's shared settings warn: agent %q, proxy %q", aw, pw)
	}

	// The table of older spellings: | `old` | `new` |, the cells' first
	// code spans.
	row := regexp.MustCompile("(?m)^\\| `([^`]+)`[^|]*\\| `([^`]+)`[^|]*\\|$")
	rows := row.FindAllStringSubmatch(s, -1)
	if len(rows) < 5 {
		t.Fatalf("contract §7 lists %d older spellings, want the table of 5", len(rows))
	}
	base := "encryption_keys: [" + key + "]\ntrusted_web_origins: [https://www.example.com]\n"
	for _, r := range rows {
		old, new := r[1], r[2]
		t.Run(old, func(t *testing.T) {
			// "cookie.host_prefix: true" and "cookie_format" become YAML:
			// the path's sections as flow mappings, a value where the
			// table gives none.
			path, value, hasValue := strings.Cut(old, ": ")
			if !hasValue {
				value = "v1"
				switch path {
				case "cors_enabled":
					value = "false"
				case "cookie_accept":
					value = "[v1]"
				case "cookie_name_prefix":
					value = "app"
				}
			}
			yaml := path + ": " + value
			if section, name, nested := strings.Cut(path, "."); nested {
				yaml = section + ": {" + name + ": " + value + "}"
			}
			want := "write " + new
			check := func(who string, warnings []string) {
				if len(warnings) != 1 || !strings.HasSuffix(warnings[0], want) {
					t.Errorf("%s: %s gives the warnings %q, want one ending %q", who, yaml, warnings, want)
				}
			}
			if strings.Contains(r[0], "(agent)") {
				a, err := agent.ParseConfig([]byte(agentOnly+base+yaml+"\n"), func(string) string { return "" })
				if err != nil {
					t.Fatal(err)
				}
				check("agent", a.Warnings)
				return
			}
			aw, pw := parseBoth(t, base+yaml+"\n")
			check("agent", aw)
			check("proxy", pw)
		})
	}
}
