package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// provider is what the agent knows of the Authorization Server: its
// endpoints (discovery, then the configured overrides) and an ID-token
// verifier on its JWKS. It is immutable once built.
type provider struct {
	issuer   string
	oauth2   oauth2.Config
	verifier *oidc.IDTokenVerifier
	// claimsVerifier is verifier without the expiry check, for /claims on
	// a legacy P-id: the claims outlive the token's exp.
	claimsVerifier *oidc.IDTokenVerifier
	// logoutVerifier checks a logout token's signature, iss and aud
	// (backchannel.go checks the rest, exp among it: a logout token
	// without exp is checked by its iat).
	logoutVerifier *oidc.IDTokenVerifier
	userinfo       string
	endSession     string
	par            string
	revocation     string
	// requirePAR and issParam are the AS metadata flags of RFC 9126 §5 and
	// RFC 9207 §3.
	requirePAR bool
	issParam   bool
}

// metadata is the part of the discovery document (OpenID Connect Discovery
// 1.0 §3, RFC 8414) the agent reads.
type metadata struct {
	Issuer                  string `json:"issuer"`
	AuthorizationEndpoint   string `json:"authorization_endpoint"`
	TokenEndpoint           string `json:"token_endpoint"`
	UserinfoEndpoint        string `json:"userinfo_endpoint"`
	JWKSURI                 string `json:"jwks_uri"`
	EndSessionEndpoint      string `json:"end_session_endpoint"`
	PAREndpoint             string `json:"pushed_authorization_request_endpoint"`
	RevocationEndpoint      string `json:"revocation_endpoint"`
	RequirePAR              bool   `json:"require_pushed_authorization_requests"`
	AuthorizationIssParamOK bool   `json:"authorization_response_iss_parameter_supported"`
}

// newHTTPClient is the back-channel client: a timeout on every call, names
// under .localhost dialled on loopback (RFC 6761 §6.3), which Go's resolver
// does not do, and every call counted in m (asTransport).
func newHTTPClient(timeout time.Duration, m *agentMetrics) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, err := net.SplitHostPort(addr); err == nil && isLocalhost(host) {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: &asTransport{base: tr, metrics: m},
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a back-channel answer is never a redirect to follow
		},
	}
}

func isLocalhost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// discover builds the provider: discovery when an issuer is configured,
// then the configured endpoint overrides.
func discover(ctx context.Context, cfg *Config, client *http.Client, now func() time.Time) (*provider, error) {
	if cfg.Issuer == "" {
		// Without an issuer no ID token's iss can be checked.
		return nil, errors.New("agent: an issuer is required to verify ID tokens")
	}
	var m metadata
	{
		wellKnown := strings.TrimSuffix(cfg.Issuer, "/") + "/.well-known/openid-configuration"
		if err := getJSON(asEndpoint(ctx, "discovery"), client, wellKnown, &m); err != nil {
			return nil, fmt.Errorf("agent: discovery: %w", err)
		}
		// OpenID Connect Discovery 1.0 §4.3: the issuer must be the one asked for.
		if m.Issuer != cfg.Issuer {
			return nil, fmt.Errorf("agent: discovery: the document's issuer %q is not the configured issuer %q", m.Issuer, cfg.Issuer)
		}
	}
	e := cfg.Endpoints
	override := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	override(&m.AuthorizationEndpoint, e.Authorization)
	override(&m.TokenEndpoint, e.Token)
	override(&m.UserinfoEndpoint, e.Userinfo)
	override(&m.JWKSURI, e.JWKSURI)
	override(&m.EndSessionEndpoint, e.EndSession)
	override(&m.PAREndpoint, e.PAR)
	override(&m.RevocationEndpoint, e.Revocation)
	if m.AuthorizationEndpoint == "" || m.TokenEndpoint == "" || m.JWKSURI == "" {
		return nil, errors.New("agent: discovery: the Authorization Server has no authorization_endpoint, token_endpoint or jwks_uri")
	}
	if cfg.PAR == "always" && m.PAREndpoint == "" {
		return nil, errors.New("agent: par is always, but the Authorization Server has no pushed_authorization_request_endpoint")
	}
	style := oauth2.AuthStyleInHeader
	if cfg.ClientAuthMethod == "client_secret_post" {
		style = oauth2.AuthStyleInParams
	}
	keys := newLimitedKeySet(m.JWKSURI, client, now)
	skew := cfg.IDToken.ClockSkew
	return &provider{
		claimsVerifier: oidc.NewVerifier(cfg.Issuer, keys, &oidc.Config{
			ClientID:             cfg.ClientID,
			SupportedSigningAlgs: cfg.IDToken.AllowedAlgs,
			SkipExpiryCheck:      true,
		}),
		logoutVerifier: oidc.NewVerifier(cfg.Issuer, keys, &oidc.Config{
			ClientID:             cfg.ClientID,
			SupportedSigningAlgs: cfg.IDToken.AllowedAlgs,
			SkipExpiryCheck:      true,
		}),
		issuer: cfg.Issuer,
		oauth2: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     oauth2.Endpoint{AuthURL: m.AuthorizationEndpoint, TokenURL: m.TokenEndpoint, AuthStyle: style},
			RedirectURL:  cfg.RedirectURI,
			Scopes:       strings.Fields(cfg.Scope),
		},
		verifier: oidc.NewVerifier(cfg.Issuer, keys, &oidc.Config{
			ClientID:             cfg.ClientID,
			SupportedSigningAlgs: cfg.IDToken.AllowedAlgs,
			// go-oidc compares exp with Now without leeway: moving Now back
			// by the skew accepts tokens that expired that little ago.
			Now: func() time.Time { return now().Add(-skew) },
		}),
		userinfo:   m.UserinfoEndpoint,
		endSession: m.EndSessionEndpoint,
		par:        m.PAREndpoint,
		revocation: m.RevocationEndpoint,
		requirePAR: m.RequirePAR,
		issParam:   m.AuthorizationIssParamOK,
	}, nil
}

// maxASBody bounds what the agent reads of any Authorization Server answer.
const maxASBody = 1 << 20

// getJSON GETs url and decodes a 200 JSON answer into v.
func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxASBody))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// postForm POSTs a form to an AS endpoint with the client's authentication
// (RFC 6749 §2.3.1) and returns the status and body.
func (p *provider) postForm(ctx context.Context, client *http.Client, endpoint string, form url.Values) (int, []byte, error) {
	if p.oauth2.Endpoint.AuthStyle == oauth2.AuthStyleInParams {
		form.Set("client_id", p.oauth2.ClientID)
		form.Set("client_secret", p.oauth2.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if p.oauth2.Endpoint.AuthStyle == oauth2.AuthStyleInHeader {
		req.SetBasicAuth(url.QueryEscape(p.oauth2.ClientID), url.QueryEscape(p.oauth2.ClientSecret))
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxASBody))
	return resp.StatusCode, body, err
}
