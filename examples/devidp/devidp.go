// Package devidp is the development OpenID Provider of the development stack
// (make run). It serves, over net/http, the authorization code flow with PKCE
// (RFC 7636, S256 only) behind a login page with demo users, the token
// endpoint with refresh-token rotation, userinfo, RP-initiated logout and
// revocation (RFC 7009). Access tokens are RS256 JWTs (RFC 9068) that an API
// verifies against the JWKS. The grant store, tokens and keys are
// internal/oidcfake's, shared with agent/astest; devidp adds the pages,
// sessions and back-channel logout.
//
// DEVELOPMENT ONLY: there are no passwords (anyone who reaches the login page
// signs in as any demo user), everything lives in memory and the signing key
// changes at every start. It MUST NOT be used as an identity provider, and
// every HTML page it serves says so in a banner. Use ListenLoopback to keep
// it on the local machine.
//
// Endpoints, under the issuer URL:
//
//	GET  /.well-known/openid-configuration   discovery (OpenID Connect Discovery 1.0 §3)
//	GET  /jwks                               the public signing key
//	GET  /authorize                          validates the request, shows the login page
//	POST /login                              the login form: request_id and username
//	POST /token                              authorization_code and refresh_token grants
//	GET  /userinfo (or POST)                 OpenID Connect Core §5.3
//	GET  /logout (or POST)                   RP-Initiated Logout 1.0: a "logged out" page
//	POST /revoke                             RFC 7009
//	GET  /                                   a page listing the users, clients and sessions
//	POST /sessions/end                       the page's "log out" of one session (sid)
//	POST /users/logout                       the page's "log out everywhere" of one user (sub)
//
// Every sign-in is a provider session with an id, the sid of its ID tokens
// (OpenID Connect Back-Channel Logout 1.0 §2.1). Ending one, at the
// end-session endpoint (the session of the id_token_hint) or with the
// index page's controls, revokes its grants and, for a client with a
// BackchannelLogoutURI, POSTs that client a logout token (§2.4, §2.5):
// with the session's sid and sub for one session, with sub alone for "log
// out everywhere", which ends every session of the user.
//
// The login page is one form (method POST, action /login) with a hidden field
// request_id, a text field username with a "Sign in" button, one submit
// button name="username" value="<subject>" per demo user, and a cancel button
// (name="cancel") that sends the client error=access_denied. Login plays that
// page for tests.
package devidp

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// User is a demo user. Subject is the sub claim and the name typed or picked
// on the login page; it is required and unique. Name defaults to Subject and
// Email to Subject + "@example.com". A User is plain data and may be copied.
type User = oidcfake.User

// Client is a registered confidential client; it authenticates with
// client_secret_basic or client_secret_post. ID and Secret are required.
// Redirect URIs are compared exactly (RFC 9700 §4.1.3); at least one is
// required. A Client is plain data and may be copied; New keeps its own copy.
type Client struct {
	ID, Secret                           string
	RedirectURIs, PostLogoutRedirectURIs []string
	// BackchannelLogoutURI is where the provider POSTs logout tokens
	// (Back-Channel Logout 1.0 §2.2): an absolute http or https URL without
	// a fragment; "" sends none.
	BackchannelLogoutURI string
}

// Options configures a Server. Zero fields take the documented defaults.
// Options is plain data and may be copied.
type Options struct {
	// Issuer is the provider's URL as clients see it, http or https, with
	// nothing after the host and port, e.g.
	// "http://login.example.localhost:8443". Required.
	Issuer string
	// Clients are the registered clients; at least one is required.
	Clients []Client
	// AccessTokenTTL is the access tokens' lifetime (their exp and the token
	// answer's expires_in); default 5 minutes.
	AccessTokenTTL time.Duration
	// Audience is the access tokens' aud; default "api.example.localhost".
	Audience string
}

// Users are the demo users, in login-page order. The slice must not be
// modified.
var Users = []User{
	{Subject: "alice", Name: "Alice Anderson", Email: "alice@example.com"},
	{Subject: "bob", Name: "Bob Brown", Email: "bob@example.com"},
	{Subject: "carol", Name: "Carol Clark", Email: "carol@example.com"},
}

// userNamed returns the demo user with subject sub, or nil.
func userNamed(sub string) *User {
	if i := slices.IndexFunc(Users, func(u User) bool { return u.Subject == sub }); i >= 0 {
		return &Users[i]
	}
	return nil
}

// DefaultAudience is the access tokens' aud when Options.Audience is empty.
const DefaultAudience = "api.example.localhost"

const defaultAccessTokenTTL = 5 * time.Minute

// Server is a development OpenID Provider. Build it with New and serve its
// Handler. A Server is safe for concurrent use and must not be copied.
type Server struct {
	issuer  string
	ttl     time.Duration
	clients map[string]*Client
	handler http.Handler
	op      *oidcfake.Provider // the grant store and signing key
	pending oidcfake.Requests  // by request_id, awaiting the login form

	mu        sync.Mutex
	sessions  map[string]*opSession // by sid
	nextSweep time.Time

	httpClient *http.Client // sends logout tokens
	formToken  string       // the index page's forms carry it (no cross-site logouts)
}

// New validates opts and builds a Server with a fresh RSA 2048 signing key.
func New(opts Options) (*Server, error) {
	s := &Server{
		issuer:     opts.Issuer,
		ttl:        cmp.Or(opts.AccessTokenTTL, defaultAccessTokenTTL),
		clients:    make(map[string]*Client),
		pending:    oidcfake.Requests{TTL: pendingTTL, Max: maxPending},
		sessions:   make(map[string]*opSession),
		httpClient: defaultHTTPClient(),
		formToken:  rand.Text(),
	}
	// OpenID Connect Discovery 1.0 §3: no query or fragment; no path either,
	// so that every endpoint is at the host's root.
	if !httpURL(s.issuer) || strings.ContainsAny(s.issuer, "?@") || strings.Count(s.issuer, "/") != 2 {
		return nil, fmt.Errorf("devidp: Issuer %q must be an http or https URL with nothing after the host and port, as http://login.example.localhost:8443", s.issuer)
	}
	if s.ttl < 0 {
		return nil, fmt.Errorf("devidp: AccessTokenTTL %v is negative", opts.AccessTokenTTL)
	}
	if err := s.setClients(opts.Clients); err != nil {
		return nil, err
	}
	op, err := oidcfake.New(oidcfake.Config{Issuer: s.issuer, Audience: cmp.Or(opts.Audience, DefaultAudience),
		Realm: "devidp", GrantTTL: sessionTTL})
	if err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	s.op = op
	s.handler = s.routes()
	return s, nil
}

// httpURL reports whether s is an absolute http or https URL with a host
// and no fragment (RFC 6749 §3.1.2; Back-Channel Logout 1.0 §2.2).
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && !strings.Contains(s, "#")
}

func (s *Server) setClients(clients []Client) error {
	if len(clients) == 0 {
		return errors.New("devidp: at least one client is required")
	}
	for _, c := range clients {
		switch {
		case c.ID == "":
			return errors.New("devidp: a client has no ID")
		case s.clients[c.ID] != nil:
			return fmt.Errorf("devidp: client %q is registered twice", c.ID)
		case c.Secret == "":
			return fmt.Errorf("devidp: client %q has no secret", c.ID)
		case len(c.RedirectURIs) == 0:
			return fmt.Errorf("devidp: client %q has no redirect URI", c.ID)
		}
		uris := slices.Concat(c.RedirectURIs, c.PostLogoutRedirectURIs)
		if c.BackchannelLogoutURI != "" {
			uris = append(uris, c.BackchannelLogoutURI)
		}
		for _, u := range uris {
			if !httpURL(u) {
				return fmt.Errorf("devidp: client %q: %q must be an absolute http or https URL without a fragment", c.ID, u)
			}
		}
		c.RedirectURIs = slices.Clone(c.RedirectURIs)
		c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
		s.clients[c.ID] = &c
	}
	return nil
}

// Issuer returns the issuer URL, as in Options.
func (s *Server) Issuer() string { return s.issuer }

// Handler returns the provider's HTTP handler. It serves on any host.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /.well-known/openid-configuration", oidcfake.Handler(s.discovery))
	mux.Handle("GET /jwks", s.op.Keys)
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /login", s.login)
	mux.Handle("POST /token", oidcfake.Handler(s.token))
	mux.Handle("/userinfo", oidcfake.Handler(s.op.ServeUserinfo))
	mux.HandleFunc("/logout", s.endSession)
	mux.Handle("POST /revoke", oidcfake.Handler(s.revoke))
	mux.HandleFunc("POST /sessions/end", s.endSessionControl)
	mux.HandleFunc("POST /users/logout", s.logoutUserControl)
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("/", s.notFound)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Tokens, codes, pages and errors alike must not be cached (RFC 6749
		// §5.1); the key changes at every start, so the JWKS neither.
		w.Header().Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) error {
	md := oidcfake.NewMetadata(s.issuer, []string{"iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "sid", "name", "preferred_username", "email", "email_verified"})
	// The prompt values the login page understands; logout tokens are sent,
	// with sid (Back-Channel Logout 1.0 §2.1).
	md["prompt_values_supported"] = []string{"none", "login"}
	md["backchannel_logout_supported"], md["backchannel_logout_session_supported"] = true, true
	oidcfake.WriteJSON(w, http.StatusOK, md)
	return nil
}

// sweepLocked drops sessions that have expired, at most once a minute, so
// that a provider left running for days does not grow (the grant store and
// the login pages sweep themselves). s.mu must be held.
func (s *Server) sweepLocked(now time.Time) {
	if now.Before(s.nextSweep) {
		return
	}
	s.nextSweep = now.Add(time.Minute)
	maps.DeleteFunc(s.sessions, func(_ string, sess *opSession) bool { return now.After(sess.expires) })
}
