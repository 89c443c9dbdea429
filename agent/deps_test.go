package agent

import (
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/deptest"
)

// TestDependencies: the agent never links the proxy; it adds the router,
// x/oauth2 and go-oidc (with go-jose) to what the proxy uses, and go-redis
// (with xxhash and uber's atomic) for revocation.store redis.
func TestDependencies(t *testing.T) {
	m := deptest.Module
	deptest.Allow(t, m+"/agent", m+"/browser", m+"/crypto", "github.com/VictoriaMetrics/metrics", m+"/internal/", m+"/revocation", m+"/session",
		"github.com/minio/sio", "golang.org/x/crypto", "golang.org/x/sys", "golang.org/x/net", "golang.org/x/oauth2",
		"github.com/coreos/go-oidc/v3", "github.com/go-jose/go-jose/v4", "github.com/fasthttp/router", "github.com/savsgio/gotils",
		"github.com/valyala/", "github.com/andybalholm/brotli", "github.com/klauspost/compress", "github.com/molecule-man/go-brrr",
		"github.com/rs/zerolog", "github.com/mattn/go-colorable", "github.com/mattn/go-isatty", "go.yaml.in/yaml/v3",
		"github.com/redis/go-redis/v9", "github.com/cespare/xxhash/v2", "go.uber.org/atomic")
}
