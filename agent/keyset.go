package agent

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// jwksRefetchInterval is how long after a JWKS fetch an unknown kid may make
// the agent fetch it again, unless a token has verified since.
const jwksRefetchInterval = 5 * time.Second

var errJWKSRefetchLimited = errors.New("agent: JWKS refetch rate-limited")

// limitedKeySet is the Authorization Server's key set with its refetches
// limited. go-oidc's RemoteKeySet fetches the JWKS anew for every token
// whose kid it does not know (the key rotation of OpenID Connect Core
// §10.1.1), one fetch at a time but without any limit, so a stream of tokens
// with made-up kids would make the agent hammer the JWKS endpoint. Here a
// fetch goes out when none has yet, when the last was jwksRefetchInterval
// ago, or when a token has verified since the last: a genuine token shows
// the keys in hand are good, and a rotation right after it must not wait.
// A refused fetch fails that one verification; the cached keys stay.
//
// A limitedKeySet is safe for concurrent use and must not be copied.
type limitedKeySet struct {
	keys *oidc.RemoteKeySet
	gate *refetchGate
}

// newLimitedKeySet returns the key set at jwksURL, fetched with client
// through a gate whose time is now.
func newLimitedKeySet(jwksURL string, client *http.Client, now func() time.Time) *limitedKeySet {
	gate := &refetchGate{now: now}
	gated := *client
	base := client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	gated.Transport = &gatedTransport{base: base, gate: gate}
	// The key set fetches with this client for its lifetime.
	ctx := oidc.ClientContext(asEndpoint(context.Background(), "jwks"), &gated)
	return &limitedKeySet{keys: oidc.NewRemoteKeySet(ctx, jwksURL), gate: gate}
}

// VerifySignature implements oidc.KeySet.
func (k *limitedKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.keys.VerifySignature(ctx, jwt)
	if err == nil {
		k.gate.markVerified()
	}
	return payload, err
}

// refetchGate decides whether a JWKS fetch may go out.
type refetchGate struct {
	now func() time.Time

	mu       sync.Mutex
	fetched  bool      // a fetch has gone out
	last     time.Time // when
	verified bool      // a token verified since
}

func (g *refetchGate) allow() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if g.fetched && !g.verified && now.Sub(g.last) < jwksRefetchInterval {
		return false
	}
	g.fetched, g.last, g.verified = true, now, false
	return true
}

func (g *refetchGate) markVerified() {
	g.mu.Lock()
	g.verified = true
	g.mu.Unlock()
}

// gatedTransport sends a JWKS request only when its gate allows.
type gatedTransport struct {
	base http.RoundTripper
	gate *refetchGate
}

func (t *gatedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !t.gate.allow() {
		return nil, errJWKSRefetchLimited
	}
	return t.base.RoundTrip(r)
}
