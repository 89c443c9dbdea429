package settings

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

type revocationFile struct {
	Revocation Revocation `yaml:"revocation"`
}

func parseRevocation(t *testing.T, yml string) (RevocationSettings, error) {
	t.Helper()
	var f revocationFile
	if err := decode([]byte(yml), &f); err != nil {
		return RevocationSettings{}, err // a value that decodes itself, as a duration, is checked here
	}
	return f.Revocation.Parse("revocation")
}

func TestRevocationParse(t *testing.T) {
	password := bintest.WriteFiles(t, map[string]string{"redis-password": "s3cret-pw\n"})("redis-password")
	for _, tc := range []struct {
		name, yml string
		want      RevocationSettings
	}{
		{"left out", "revocation:\n", RevocationSettings{Store: StoreEmbedded}},
		{"embedded with a state_dir and a feed",
			"revocation: {store: embedded, state_dir: /var/lib/th/, feed: 'http://127.0.0.1:9100/', fail_closed_after: 30s}",
			RevocationSettings{Store: StoreEmbedded, StateDir: "/var/lib/th", Feed: "http://127.0.0.1:9100", FailClosedAfter: 30 * time.Second}},
		{"https feed under a path", "revocation: {feed: 'https://agent.internal/ops'}",
			RevocationSettings{Store: StoreEmbedded, Feed: "https://agent.internal/ops"}},
		{"fail open, written", "revocation: {fail_closed_after: 0s}", RevocationSettings{Store: StoreEmbedded}},
		{"off", "revocation: {store: 'off'}", RevocationSettings{Store: StoreOff}},
		{"redis, defaults", "revocation: {store: redis, redis: {address: 'localhost:6379'}}",
			RevocationSettings{Store: StoreRedis, Redis: RedisSettings{Address: "localhost:6379", KeyPrefix: DefaultRedisKeyPrefix}}},
		{"redis, everything",
			"revocation: {store: redis, fail_closed_after: 1m, redis: {address: '[::1]:6380', username: th, password_file: " + password + ", tls: true, key_prefix: 'app1:'}}",
			RevocationSettings{Store: StoreRedis, FailClosedAfter: time.Minute, Redis: RedisSettings{Address: "[::1]:6380", Username: "th", Password: "s3cret-pw", TLS: true, KeyPrefix: "app1:"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRevocation(t, tc.yml)
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRevocationParseErrors(t *testing.T) {
	file := bintest.WriteFiles(t, map[string]string{"open": "s3cret-pw\n", "empty": "\n"})
	open, empty := file("open"), file("empty")
	if err := os.Chmod(open, 0o644); err != nil { // WriteFiles writes mode 0600
		t.Fatal(err)
	}
	redis := func(s string) string { return "revocation: {store: redis, redis: {" + s + "}}" }
	for _, tc := range []struct {
		name, yml, want string
	}{
		{"unknown store", "revocation: {store: memcached}", `revocation.store: must be embedded, redis or off, got "memcached"`},
		{"bad duration", "revocation: {fail_closed_after: soon}", `revocation.fail_closed_after: invalid duration "soon"`},
		{"negative duration", "revocation: {fail_closed_after: -1s}", `revocation.fail_closed_after: must be 0 (fail open) or at least 10s, got "-1s": the list is confirmed current only every few seconds`},
		{"too short", "revocation: {fail_closed_after: 9s}", `revocation.fail_closed_after: must be 0 (fail open) or at least 10s`},
		{"fail closed without a store", "revocation: {store: 'off', fail_closed_after: 15s}", "revocation.fail_closed_after: needs a store"},
		{"relative state_dir", "revocation: {state_dir: var/th}", `revocation.state_dir: "var/th" must be an absolute path`},
		{"control character in state_dir", "revocation: {state_dir: \"/var/\\tth\"}", "revocation.state_dir: must not contain control characters"},
		{"state_dir with redis", "revocation: {store: redis, state_dir: /var/th, redis: {address: 'h:1'}}", "revocation.state_dir: applies only to store: embedded (store is redis)"},
		{"feed with off", "revocation: {store: 'off', feed: 'http://127.0.0.1:9100'}", "revocation.feed: applies only to store: embedded (store is off)"},
		{"redis section with embedded", "revocation: {redis: {address: 'h:1'}}", "revocation.redis: applies only to store: redis (store is embedded)"},
		{"feed without scheme", "revocation: {feed: '127.0.0.1:9100'}", "revocation.feed: "},
		{"feed ftp", "revocation: {feed: 'ftp://127.0.0.1:9100'}", "must start with http:// or https://"},
		{"feed no host", "revocation: {feed: 'http:///revocations'}", "has no host"},
		{"feed query", "revocation: {feed: 'http://127.0.0.1:9100/?a=1'}", "must not have a query"},
		{"feed fragment", "revocation: {feed: 'http://127.0.0.1:9100/#x'}", "must not have a fragment"},
		{"feed port 0", "revocation: {feed: 'http://127.0.0.1:0'}", "has an invalid port"},
		{"feed port too big", "revocation: {feed: 'http://127.0.0.1:70000'}", "revocation.feed: "},
		{"feed user information", "revocation: {feed: 'http://u:hunter2@127.0.0.1:9100'}", `revocation.feed: must not contain "@"`},
		{"feed space", "revocation: {feed: 'http://127.0.0.1:9100/a b'}", "must not contain whitespace"},
		// The feed is not authenticated: plain http only on this machine.
		{"feed over plain http to another machine", "revocation: {feed: 'http://10.0.0.7:9100'}", `must use https, or store: redis for many machines (plain http only to localhost, *.localhost or a loopback address)`},
		{"feed over plain http to a name", "revocation: {feed: 'http://agent.internal:9100'}", `must use https, or store: redis for many machines (plain http only to localhost, *.localhost or a loopback address)`},
		{"redis without address", "revocation: {store: redis}", "revocation.redis.address: is required with store: redis"},
		{"redis address without port", redis("address: localhost"), `revocation.redis.address: "localhost" must be host:port`},
		{"redis address without host", redis("address: ':6379'"), "must be host:port"},
		{"redis port 0", redis("address: 'h:0'"), "must have a port from 1 to 65535"},
		{"redis port not a number", redis("address: 'h:redis'"), "must have a port from 1 to 65535"},
		{"redis username with space", redis("address: 'h:1', username: 'a b'"), "revocation.redis.username: must not contain whitespace"},
		{"redis password file open to others", redis("address: 'h:1', password_file: " + open), "revocation.redis.password_file: " + open + " is accessible by group or others (mode 0644): run chmod 600"},
		{"redis password file missing", redis("address: 'h:1', password_file: " + file("none")), "revocation.redis.password_file: open "},
		{"redis password file empty", redis("address: 'h:1', password_file: " + empty), "holds no password: the file is empty"},
		{"redis password file not named", redis("address: 'h:1', password_file: ''"), "revocation.redis.password_file: must be a file path"},
		{"redis key_prefix empty", redis("address: 'h:1', key_prefix: ''"), "revocation.redis.key_prefix: must be non-empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseRevocation(t, tc.yml)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			for _, secret := range []string{"s3cret-pw", "hunter2"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q quotes a secret", err)
				}
			}
		})
	}
}
