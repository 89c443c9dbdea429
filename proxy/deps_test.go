package proxy

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// TestDependencies: the proxy never links the agent, x/oauth2 or an OIDC
// library; its own module dependencies are fasthttp, zerolog and YAML, and
// the Redis client for revocation.store redis (issue #13; with its own
// xxhash and atomic). It shares the cookie contract (browser, session,
// crypto) and the revocation list with the agent.
func TestDependencies(t *testing.T) {
	m := deptest.Module
	deptest.Allow(t, m+"/proxy", m+"/browser", m+"/session", m+"/crypto", "github.com/VictoriaMetrics/metrics", m+"/internal/daemon", m+"/internal/settings",
		m+"/revocation", "github.com/redis/go-redis/v9", "github.com/cespare/xxhash/v2", "go.uber.org/atomic",
		"github.com/minio/sio", "golang.org/x/crypto", "golang.org/x/sys", "golang.org/x/net",
		"github.com/valyala/", "github.com/andybalholm/brotli", "github.com/klauspost/compress", "github.com/molecule-man/go-brrr",
		"github.com/rs/zerolog", "github.com/mattn/go-colorable", "github.com/mattn/go-isatty", "go.yaml.in/yaml/v3")
}
