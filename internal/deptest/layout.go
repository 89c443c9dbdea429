package deptest

// Reasons several rows give.
const (
	daemons = "the agent and the proxy never import each other (contract §8): each is deployed and scaled alone"
	shared  = "both daemons build on it, so it links neither"
	noOAuth = "the proxy links no OAuth or OIDC library (contract §8): it opens cookies and forwards, and never talks to the Authorization Server"
)

// fasthttp is the HTTP server both daemons run on, with what it links.
var fasthttp = []string{"github.com/valyala/", "github.com/andybalholm/brotli", "github.com/klauspost/compress", "github.com/molecule-man/go-brrr"}

// zerolog is the logger, with what it links.
var zerolog = []string{"github.com/rs/zerolog", "github.com/mattn/go-colorable", "github.com/mattn/go-isatty"}

// sio is the DARE library crypto builds on, with what it links
// (golang.org/x/crypto for ChaCha20-Poly1305, x/sys).
var sio = []string{"github.com/minio/sio", "golang.org/x/crypto", "golang.org/x/sys"}

// goRedis is the Redis client of revocation.store redis, with its xxhash
// (cluster slots) and uber's atomic.
var goRedis = []string{"github.com/redis/go-redis/v9", "github.com/cespare/xxhash/v2", "go.uber.org/atomic"}

// Layout is the module's dependency rules (contract §8, STYLE "Shape"), a
// row a package, keyed by its import path below Module: what it may link,
// what it must never link and why. Each package's TestDependencies checks
// its own row (Check); TestLayout keeps a row for every package the
// binaries link. Rows' comments say why the allowed list is what it is.
var Layout = map[string]DepChecker{
	// The codec: the standard library and sio only.
	"/crypto": {
		Allowed: cat([]string{Module + "/crypto"}, sio),
		BadDeps: map[string]string{
			Module + "/session":           "the envelope builds on the codec, never the reverse: crypto knows no session",
			Module + "/browser":           "the codec seals byte slices; cookies and headers are browser's, which calls it",
			Module + "/internal/":         "crypto is the bottom of the module: the standard library and sio only (STYLE \"Shape\")",
			"github.com/valyala/fasthttp": "the codec needs no HTTP: the proxy's hot path hands it byte slices",
		},
		Production: true,
	},
	// The envelope sits beside crypto and builds on it alone, so that both
	// daemons and the tools can use it without linking any server code.
	"/session": {
		Allowed: cat([]string{Module + "/session", Module + "/crypto"}, sio),
		BadDeps: map[string]string{
			Module + "/agent":   shared,
			Module + "/proxy":   shared,
			Module + "/browser": "the envelope is what a cookie holds, below the rules that name and split cookies",
		},
		Production: true,
	},
	// What agent and proxy share at the browser's edge: the standard
	// library only.
	"/browser": {
		Allowed: []string{Module + "/browser"},
		BadDeps: map[string]string{
			Module + "/agent":  shared,
			Module + "/proxy":  shared,
			Module + "/crypto": "browser names, splits and checks cookies and headers; the daemons seal and open the values",
		},
		Production: true,
	},
	// The agent adds the router, x/oauth2 and go-oidc (with go-jose) to
	// what the proxy uses.
	"/agent": {
		Allowed: cat([]string{Module + "/agent", Module + "/browser", Module + "/crypto", "github.com/VictoriaMetrics/metrics", Module + "/internal/",
			Module + "/revocation", Module + "/session", "golang.org/x/net", "golang.org/x/oauth2",
			"github.com/coreos/go-oidc/v3", "github.com/go-jose/go-jose/v4", "github.com/fasthttp/router", "github.com/savsgio/gotils",
			"go.yaml.in/yaml/v3"}, sio, fasthttp, zerolog, goRedis),
		BadDeps:    map[string]string{Module + "/proxy": daemons},
		Production: true,
	},
	// The proxy's own module dependencies are fasthttp, zerolog and YAML,
	// and the Redis client for revocation.store redis (issue #13). It
	// shares the cookie contract (browser, session, crypto) and the
	// revocation list with the agent.
	"/proxy": {
		Allowed: cat([]string{Module + "/proxy", Module + "/browser", Module + "/session", Module + "/crypto", "github.com/VictoriaMetrics/metrics",
			Module + "/internal/daemon", Module + "/internal/park", Module + "/internal/settings", Module + "/revocation", "golang.org/x/net", "go.yaml.in/yaml/v3"},
			sio, fasthttp, zerolog, goRedis),
		BadDeps: map[string]string{
			Module + "/agent":               daemons,
			"golang.org/x/oauth2":           noOAuth,
			"github.com/coreos/go-oidc/v3":  noOAuth,
			"github.com/go-jose/go-jose/v4": "the proxy verifies no JWT: the API checks the access token it forwards",
		},
		Production: true,
	},
	// The renderer takes the cookie names from browser and the error bodies
	// from proxy, and links nothing the proxy does not link already.
	"/nginx": {
		Allowed:      []string{Module + "/nginx"},
		AllowLinksOf: Module + "/proxy",
		BadDeps: map[string]string{
			Module + "/agent":              "NGINX's configuration takes nothing from the agent",
			"github.com/coreos/go-oidc/v3": noOAuth,
			"golang.org/x/oauth2":          noOAuth,
		},
		Production: true,
	},
	// Plumbing for both binaries: listeners, signals, logging, ops.
	"/internal/daemon": {
		Allowed:    cat([]string{Module + "/internal/daemon", Module + "/internal/park", "github.com/VictoriaMetrics/metrics", "golang.org/x/sys", "golang.org/x/net"}, fasthttp, zerolog),
		BadDeps:    map[string]string{Module + "/agent": shared, Module + "/proxy": shared},
		Production: true,
	},
	// Parking idle keep-alive connections: epoll and a fasthttp hook, nothing
	// of the daemons.
	"/internal/park": {
		Allowed:    cat([]string{Module + "/internal/park"}, fasthttp),
		BadDeps:    map[string]string{Module + "/internal/daemon": "the daemon's server uses it: linking the daemon would be an import cycle"},
		Production: true,
	},
	// What both configuration files share: no server code.
	"/internal/settings": {
		Allowed: cat([]string{Module + "/internal/settings", Module + "/crypto", Module + "/browser", "go.yaml.in/yaml/v3"}, sio, zerolog),
		BadDeps: map[string]string{
			Module + "/agent":             shared,
			Module + "/proxy":             shared,
			"github.com/valyala/fasthttp": "decoding a configuration file needs no server code",
		},
		Production: true,
	},
	// Test support for configuration files needs only the key ring of
	// package crypto (and what crypto links).
	"/internal/settings/settingstest": {
		Allowed: cat([]string{Module + "/internal/settings/settingstest", Module + "/crypto"}, sio),
		BadDeps: map[string]string{
			Module + "/internal/settings": "the settings' own tests import it: linking settings would be an import cycle",
		},
	},
	// The revocation list builds on the session envelope only; its stores
	// live in subpackages.
	"/revocation": {
		Allowed: cat([]string{Module + "/revocation", Module + "/session", Module + "/crypto"}, sio),
		BadDeps: map[string]string{
			Module + "/revocation/":       "the list is what every store fills; a store is chosen by configuration, so the list links none",
			"github.com/valyala/fasthttp": "the proxy consults the list on every request; it does no I/O of its own",
		},
		Production: true,
	},
	// The embedded store needs the list, fasthttp for the feed handler
	// and zerolog for the follower's two log lines.
	"/revocation/embedded": {
		Allowed: cat([]string{Module + "/revocation", Module + "/session", Module + "/crypto"}, sio, fasthttp, zerolog),
		BadDeps: map[string]string{
			Module + "/agent":              shared,
			Module + "/proxy":              shared,
			"github.com/redis/go-redis/v9": "the single-machine store needs no Redis: that is the other store's",
		},
		Production: true,
	},
	// The Redis store needs the list, the settings type of its
	// configuration block and the client (docs/operations.md).
	"/revocation/redis": {
		Allowed: cat([]string{Module + "/revocation", Module + "/session", Module + "/crypto",
			Module + "/internal/settings", Module + "/browser", "github.com/rs/zerolog", "github.com/mattn/", "go.yaml.in/yaml/v3"},
			sio, goRedis),
		BadDeps: map[string]string{
			Module + "/agent":               "the agent records and the proxies follow, so the store links neither",
			Module + "/proxy":               "the agent records and the proxies follow, so the store links neither",
			Module + "/revocation/embedded": "the stores are alternatives chosen by configuration; neither needs the other",
		},
		Production: true,
	},
	// The binaries: each links the packages above, never the other daemon.
	"/cmd/oauth-agent": {BadDeps: map[string]string{Module + "/proxy": daemons}, Production: true},
	"/cmd/oauth-proxy": {BadDeps: map[string]string{Module + "/agent": daemons, "golang.org/x/oauth2": noOAuth, "github.com/coreos/go-oidc/v3": noOAuth}, Production: true},
	"/cmd/thctl": {
		BadDeps: map[string]string{
			Module + "/agent": "thctl works on keys and cookie values alone, and stays small enough to audit",
			Module + "/proxy": "thctl works on keys and cookie values alone, and stays small enough to audit",
		},
		Production: true,
	},
	"/nginx/cmd/render": {BadDeps: map[string]string{Module + "/agent": "NGINX's configuration takes nothing from the agent"}, Production: true},
	// The fakes need only the standard library and go-jose, so that any
	// package's tests (and the development stack) can import them.
	"/internal/oidcfake": {
		Allowed: []string{Module + "/internal/oidcfake", "github.com/go-jose/go-jose/v4"},
		BadDeps: map[string]string{
			Module + "/agent":        "the agent's tests use the fakes built on it: linking the agent would be an import cycle",
			Module + "/agent/astest": "astest and devidp are layers on oidcfake, never the reverse",
		},
	},
	"/agent/astest": {
		Allowed: []string{Module + "/agent/astest", Module + "/internal/oidcfake", "github.com/go-jose/go-jose/v4"},
		BadDeps: map[string]string{
			Module + "/agent": "the agent's own tests import the fake: linking the agent would be an import cycle",
			Module + "/proxy": "a fake Authorization Server for any package's tests links no daemon",
		},
	},
	"/examples/devidp": {
		Allowed: []string{Module + "/examples/devidp", Module + "/internal/oidcfake", "github.com/go-jose/go-jose/v4"},
		BadDeps: map[string]string{
			Module + "/agent":        "the IdP stands for the Authorization Server, which knows nothing of the agent that calls it",
			Module + "/agent/astest": "the test fake and the development IdP are siblings on oidcfake; neither builds on the other",
		},
	},
}

func cat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
