// Package astest is a fake OpenID Connect Authorization Server for the OAuth
// Agent's tests, in the spirit of go-oidc's oidctest. It serves real HTTP on
// 127.0.0.1: discovery, JWKS, the authorization endpoint with PKCE (RFC 7636)
// and pushed authorization requests (RFC 9126), the token endpoint with
// refresh-token rotation and reuse detection, userinfo, end session and
// revocation (RFC 7009). Every token is an RS256 JWT signed with a key made
// by New, or an opaque random string.
//
// There is no login page: the one user, Subject, is logged in at once. Faults
// switch misbehaviour on and off while the server runs. The grant store,
// tokens and keys are internal/oidcfake's, shared with examples/devidp;
// astest adds the endpoints, pushed authorization requests and the Faults.
//
// It is for tests only: it keeps every token in memory and MUST NOT be used
// as a real authorization server.
package astest

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// Options configures the single client of a Server, "spa-client". Zero
// fields take the documented defaults.
type Options struct {
	// ClientSecret is the client's secret; default "test-secret".
	ClientSecret string
	// RedirectURI is the only redirect URI allowed, compared exactly;
	// default "http://www.example.localhost:3000/".
	RedirectURI string
}

// subject is the logged-in user.
const subject = "demo-user"

// Server is a running fake authorization server. Build it with New. A Server
// is safe for concurrent use and must not be copied; its exported fields are
// set by New and must not be changed.
type Server struct {
	// URL is the issuer, "http://127.0.0.1:PORT" without a trailing slash.
	// The endpoints are URL plus /.well-known/openid-configuration,
	// /authorize, /par, /token, /userinfo, /jwks, /logout and /revoke.
	URL string
	// ClientID is "spa-client"; ClientSecret and RedirectURI are Options
	// with defaults applied.
	ClientID, ClientSecret, RedirectURI string

	sid   string // SetSession's; guarded by mu
	http  *httptest.Server
	done  chan struct{} // closed by Close, ends TokenDelay waits
	close sync.Once

	op     *oidcfake.Provider // the grant store and signing keys
	pushed oidcfake.Requests  // by request_uri

	mu             sync.Mutex
	faults         Faults
	counts         map[string]int
	revoked        map[string]bool // tokens presented to /revoke
	lastUserinfo   UserinfoRequest
	lastClientAuth string
}

// New starts a Server on 127.0.0.1 with a fresh RSA 2048 signing key and
// registers its Close with tb.Cleanup.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := &Server{
		ClientID:     "spa-client",
		ClientSecret: cmp.Or(opts.ClientSecret, "test-secret"),
		RedirectURI:  cmp.Or(opts.RedirectURI, "http://www.example.localhost:3000/"),
		done:         make(chan struct{}),
		counts:       make(map[string]int),
		pushed:       oidcfake.Requests{TTL: parTTL},
		revoked:      make(map[string]bool),
	}
	if _, err := url.Parse(s.RedirectURI); err != nil {
		tb.Fatalf("astest: redirect URI: %v", err)
	}

	mux := http.NewServeMux()
	mux.Handle("GET /.well-known/openid-configuration", oidcfake.Handler(s.discovery))
	mux.Handle("GET /jwks", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.snapshot("jwks")
		s.op.Keys.ServeHTTP(w, r)
	}))
	mux.Handle("GET /authorize", http.HandlerFunc(s.authorize))
	mux.Handle("POST /par", oidcfake.Handler(s.par))
	mux.Handle("POST /token", oidcfake.Handler(s.token))
	mux.Handle("/userinfo", oidcfake.Handler(s.userinfo))
	mux.Handle("/logout", oidcfake.Handler(s.endSession))
	mux.Handle("POST /revoke", oidcfake.Handler(s.revoke))
	s.http = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Tokens, codes and errors alike must not be cached (RFC 6749 §5.1).
		w.Header().Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	}))
	tb.Cleanup(s.Close)
	// The handlers read URL: set it before the first request can arrive.
	s.URL = "http://" + s.http.Listener.Addr().String()
	op, err := oidcfake.New(oidcfake.Config{Issuer: s.URL, Audience: apiAudience, Realm: "astest"})
	if err != nil {
		tb.Fatalf("astest: %v", err)
	}
	s.op = op
	s.http.Start()
	return s
}

// Close stops the server and waits for requests in flight; it ends TokenDelay
// waits at once. Close may be called more than once.
func (s *Server) Close() {
	s.close.Do(func() {
		close(s.done)
		s.http.Close()
	})
}

// Set changes the Faults under the server's lock; change sees the current
// value. It may be called at any time, also while requests are in flight.
func (s *Server) Set(change func(*Faults)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	change(&s.faults)
}

// Count returns how many requests an endpoint has seen: "discovery", "jwks",
// "authorize", "par", "token:authorization_code", "token:refresh_token"
// (other grant types as "token:" plus their name), "userinfo",
// "end_session" and "revocation". Requests refused by a fault or for bad
// input count too; requests with a method the endpoint does not serve (405)
// do not.
func (s *Server) Count(what string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[what]
}

// Revoked reports whether token was presented to the revocation endpoint by
// an authenticated client.
func (s *Server) Revoked(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revoked[token]
}

// LastClientAuth returns the client authentication method of the last
// token, PAR or revocation request: "client_secret_basic",
// "client_secret_post", or "" when it carried no client secret. It is
// recorded before the credentials are checked.
func (s *Server) LastClientAuth() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastClientAuth
}

// Authorize plays the browser: it GETs authorizationURL without following
// redirects and returns the parsed Location of the 302 answer, the redirect
// URI with code, state and iss, or with error, error_description, state and
// iss. Any other answer, such as the 400 for a bad client_id or
// redirect_uri, is an error.
func (s *Server) Authorize(authorizationURL string) (redirect *url.URL, err error) {
	loc, body, err := oidcfake.Follow(context.Background(), &http.Client{Timeout: 10 * time.Second}, authorizationURL, nil)
	if err == nil && loc == nil {
		err = fmt.Errorf("astest: authorize: 200 OK: %.200s", body)
	}
	return loc, err
}

// snapshot counts a request to endpoint what and returns the Faults in force.
func (s *Server) snapshot(what string) Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[what]++
	return s.faults
}

// SetSession makes sid the provider session of the logins authorized from
// now on: their ID tokens carry it as sid (OpenID Connect Front-Channel
// Logout 1.0 §3, which Back-Channel Logout 1.0 §2.1 reuses). "" (the
// default) issues ID tokens without sid. Logins already authorized keep
// the session they had.
func (s *Server) SetSession(sid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sid = sid
}

// Subject returns the logged-in user's sub.
func (s *Server) Subject() string { return subject }

// user is the logged-in user, named "Demo User".
func (s *Server) user() oidcfake.User {
	return oidcfake.User{Subject: subject, Name: "Demo User", Email: subject + "@example.com"}
}
