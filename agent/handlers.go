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
	"net/http"
	"net/url"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/valyala/fasthttp"
	"golang.org/x/oauth2"

	"github.com/tokenhandler/tokenhandler/browser"
)

// loginState is the P-login cookie's content: what login/end needs to
// finish the flow it started. Field names are the reference's.
type loginState struct {
	State        string `json:"state"`
	Nonce        string `json:"nonce"`
	CodeVerifier string `json:"codeVerifier"`
}

// reserved are the authorization request parameters extraParams may not
// set: the ones that bind the response to this login.
var reserved = map[string]bool{
	"client_id": true, "redirect_uri": true, "response_type": true, "state": true, "nonce": true,
	"code_challenge": true, "code_challenge_method": true, "request_uri": true, "request": true, "response_mode": true,
}

// randomString returns n random bytes as unpadded base64url.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// loginStart builds the authorization request URL (PKCE S256, state and
// nonce of 256 bits, RFC 7636 §4.1) and keeps the secrets in P-login.
func (a *Agent) loginStart(ctx *fasthttp.RequestCtx, st *state, req *browser.RawCookies) error {
	p, err := providerOf(st)
	if err != nil {
		return err
	}
	var body struct {
		ExtraParams []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"extraParams"`
	}
	// The reference sends some requests without a JSON body; a body that is
	// not JSON is ignored.
	_ = json.Unmarshal(ctx.PostBody(), &body)

	login := loginState{State: randomString(32), Nonce: randomString(32), CodeVerifier: oauth2.GenerateVerifier()}
	params := url.Values{
		"response_type":         {"code"},
		"client_id":             {p.oauth2.ClientID},
		"redirect_uri":          {p.oauth2.RedirectURL},
		"scope":                 {strings.Join(p.oauth2.Scopes, " ")},
		"state":                 {login.State},
		"nonce":                 {login.Nonce},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(login.CodeVerifier)},
		"code_challenge_method": {"S256"},
	}
	for _, kv := range body.ExtraParams {
		if kv.Key == "" || reserved[kv.Key] {
			return errInvalidRequest.with(fmt.Errorf("extraParams may not set %q", kv.Key), "extraParams may not set "+kv.Key)
		}
		params.Set(kv.Key, kv.Value)
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

	state, _ := json.Marshal(login)
	if err := st.jar.set(ctx, req, &st.jar.names.Login, st.jar.loginPath, state); err != nil {
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
	c, cancel := context.WithTimeout(context.Background(), st.cfg.Timeouts.AS)
	defer cancel()
	start := a.now()
	status, body, err := p.postForm(c, st.client, p.par, params)
	a.metrics.asCall("par", start, a.now(), status, err)
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

// loginEnd finishes a login when pageUrl carries an authorization response,
// or tells the SPA on a page load whether it is logged in (SPEC §5).
func (a *Agent) loginEnd(ctx *fasthttp.RequestCtx, st *state, req *browser.RawCookies) error {
	var body struct {
		PageURL string `json:"pageUrl"`
	}
	// No body is a page load; a body that is not JSON is the SPEC §5
	// server_error for malformed JSON.
	if raw := ctx.PostBody(); len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			return errServer.with(err, "The request body is not JSON")
		}
	}
	page, err := url.Parse(body.PageURL)
	if err != nil {
		return errInvalidRequest.with(err, "pageUrl is not a URL")
	}
	q := page.Query()
	switch {
	case q.Get("state") != "" && q.Get("code") != "":
		return a.finishLogin(ctx, st, req, q)
	case q.Get("state") != "" && q.Get("error") != "":
		st.jar.clear(ctx, req, &st.jar.names.Login, st.jar.loginPath)
		return authorizationError(q.Get("error"), q.Get("error_description"))
	}
	loggedIn := st.jar.open(req, &st.jar.names.AccessToken) != nil
	resp := map[string]any{"handled": false, "isLoggedIn": loggedIn}
	if loggedIn {
		if csrf := st.jar.open(req, &st.jar.names.CSRF); csrf != nil {
			resp["csrf"] = string(csrf)
		}
	}
	return writeJSON(ctx, resp)
}

// finishLogin checks the authorization response against P-login, redeems
// the code and validates the ID token, then sets the token cookies.
func (a *Agent) finishLogin(ctx *fasthttp.RequestCtx, st *state, req *browser.RawCookies, q url.Values) error {
	p, err := providerOf(st)
	if err != nil {
		return err
	}
	var login loginState
	raw := st.jar.open(req, &st.jar.names.Login)
	if raw == nil || json.Unmarshal(raw, &login) != nil {
		return errInvalidRequest.with(errNoCookie, "No login is in progress")
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(login.State)) != 1 {
		return errInvalidRequest.with(errors.New("state mismatch"), "The state does not match the login in progress")
	}
	// RFC 9207 §2.4: the iss parameter must be the issuer, and must be
	// there when the AS says it sends it.
	if iss, ok := q["iss"]; ok {
		if len(iss) != 1 || iss[0] != p.issuer {
			return errInvalidRequest.with(errors.New("iss parameter mismatch"), "The authorization response comes from another issuer")
		}
	} else if p.issParam {
		return errInvalidRequest.with(errors.New("iss parameter missing"), "The authorization response lacks the iss parameter")
	}

	c, cancel := context.WithTimeout(oauth2Context(context.Background(), st), st.cfg.Timeouts.AS)
	defer cancel()
	start := a.now()
	tok, err := p.oauth2.Exchange(c, q.Get("code"), oauth2.VerifierOption(login.CodeVerifier))
	a.metrics.asCall("token", start, a.now(), retrieveStatus(err), transportError(err))
	if err != nil {
		a.metrics.logins("error").Inc()
		return tokenError(err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return errInvalidRequest.with(errors.New("no id_token"), "The Authorization Server returned no ID token")
	}
	if err := a.verifyIDToken(c, st, p, rawID, login.Nonce); err != nil {
		a.metrics.logins("invalid_id_token").Inc()
		return errInvalidRequest.with(err, "The ID token is not valid")
	}

	csrf := st.jar.open(req, &st.jar.names.CSRF)
	if len(csrf) == 0 {
		csrf = []byte(randomString(32))
	}
	if err := a.setTokenCookies(ctx, st, req, tok.AccessToken, tok.RefreshToken, rawID); err != nil {
		return err
	}
	if err := st.jar.set(ctx, req, &st.jar.names.CSRF, st.jar.csrfPath, csrf); err != nil {
		return err
	}
	st.jar.clear(ctx, req, &st.jar.names.Login, st.jar.loginPath)
	a.metrics.logins("ok").Inc()
	return writeJSON(ctx, map[string]any{"handled": true, "isLoggedIn": true, "csrf": string(csrf)})
}

// setTokenCookies writes P-at, and P-auth and P-id when given.
func (a *Agent) setTokenCookies(ctx *fasthttp.RequestCtx, st *state, req *browser.RawCookies, access, refresh, id string) error {
	j := st.jar
	if err := j.set(ctx, req, &j.names.AccessToken, j.atPath, []byte(access)); err != nil {
		return err
	}
	if refresh != "" {
		if err := j.set(ctx, req, &j.names.RefreshToken, j.authPath, []byte(refresh)); err != nil {
			return err
		}
	}
	if id != "" {
		if err := j.set(ctx, req, &j.names.IDToken, j.idPath, []byte(id)); err != nil {
			return err
		}
	}
	return nil
}

// verifyIDToken checks an ID token (OpenID Connect Core 1.0 §3.1.3.7):
// signature against the JWKS with an algorithm allow-list (go-oidc refuses
// "none"), iss, aud and exp (go-oidc, exp with the clock skew), then nonce
// (when one was sent), azp and iat here.
func (a *Agent) verifyIDToken(ctx context.Context, st *state, p *provider, raw, nonce string) error {
	idt, err := p.verifier.Verify(oidc.ClientContext(ctx, st.client), raw)
	if err != nil {
		return err
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return errors.New("nonce mismatch")
	}
	var claims struct {
		AZP string `json:"azp"`
	}
	if err := idt.Claims(&claims); err != nil {
		return err
	}
	// §3.1.3.7 items 4 and 5: several audiences need azp; azp, when
	// present, must be this client.
	if (len(idt.Audience) > 1 && claims.AZP == "") || (claims.AZP != "" && claims.AZP != st.cfg.ClientID) {
		return errors.New("azp is not this client")
	}
	skew := st.cfg.IDToken.ClockSkew
	if idt.IssuedAt.After(a.now().Add(skew)) {
		return errors.New("iat is in the future")
	}
	return nil
}

// userInfo asks the AS's userinfo endpoint with the access token.
func (a *Agent) userInfo(ctx *fasthttp.RequestCtx, st *state, req *browser.RawCookies) error {
	at := st.jar.open(req, &st.jar.names.AccessToken)
	if at == nil {
		return errUnauthorizedRequest.with(errNoCookie, "")
	}
	p, err := providerOf(st)
	if err != nil {
		return err
	}
	if p.userinfo == "" {
		return errorf(errServer, "the Authorization Server has no userinfo endpoint")
	}
	c, cancel := context.WithTimeout(context.Background(), st.cfg.Timeouts.AS)
	defer cancel()
	r, err := http.NewRequestWithContext(c, http.MethodGet, p.userinfo, nil)
	if err != nil {
		return err
	}
	r.Header.Set("Authorization", "Bearer "+string(at))
	r.Header.Set("Accept", "application/json")
	start := a.now()
	resp, err := st.client.Do(r)
	if err != nil {
		a.metrics.asCall("userinfo", start, a.now(), 0, err)
		return errASUnavailable.with(err, "")
	}
	defer resp.Body.Close()
	a.metrics.asCall("userinfo", start, a.now(), resp.StatusCode, nil)
	body, err := readAll(resp)
	switch {
	case err != nil:
		return errASUnavailable.with(err, "")
	case resp.StatusCode == http.StatusUnauthorized:
		return errTokenExpired
	case resp.StatusCode >= 500:
		return errorf(errASUnavailable, "userinfo: status %d", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return authorizationError("authorization_error", "").with(fmt.Errorf("userinfo: status %d", resp.StatusCode), "")
	case !json.Valid(body):
		return errorf(errASUnavailable, "userinfo: the answer is not JSON")
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
	return nil
}

// claims returns the ID token's payload, verified when it was received.
func (a *Agent) claims(ctx *fasthttp.RequestCtx, st *state, req *browser.RawCookies) error {
	id := st.jar.open(req, &st.jar.names.IDToken)
	if id == nil {
		return errUnauthorizedRequest.with(errNoCookie, "")
	}
	parts := strings.Split(string(id), ".")
	if len(parts) != 3 {
		return errorf(errServer, "the ID token cookie does not hold a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || !json.Valid(payload) {
		return errorf(errServer, "the ID token cookie does not hold a JWT")
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(payload)
	return nil
}

// refreshTokens redeems the refresh token (single-flight, with a grace
// period for replays: refresh.go) and rewrites the cookies.
func (a *Agent) refreshTokens(ctx *fasthttp.RequestCtx, st *state, req *browser.RawCookies) error {
	if err := checkCSRF(ctx, st, req); err != nil {
		return err
	}
	rt := st.jar.open(req, &st.jar.names.RefreshToken)
	if rt == nil {
		return errUnauthorizedRequest.with(errNoCookie, "")
	}
	p, err := providerOf(st)
	if err != nil {
		return err
	}
	res, err := a.refresh.do(context.Background(), st, p, string(rt))
	if err != nil {
		return err
	}
	newRT := res.refresh
	if newRT == string(rt) {
		newRT = "" // not rotated: leave P-auth alone
	}
	if err := a.setTokenCookies(ctx, st, req, res.access, newRT, res.id); err != nil {
		return err
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	return nil
}

// logout clears every cookie and returns the end-session URL (OpenID
// Connect RP-Initiated Logout 1.0 §2), revoking the refresh token first when
// configured (RFC 7009).
func (a *Agent) logout(ctx *fasthttp.RequestCtx, st *state, req *browser.RawCookies) error {
	if err := checkCSRF(ctx, st, req); err != nil {
		return err
	}
	if st.jar.open(req, &st.jar.names.AccessToken) == nil {
		return errUnauthorizedRequest.with(errNoCookie, "")
	}
	p, err := providerOf(st)
	if err != nil {
		return err
	}
	if st.cfg.Logout.RevokeRefreshToken && p.revocation != "" {
		if rt := st.jar.open(req, &st.jar.names.RefreshToken); rt != nil {
			c, cancel := context.WithTimeout(context.Background(), st.cfg.Timeouts.AS)
			start := a.now()
			status, _, err := p.postForm(c, st.client, p.revocation, url.Values{"token": {string(rt)}, "token_type_hint": {"refresh_token"}})
			cancel()
			a.metrics.asCall("revocation", start, a.now(), status, err)
			if err != nil || status != http.StatusOK {
				st.log.Warn().Err(err).Int("status", status).Msg("refresh token revocation failed; logging out anyway")
			}
		}
	}
	logoutURL := ""
	if p.endSession != "" {
		q := url.Values{"client_id": {st.cfg.ClientID}, "state": {randomString(16)}}
		if st.cfg.PostLogoutRedirectURI != "" {
			q.Set("post_logout_redirect_uri", st.cfg.PostLogoutRedirectURI)
		}
		if id := st.jar.open(req, &st.jar.names.IDToken); id != nil {
			q.Set("id_token_hint", string(id))
		}
		sep := "?"
		if strings.Contains(p.endSession, "?") {
			sep = "&"
		}
		logoutURL = p.endSession + sep + q.Encode()
	}
	st.jar.clearAll(ctx, req)
	return writeJSON(ctx, map[string]string{"url": logoutURL})
}

// oauth2Context makes x/oauth2 use the agent's back-channel client. Every
// back-channel call derives from context.Background, never from the
// fasthttp.RequestCtx: fasthttp reuses that after the handler returns, while
// a context's timer may still read it.
func oauth2Context(ctx context.Context, st *state) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, st.client)
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

func retrieveStatus(err error) int {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	if err == nil {
		return 200
	}
	return 0
}

// transportError is err unless it is an answer from the AS.
func transportError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return nil
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
