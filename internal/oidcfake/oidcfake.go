// Package oidcfake is the core of the fake OpenID Providers that the test
// server (agent/astest) and the development one (examples/devidp) serve:
// the grant store (authorization codes with PKCE, refresh tokens with
// rotation and reuse detection, access tokens, revocation), client
// authentication, token and ID-token minting with rotating RS256 keys and
// their JWKS, the discovery document, and the OAuth error and JSON answers.
// The two providers add only their endpoints: astest its fault switches,
// devidp its login pages, sessions and back-channel logout. It needs only
// the standard library and go-jose, and is safe for concurrent use. It
// keeps everything in memory and MUST NOT be used as a real provider.
package oidcfake

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// WriteJSON answers with status and v as JSON. v must marshal: failing to is
// a programmer error.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("oidcfake: internal error: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// Redirect sends the user agent back to redirectURI, a registered one, with
// the authorization response resp, the state unless it is "" and the issuer
// unless it is "" (RFC 9207 §2; a test provider may leave it out).
func Redirect(w http.ResponseWriter, r *http.Request, redirectURI, state, iss string, resp url.Values, status int) {
	if state != "" {
		resp.Set("state", state)
	}
	if iss != "" {
		resp.Set("iss", iss)
	}
	http.Redirect(w, r, AppendQuery(redirectURI, resp), status)
}

// AppendQuery adds params to a registered URI, keeping its own query as it
// is (RFC 6749 §3.1.2). uri must parse, as registration checked.
func AppendQuery(uri string, params url.Values) string {
	u, err := url.Parse(uri)
	if err != nil {
		panic("oidcfake: internal error: redirect URI: " + err.Error())
	}
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += params.Encode()
	return u.String()
}

// Follow plays one step of a browser for tests: with c (http.DefaultClient
// when nil) it GETs u, or POSTs it form unless form is nil, without
// following redirects, and returns the Location of a 302 or 303 answer, or
// the body of a 200 one. Any other answer is an error with its status and
// the start of its body.
func Follow(ctx context.Context, c *http.Client, u string, form url.Values) (*url.URL, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if form != nil {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	}
	if err != nil {
		return nil, "", fmt.Errorf("oidcfake: %w", err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	nc := http.Client{}
	if c != nil {
		nc = *c
	}
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := nc.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("oidcfake: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", fmt.Errorf("oidcfake: %s %s: %w", req.Method, req.URL.Path, err)
	}
	switch resp.StatusCode {
	case http.StatusFound, http.StatusSeeOther:
		loc, err := resp.Location()
		return loc, "", err
	case http.StatusOK:
		return nil, string(b), nil
	}
	return nil, "", fmt.Errorf("oidcfake: %s %s: %s: %.200s", req.Method, req.URL.Path, resp.Status, b)
}
