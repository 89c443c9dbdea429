package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// UserinfoCacheTTL is the default, and the longest, time a positive answer
// of the userinfo endpoint is reused (Options.UserinfoCacheTTL).
const UserinfoCacheTTL = 10 * time.Second

// maxCachedTokens bounds the cache's memory. Only tokens the issuer
// accepted are cached, so only many live sessions within UserinfoCacheTTL
// fill it.
const maxCachedTokens = 10_000

// maxUserinfoBytes bounds the userinfo answer read.
const maxUserinfoBytes = 1 << 20

var (
	errNotToken68     = invalid("the access token is not an RFC 6750 bearer token")
	errRefused        = invalid("the issuer's userinfo endpoint refused the access token")
	errUserinfoDown   = &apiError{http.StatusServiceUnavailable, "server_error", "the issuer's userinfo endpoint could not be reached", ""}
	errUserinfoAnswer = &apiError{http.StatusServiceUnavailable, "server_error", "the issuer's userinfo endpoint gave no usable answer", ""}
)

// newUserinfoAPI is New for userinfo mode.
func newUserinfoAPI(opts Options, client *http.Client, now func() time.Time) (*API, error) {
	if opts.Issuer != "" || opts.JWKSURL != "" || opts.Audience != "" {
		return nil, errors.New("api: UserinfoURL excludes Issuer, JWKSURL and Audience, which are for JWT access tokens")
	}
	if u, err := url.Parse(opts.UserinfoURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api: UserinfoURL %q must be an absolute http or https URL", opts.UserinfoURL)
	}
	ttl := opts.UserinfoCacheTTL
	switch {
	case ttl > UserinfoCacheTTL:
		return nil, fmt.Errorf("api: UserinfoCacheTTL %v is longer than %v", ttl, UserinfoCacheTTL)
	case ttl == 0:
		ttl = UserinfoCacheTTL
	case ttl < 0:
		ttl = 0
	}
	return &API{now: now, userinfo: &userinfoVerifier{
		url: opts.UserinfoURL, client: client, ttl: ttl, now: now,
		cache: make(map[[sha256.Size]byte]cachedClaims),
	}}, nil
}

// userinfoVerifier checks opaque access tokens by presenting them to the
// issuer's userinfo endpoint (OpenID Connect Core §5.3), the one check a
// resource server can make of a token it cannot read without credentials
// of its own for introspection (RFC 7662). Safe for concurrent use.
type userinfoVerifier struct {
	url    string
	client *http.Client
	ttl    time.Duration // 0: no cache
	now    func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cachedClaims // by SHA-256 of the token: no token is kept
}

type cachedClaims struct {
	claims  claims
	expires time.Time
}

func (v *userinfoVerifier) verify(raw string) (*claims, error) {
	if !isToken68(raw) {
		return nil, errNotToken68
	}
	key := sha256.Sum256([]byte(raw))
	now := v.now()
	if v.ttl > 0 {
		v.mu.Lock()
		e, ok := v.cache[key]
		if ok && !now.Before(e.expires) {
			delete(v.cache, key)
			ok = false
		}
		v.mu.Unlock()
		if ok {
			c := e.claims
			return &c, nil
		}
	}
	c, err := v.ask(raw)
	if err != nil {
		return nil, err
	}
	// The answer is reused for v.ttl, never past a JWT's exp. An opaque
	// token's lifetime is unknown here; Options.UserinfoCacheTTL documents
	// what that means.
	ttl := v.ttl
	if exp, ok := jwtExpiry(raw); ok {
		ttl = min(ttl, exp.Sub(now))
	}
	if ttl > 0 {
		v.store(key, cachedClaims{claims: *c, expires: now.Add(ttl)}, now)
	}
	return c, nil
}

func (v *userinfoVerifier) store(key [sha256.Size]byte, e cachedClaims, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.cache) >= maxCachedTokens {
		for k, old := range v.cache {
			if !now.Before(old.expires) {
				delete(v.cache, k)
			}
		}
		if len(v.cache) >= maxCachedTokens {
			clear(v.cache) // every entry is young: start over rather than grow
		}
	}
	v.cache[key] = e
}

// ask presents raw to the userinfo endpoint (RFC 6750 §2.1). The token goes
// only into the request's Authorization header, never into an error.
func (v *userinfoVerifier) ask(raw string) (*claims, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, v.url, nil)
	if err != nil {
		return nil, errUserinfoDown
	}
	req.Header.Set("Authorization", "Bearer "+raw)
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, errUserinfoDown
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxUserinfoBytes)) // keep the connection reusable
		resp.Body.Close()
	}()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		// 401: invalid, expired or revoked (RFC 6750 §3.1); 403: the token
		// may not be used here (no openid scope). Either way the issuer does
		// not vouch for it.
		return nil, errRefused
	default:
		return nil, errUserinfoDown
	}
	// A signed or encrypted answer (application/jwt, §5.3.2) is not read.
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, errUserinfoAnswer
	}
	var u struct {
		Subject string `json:"sub"`
		Name    string `json:"name"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxUserinfoBytes)).Decode(&u); err != nil || u.Subject == "" {
		return nil, errUserinfoAnswer
	}
	return &claims{Claims: jwt.Claims{Subject: u.Subject}, Name: u.Name}, nil
}

// isToken68 reports whether s is an RFC 6750 §2.1 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	const b64token = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
	return body != "" && strings.Trim(body, b64token) == ""
}

// jwtExpiry returns the exp of raw when raw looks like a JWT. Nothing is
// verified: the issuer has just accepted the token, and exp only shortens
// how long that answer is reused.
func jwtExpiry(raw string) (time.Time, bool) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var c struct {
		Expiry *jwt.NumericDate `json:"exp"`
	}
	if json.Unmarshal(payload, &c) != nil || c.Expiry == nil {
		return time.Time{}, false
	}
	return c.Expiry.Time(), true
}
