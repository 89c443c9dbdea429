package agent

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/valyala/fasthttp"
	"golang.org/x/oauth2"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/session"
)

// loginState is the P-login cookie's content: what login/end needs to
// finish the flow it started. Field names are the reference's.
type loginState struct {
	State        string `json:"state"`
	Nonce        string `json:"nonce"`
	CodeVerifier string `json:"codeVerifier"`
}

// randomString returns n random bytes as unpadded base64url.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// loginStart builds the authorization request URL (PKCE S256, state and
// nonce of 256 bits, RFC 7636 §4.1) and keeps the secrets in P-login.
func (a *Agent) loginStart(ctx *fasthttp.RequestCtx, st *state, req *request) error {
	p, err := providerOf(st)
	if err != nil {
		return err
	}
	var body struct {
		ExtraParams []extraParam `json:"extraParams"`
	}
	// The reference sends some requests without a JSON body; a body that is
	// not JSON is ignored.
	_ = json.Unmarshal(ctx.PostBody(), &body)

	login := loginState{State: randomString(32), CodeVerifier: oauth2.GenerateVerifier()}
	params := url.Values{
		"response_type":         {"code"},
		"client_id":             {p.oauth2.ClientID},
		"redirect_uri":          {p.oauth2.RedirectURL},
		"scope":                 {strings.Join(p.oauth2.Scopes, " ")},
		"state":                 {login.State},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(login.CodeVerifier)},
		"code_challenge_method": {"S256"},
	}
	// nonce is an OpenID Connect parameter (Core §3.1.2.1): a plain OAuth
	// 2.0 request goes without it, and an OP may refuse it there
	// (oidc-provider answers invalid_request). An ID token that comes
	// anyway is still verified, without a nonce to compare; PKCE binds the
	// token response to this login.
	if openIDScope(st.cfg.Scope) {
		login.Nonce = randomString(32)
		params.Set("nonce", login.Nonce)
	}
	if err := addExtraParams(params, body.ExtraParams, st.cfg.ExtraParamsAllowed); err != nil {
		return err
	}

	authURL := p.oauth2.Endpoint.AuthURL
	if st.cfg.PAR == "always" || (st.cfg.PAR == "auto" && p.requirePAR) {
		requestURI, err := a.pushAuthorizationRequest(ctx, st, p, params)
		if err != nil {
			return err
		}
		params = url.Values{"client_id": {p.oauth2.ClientID}, "request_uri": {requestURI}}
	}
	sep := "?"
	if strings.Contains(authURL, "?") {
		sep = "&"
	}
	authURL += sep + params.Encode()

	// A new login starts from a clean slate: the variants of every cookie
	// that a browser could send twice are cleared (the answer sets P-login
	// after that, and login/end the rest).
	st.jar.clearVariants(ctx, &req.raw)
	state, _ := json.Marshal(login)
	now := a.now().Unix()
	env := session.Envelope{ID: session.NewID(), Started: now, Expires: now + int64(loginLifetime/time.Second)}
	if err := st.jar.set(ctx, &req.raw, &st.jar.names.Login, st.jar.loginPath, &env, state); err != nil {
		return err
	}
	return writeJSON(ctx, map[string]string{"authorizationRequestUrl": authURL})
}

// pushAuthorizationRequest sends the parameters to the PAR endpoint
// (RFC 9126 §2) and returns the request_uri.
func (a *Agent) pushAuthorizationRequest(ctx *fasthttp.RequestCtx, st *state, p *provider, params url.Values) (string, error) {
	if p.par == "" {
		return "", errorf(errServer, "PAR is needed but the Authorization Server has no PAR endpoint")
	}
	c, cancel := context.WithTimeout(asEndpoint(context.Background(), "par"), st.cfg.Timeouts.AS)
	defer cancel()
	status, body, err := p.postForm(c, st.client(), p.par, params)
	if err != nil {
		return "", errASUnavailable.with(err, "")
	}
	if status >= 500 {
		return "", errorf(errASUnavailable, "PAR: status %d", status)
	}
	var resp struct {
		RequestURI string `json:"request_uri"`
		Error      string `json:"error"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return "", errASUnavailable.with(fmt.Errorf("PAR: %w", err), "")
	}
	if status != http.StatusCreated && status != http.StatusOK || resp.RequestURI == "" {
		return "", asRefusal(resp.Error).with(fmt.Errorf("PAR: status %d, error %q", status, oauthErrorCode(resp.Error)), "")
	}
	return resp.RequestURI, nil
}

// errPageURL is the logged cause when pageUrl does not parse: url's errors
// quote the input, which may hold a code or an attacker's text.
var errPageURL = errors.New("pageUrl does not parse as a URL")

// loginEnd finishes a login when pageUrl carries an authorization response,
// or tells the SPA on a page load whether it is logged in (contract §5).
func (a *Agent) loginEnd(ctx *fasthttp.RequestCtx, st *state, req *request) error {
	var body struct {
		PageURL string `json:"pageUrl"`
	}
	// No body is a page load; a body that is not JSON is the contract §5
	// server_error for malformed JSON.
	if raw := ctx.PostBody(); len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			return errServer.with(err, "The request body is not JSON")
		}
	}
	page, err := url.Parse(body.PageURL)
	if err != nil {
		return errInvalidRequest.with(errPageURL, "pageUrl is not a URL")
	}
	q := page.Query()
	switch {
	case q.Has("error"):
		// An error response (RFC 6749 §4.1.2.1), with or without state:
		// anyone can put one in a link to the SPA's page.
		return a.failLogin(ctx, st, req, q)
	case q.Get("state") != "" && q.Get("code") != "":
		return a.finishLogin(ctx, st, req, q)
	}
	// A page load: logged in when P-at opens and the cookies are one live
	// session. csrf comes only from a cookie sealed as a CSRF token (in a
	// legacy format: only a value of the CSRF token's shape), so that no
	// other cookie's plaintext can be read back through this answer.
	resp := map[string]any{"handled": false, "isLoggedIn": false}
	s, err := a.session(st, req, &st.jar.names.AccessToken)
	switch {
	case errors.Is(err, errNoCookie):
		return writeJSON(ctx, resp)
	case err != nil:
		return err
	}
	resp["isLoggedIn"] = true
	if s.csrf != nil {
		resp["csrf"] = string(s.csrf.value)
	}
	return writeJSON(ctx, resp)
}

// loginInProgress checks an authorization response, success or error,
// against the login in progress: P-login must open, its state must be the
// response's (RFC 6749 §10.12) and the iss parameter the issuer (RFC 9207
// §2.4). Every refusal is 400 invalid_request and leaves P-login alone: a
// response that is not the login's own must not end it, or any link to the
// SPA's page with a made-up error would abort a user's login.
func (a *Agent) loginInProgress(st *state, req *request, q url.Values) (*provider, loginState, error) {
	var login loginState
	p, err := providerOf(st)
	if err != nil {
		return nil, login, err
	}
	if err := a.unambiguous(st, req); err != nil {
		return nil, login, err
	}
	o, ok := st.jar.open(req, &st.jar.names.Login)
	if !ok || o.bound() && !o.env.Live(a.now().Unix(), math.MaxInt64) || json.Unmarshal(o.value, &login) != nil || login.State == "" {
		return nil, login, errInvalidRequest.with(errNoCookie, "No login is in progress")
	}
	if state, ok := q["state"]; !ok || len(state) != 1 || subtle.ConstantTimeCompare([]byte(state[0]), []byte(login.State)) != 1 {
		return nil, login, errInvalidRequest.with(errors.New("state mismatch"), "The state does not match the login in progress")
	}
	// RFC 9207 §2.4: the iss parameter must be the issuer, and must be
	// there when the AS says it sends it (in error responses too, §2).
	if iss, ok := q["iss"]; ok {
		if len(iss) != 1 || iss[0] != p.issuer {
			return nil, login, errInvalidRequest.with(errors.New("iss parameter mismatch"), "The authorization response comes from another issuer")
		}
	} else if p.issParam {
		return nil, login, errInvalidRequest.with(errors.New("iss parameter missing"), "The authorization response lacks the iss parameter")
	}
	return p, login, nil
}

// failLogin ends the login in progress with the AS's error response, once
// loginInProgress has shown it is that login's. Only a registered error
// code reaches the SPA and the log; the error_description and error_uri
// never do (they are whatever the link's author wrote, or may quote the
// request).
func (a *Agent) failLogin(ctx *fasthttp.RequestCtx, st *state, req *request, q url.Values) error {
	if _, _, err := a.loginInProgress(st, req, q); err != nil {
		return err
	}
	st.jar.clear(ctx, &req.raw, &st.jar.names.Login, st.jar.loginPath)
	st.metrics.logins("refused").Inc()
	return authorizationResponseError(q.Get("error"))
}

// finishLogin checks the authorization response against P-login, redeems
// the code and validates the ID token, then sets the token cookies.
func (a *Agent) finishLogin(ctx *fasthttp.RequestCtx, st *state, req *request, q url.Values) error {
	p, login, err := a.loginInProgress(st, req, q)
	if err != nil {
		return err
	}

	c, cancel := context.WithTimeout(oauth2Context(context.Background(), st), st.cfg.Timeouts.AS)
	defer cancel()
	tok, err := p.oauth2.Exchange(asEndpoint(c, "token"), q.Get("code"), oauth2.VerifierOption(login.CodeVerifier))
	if err != nil {
		st.metrics.logins("error").Inc()
		return tokenError(err)
	}
	// A new session: a new ID and a new CSRF token, whatever the browser
	// held before (a CSRF cookie planted before the login must not
	// survive it).
	now := a.now().Unix()
	env := session.Envelope{ID: session.NewID(), Started: now, Expires: now + st.maxLifetime}
	rawID, _ := tok.Extra("id_token").(string)
	switch {
	case rawID == "" && openIDScope(st.cfg.Scope):
		// OpenID Connect Core §3.1.3.3: an ID token is REQUIRED in the
		// answer to an openid request.
		st.metrics.logins("invalid_id_token").Inc()
		return errInvalidRequest.with(errors.New("no id_token"), "The Authorization Server returned no ID token")
	case rawID == "":
		// A plain OAuth 2.0 login (no openid in the scope): an OAuth-only
		// session, whose envelope names no one (Sub and SID stay zero).
	default:
		// An ID token is checked whenever there is one, asked for or not.
		id, err := a.verifyIDToken(c, st, p, rawID, login.Nonce)
		if err == nil && (id.Subject == "" || id.IssuedAt.IsZero()) {
			// OpenID Connect Core §2: both are REQUIRED; the session's
			// identity is iss and sub.
			err = errors.New("the ID token has no sub or no iat")
		}
		if err != nil {
			st.metrics.logins("invalid_id_token").Inc()
			return errInvalidRequest.with(err, "The ID token is not valid")
		}
		env.Sub = session.HashSub(id.Issuer, id.Subject)
		if id.sid != "" {
			env.SID = session.HashSID(id.Issuer, id.sid)
		}
	}
	csrf := newCSRFToken()
	if err := a.setTokenCookies(ctx, st, &req.raw, &env, tok.AccessToken, tok.RefreshToken, rawID); err != nil {
		return err
	}
	if err := st.jar.set(ctx, &req.raw, &st.jar.names.CSRF, st.jar.csrfPath, &env, csrf); err != nil {
		return err
	}
	st.jar.clear(ctx, &req.raw, &st.jar.names.Login, st.jar.loginPath)
	st.metrics.logins("ok").Inc()
	return writeJSON(ctx, map[string]any{"handled": true, "isLoggedIn": true, "csrf": string(csrf)})
}

// setTokenCookies writes P-at, and P-auth and P-id when given, for the
// session env.
func (a *Agent) setTokenCookies(ctx *fasthttp.RequestCtx, st *state, req *browser.RawCookies, env *session.Envelope, access, refresh, id string) error {
	j := st.jar
	if err := j.set(ctx, req, &j.names.AccessToken, j.atPath, env, []byte(access)); err != nil {
		return err
	}
	if refresh != "" {
		if err := j.set(ctx, req, &j.names.RefreshToken, j.authPath, env, []byte(refresh)); err != nil {
			return err
		}
	}
	if id != "" {
		if err := j.set(ctx, req, &j.names.IDToken, j.idPath, env, []byte(id)); err != nil {
			return err
		}
	}
	return nil
}

// loginLifetime is how long a started login may take to finish: P-login
// is refused after it.
const loginLifetime = 30 * time.Minute

// idToken is a verified ID token and the claims the session keeps of it.
type idToken struct {
	*oidc.IDToken
	sid string
}

// verifyIDToken checks an ID token (OpenID Connect Core 1.0 §3.1.3.7):
// signature against the JWKS with an algorithm allow-list (go-oidc refuses
// "none"), iss, aud and exp (go-oidc, exp with the clock skew), then nonce
// (when one was sent), azp and iat here.
func (a *Agent) verifyIDToken(ctx context.Context, st *state, p *provider, raw, nonce string) (*idToken, error) {
	return a.checkIDToken(ctx, st, p.verifier, raw, nonce)
}

// checkIDToken is verifyIDToken with a given verifier: /claims re-verifies
// a legacy cookie's ID token with one that skips the expiry.
func (a *Agent) checkIDToken(ctx context.Context, st *state, v *oidc.IDTokenVerifier, raw, nonce string) (*idToken, error) {
	idt, err := v.Verify(oidc.ClientContext(ctx, st.client()), raw)
	if err != nil {
		return nil, err
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, errors.New("nonce mismatch")
	}
	var claims struct {
		AZP string `json:"azp"`
		SID string `json:"sid"`
	}
	if err := idt.Claims(&claims); err != nil {
		return nil, err
	}
	// §3.1.3.7 items 4 and 5: several audiences need azp; azp, when
	// present, must be this client.
	if (len(idt.Audience) > 1 && claims.AZP == "") || (claims.AZP != "" && claims.AZP != st.cfg.ClientID) {
		return nil, errors.New("azp is not this client")
	}
	skew := st.cfg.IDToken.ClockSkew
	if idt.IssuedAt.After(a.now().Add(skew)) {
		return nil, errors.New("iat is in the future")
	}
	return &idToken{IDToken: idt, sid: claims.SID}, nil
}

// userInfo asks the AS's userinfo endpoint with the access token.
func (a *Agent) userInfo(ctx *fasthttp.RequestCtx, st *state, req *request) error {
	s, p, err := a.sessionAndProvider(ctx, st, req, &st.jar.names.AccessToken)
	if err != nil {
		return err
	}
	at := s.at.value
	if p.userinfo == "" {
		return errorf(errServer, "the Authorization Server has no userinfo endpoint")
	}
	c, cancel := context.WithTimeout(asEndpoint(context.Background(), "userinfo"), st.cfg.Timeouts.AS)
	defer cancel()
	// OpenID Connect Core §5.3.1: GET or POST, the token in the
	// Authorization header either way (RFC 6750 §2.1); a POST has an empty
	// form body, as the reference sends it (RFC 6750 §2.2 would put the
	// token in the body, which this never does).
	var r *http.Request
	if st.cfg.UserinfoMethod == http.MethodPost {
		r, err = http.NewRequestWithContext(c, http.MethodPost, p.userinfo, http.NoBody)
		if err == nil {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		r, err = http.NewRequestWithContext(c, http.MethodGet, p.userinfo, nil)
	}
	if err != nil {
		return err
	}
	r.Header.Set("Authorization", "Bearer "+string(at))
	r.Header.Set("Accept", "application/json")
	resp, err := st.client().Do(r)
	if err != nil {
		return errASUnavailable.with(err, "")
	}
	defer resp.Body.Close()
	body, err := readAll(resp)
	switch {
	case err != nil:
		return errASUnavailable.with(err, "")
	case resp.StatusCode == http.StatusUnauthorized:
		return errTokenExpired
	case resp.StatusCode >= 500:
		return errorf(errASUnavailable, "userinfo: status %d", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return authorizationError("").with(fmt.Errorf("userinfo: status %d", resp.StatusCode), "")
	case !json.Valid(body):
		return errorf(errASUnavailable, "userinfo: the answer is not JSON")
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
	return nil
}

// claims returns the ID token's payload, verified when it was received. A
// v2 P-id was sealed as an ID token after its verification; a legacy one
// carries no purpose, so its token is verified again (signature, iss, aud
// and azp; not its expiry, which claims outlive) and nothing but a genuine
// ID token of this client is echoed.
func (a *Agent) claims(ctx *fasthttp.RequestCtx, st *state, req *request) error {
	s, err := a.sessionFor(ctx, st, req)
	if err != nil {
		return err
	}
	if s.id == nil {
		if s.oauthOnly() {
			return errNoIDToken
		}
		return errUnauthorizedRequest.with(errNoCookie, "")
	}
	id := s.id.value
	if !s.id.bound() {
		p, err := providerOf(st)
		if err != nil {
			return err
		}
		c, cancel := context.WithTimeout(context.Background(), st.cfg.Timeouts.AS)
		defer cancel()
		if _, err := a.checkIDToken(c, st, p.claimsVerifier, string(id), ""); err != nil {
			return errUnauthorizedRequest.with(fmt.Errorf("the legacy P-id does not hold a valid ID token: %w", err), "")
		}
	}
	payload := jwtPayload(id)
	if payload == nil || !json.Valid(payload) {
		return errorf(errServer, "the ID token cookie does not hold a JWT")
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(payload)
	return nil
}

// refreshTokens redeems the refresh token (single-flight, with a grace
// period for replays within the same session: refresh.go) and rewrites the
// cookies. The refreshed ID token must name the session's user (OpenID
// Connect Core §12.2); a session in a legacy format is moved to the
// configured format with a new envelope.
func (a *Agent) refreshTokens(ctx *fasthttp.RequestCtx, st *state, req *request) error {
	s, p, err := a.sessionAndProvider(ctx, st, req, &st.jar.names.RefreshToken)
	if err != nil {
		return err
	}
	rt := string(s.auth.value)
	res, err := a.refresh.do(context.Background(), st, p, s.key(), rt)
	if err != nil {
		return err
	}
	if err := a.sameIdentity(s, res.idToken); err != nil {
		a.refresh.drop(st, s.key())
		st.metrics.denied("identity_changed").Inc()
		return errSessionExpired.with(fmt.Errorf("%w: %w", errIdentityChanged, err), "")
	}
	newRT, newID := res.refresh, res.id
	if newRT == rt {
		newRT = "" // not rotated: leave P-auth alone
	}
	if s.oauthOnly() {
		// No login ID token to hold a refreshed one against (OpenID
		// Connect Core §12.2 compares with the original): the session
		// stays OAuth-only, and the ID token is not kept.
		newID = ""
	}
	env := s.env
	if s.legacy && st.jar.codec.Writes() == crypto.FormatV2 {
		// Move the session to v2: all four cookies anew, under one new
		// envelope.
		now := a.now().Unix()
		env = session.Envelope{ID: session.NewID(), Started: now, Expires: now + st.maxLifetime}
		if t := res.idToken; t != nil {
			env.Sub = session.HashSub(t.Issuer, t.Subject)
			if t.sid != "" {
				env.SID = session.HashSID(t.Issuer, t.sid)
			}
		}
		if newRT == "" {
			newRT = rt
		}
		if newID == "" && s.id != nil && a.isIDToken(st, p, s.id) {
			newID = string(s.id.value) // never seal an unchecked value as an ID token
		}
		if err := st.jar.set(ctx, &req.raw, &st.jar.names.CSRF, st.jar.csrfPath, &env, s.csrf.value); err != nil {
			return err
		}
	}
	if err := a.setTokenCookies(ctx, st, &req.raw, &env, res.access, newRT, newID); err != nil {
		return err
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	return nil
}

// sameIdentity checks a refreshed ID token against the session: the same
// iss and sub (the verifier has already checked iss against the issuer and
// that aud holds this client), and the same aud as the ID token it
// replaces. An ID token that names someone else ends the session.
func (a *Agent) sameIdentity(s *userSession, t *idToken) error {
	if t == nil || s.oauthOnly() {
		// An OAuth-only session names no one to compare with; its
		// caller drops the ID token.
		return nil
	}
	if !s.legacy && s.env.Sub != (session.Digest{}) && session.HashSub(t.Issuer, t.Subject) != s.env.Sub {
		return errors.New("the refreshed ID token names another subject")
	}
	if s.id == nil {
		return nil
	}
	var old struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(jwtPayload(s.id.value), &old); err != nil {
		return nil // nothing to compare with
	}
	if old.Iss != t.Issuer || old.Sub != t.Subject || !sameAudience(old.Aud, t.Audience) {
		return errors.New("the refreshed ID token has another iss, sub or aud than the session's")
	}
	return nil
}

// jwtPayload returns the decoded payload of a compact JWT, or nil.
func jwtPayload(jwt []byte) []byte {
	parts := strings.Split(string(jwt), ".")
	if len(parts) != 3 {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	return payload
}

// sameAudience compares an aud claim as written (a string or an array)
// with a parsed audience, as sets.
func sameAudience(raw json.RawMessage, aud []string) bool {
	var list []string
	var one string
	if json.Unmarshal(raw, &one) == nil {
		list = []string{one}
	} else if json.Unmarshal(raw, &list) != nil {
		return false
	}
	if len(list) != len(aud) {
		return false
	}
	for _, x := range list {
		if !slices.Contains(aud, x) {
			return false
		}
	}
	return true
}

// isIDToken reports whether an opened P-id holds an ID token: a v2 one was
// sealed as one; a legacy one, which carries no purpose, must verify as an
// ID token of this client (expiry aside) before it goes into a URL.
func (a *Agent) isIDToken(st *state, p *provider, id *opened) bool {
	if id.bound() {
		return true
	}
	c, cancel := context.WithTimeout(context.Background(), st.cfg.Timeouts.AS)
	defer cancel()
	_, err := a.checkIDToken(c, st, p.claimsVerifier, string(id.value), "")
	return err == nil
}

// logout clears every cookie and returns the end-session URL (OpenID
// Connect RP-Initiated Logout 1.0 §2), revoking the refresh token first when
// configured (RFC 7009), and drops the session's refresh grace.
func (a *Agent) logout(ctx *fasthttp.RequestCtx, st *state, req *request) error {
	s, p, err := a.sessionAndProvider(ctx, st, req, &st.jar.names.AccessToken)
	if err != nil {
		return err
	}
	a.refresh.drop(st, s.key())
	if st.cfg.Logout.RevokeRefreshToken && p.revocation != "" && s.auth != nil {
		c, cancel := context.WithTimeout(asEndpoint(context.Background(), "revocation"), st.cfg.Timeouts.AS)
		status, _, err := p.postForm(c, st.client(), p.revocation, url.Values{"token": {string(s.auth.value)}, "token_type_hint": {"refresh_token"}})
		cancel()
		if err != nil || status != http.StatusOK {
			st.log.Warn().Err(err).Int("status", status).Msg("refresh token revocation failed; logging out anyway")
		}
	}
	logoutURL := ""
	if p.endSession != "" {
		q := url.Values{"client_id": {st.cfg.ClientID}, "state": {randomString(16)}}
		if st.cfg.PostLogoutRedirectURI != "" {
			q.Set("post_logout_redirect_uri", st.cfg.PostLogoutRedirectURI)
		}
		if s.id != nil && a.isIDToken(st, p, s.id) {
			q.Set("id_token_hint", string(s.id.value))
		}
		sep := "?"
		if strings.Contains(p.endSession, "?") {
			sep = "&"
		}
		logoutURL = p.endSession + sep + q.Encode()
	}
	st.jar.clearAll(ctx, &req.raw)
	return writeJSON(ctx, map[string]string{"url": logoutURL})
}

// oauth2Context makes x/oauth2 use the agent's back-channel client. Every
// back-channel call derives from context.Background, never from the
// fasthttp.RequestCtx: fasthttp reuses that after the handler returns, while
// a context's timer may still read it.
func oauth2Context(ctx context.Context, st *state) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, st.client())
}

// tokenError maps a token-endpoint failure: AS 4xx → 400
// authorization_error (invalid_grant on refresh is handled by the caller),
// 5xx, garbage and network errors → 502.
func tokenError(err error) *apiError {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 && re.ErrorCode != "" {
		return asRefusal(re.ErrorCode).with(safeError(err), "")
	}
	return errASUnavailable.with(safeError(err), "")
}

// safeError describes a token-endpoint failure for the log by status and
// OAuth error code only: x/oauth2's own message quotes the answer's body.
func safeError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return fmt.Errorf("token endpoint: status %d, error %q", re.Response.StatusCode, oauthErrorCode(re.ErrorCode))
	}
	return err
}

func readAll(resp *http.Response) ([]byte, error) {
	return io.ReadAll(io.LimitReader(resp.Body, maxASBody))
}

func writeJSON(ctx *fasthttp.RequestCtx, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
	return nil
}
