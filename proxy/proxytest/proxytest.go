// Package proxytest holds what the tests of the proxy and of NGINX in
// front of it share: cookies sealed as the agent seals them (Keys) and a
// test API that records what it received (API). Only tests import it; it does
// not import the proxy, so that the proxy's own tests can.
package proxytest

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/session"
)

// Keys are the two keys a test's proxies are configured with, and the
// session the test's cookies belong to. Keys must not be copied; its
// methods are safe for concurrent use.
type Keys struct {
	Hex   [2]string       // the sealing key first, then an older one, in hex
	Ring  *crypto.Keyring // both
	Old   *crypto.Keyring // the older key alone
	Codec *session.Codec  // seals v2 cookies with Ring, as the agent does
	// Env is the session of the cookies Seal makes (NewSession).
	Env session.Envelope
}

// NewKeys returns two fresh keys and a new session.
func NewKeys(t testing.TB) *Keys {
	t.Helper()
	newKey, oldKey := crypto.GenerateKey(), crypto.GenerateKey()
	k := &Keys{Hex: [2]string{string(newKey.AppendHex(nil)), string(oldKey.AppendHex(nil))}, Env: NewSession(time.Now())}
	var err error
	if k.Ring, err = crypto.NewKeyring(newKey, oldKey); err != nil {
		t.Fatal(err)
	}
	if k.Old, err = crypto.NewKeyring(oldKey); err != nil {
		t.Fatal(err)
	}
	if k.Codec, err = session.NewCodec(k.Ring, crypto.FormatV2); err != nil {
		t.Fatal(err)
	}
	return k
}

// NewSession returns the envelope of a session of demo-user at
// https://login.example that started a minute before now, whose cookies
// stay valid for an hour.
func NewSession(now time.Time) session.Envelope {
	return session.Envelope{
		ID:      session.NewID(),
		Started: now.Add(-time.Minute).Unix(),
		Expires: now.Add(time.Hour).Unix(),
		SID:     session.HashSID("https://login.example", "op-session"),
		Sub:     session.HashSub("https://login.example", "demo-user"),
	}
}

// Seal returns a v2 cookie value of purpose p holding plaintext, in the
// session k.Env, sealed with the first key.
func (k *Keys) Seal(t testing.TB, p session.Purpose, plaintext string) string {
	t.Helper()
	return k.SealIn(t, &k.Env, p, 0, plaintext)
}

// SealIn seals plaintext for purpose p in session env, for a cookie split
// into chunks chunks (0: whole).
func (k *Keys) SealIn(t testing.TB, env *session.Envelope, p session.Purpose, chunks int, plaintext string) string {
	t.Helper()
	c, err := k.Codec.Seal(nil, p, chunks, env, []byte(plaintext))
	if err != nil {
		t.Fatal(err)
	}
	return string(c)
}

// SealLegacy seals plaintext in format f (v1 or DARE), which carries no
// purpose and no session.
func (k *Keys) SealLegacy(t testing.TB, f crypto.Format, plaintext string) string {
	t.Helper()
	c, err := k.Ring.Seal(nil, []byte(plaintext), f)
	if err != nil {
		t.Fatal(err)
	}
	return string(c)
}

// API is a test API behind the proxy: it records the last request it
// received, with its body, and answers with the request's path as JSON.
// The zero value is ready to use; it must not be copied, and is safe for
// concurrent use.
type API struct {
	mu   sync.Mutex
	last *http.Request
	body []byte
}

// ServeHTTP records r and answers {"path": r.URL.Path}.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.Record(r, body)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
}

// Record records r, with body, as the last request received.
func (a *API) Record(r *http.Request, body []byte) {
	a.mu.Lock()
	a.last, a.body = r, body
	a.mu.Unlock()
}

// Received returns the last request recorded, and forgets it.
func (a *API) Received() (*http.Request, []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, b := a.last, a.body
	a.last, a.body = nil, nil
	return r, b
}
