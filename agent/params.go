package agent

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// DefaultExtraParamsAllowed are the authorization request parameters an SPA
// may add with login/start's extraParams when extra_params_allowed is left
// out: the ones OpenID Connect Core §3.1.2.1 defines for the user's
// experience of the login, none of which can widen what the tokens grant.
// RFC 10017 §6.1 (the BFF pattern) leaves the authorization request to the
// backend; an allow-list keeps what the SPA may put in it to what the
// operator chose.
var DefaultExtraParamsAllowed = []string{"prompt", "login_hint", "ui_locales", "acr_values", "max_age", "display"}

// reservedParams are the authorization request parameters the agent sets
// itself or that bind the response to this login and this client (RFC 6749
// §4.1.1, RFC 7636 §4.3, OpenID Connect Core §3.1.2.1, RFC 9101 §5, RFC
// 9126 §2.1), and client authentication (RFC 6749 §2.3.1, RFC 7523 §2.2),
// which a pushed request would carry to the PAR endpoint. extraParams never
// sets one, whatever extra_params_allowed says, and the configuration file
// refuses to list one.
var reservedParams = []string{
	"client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "request", "request_uri", "response_mode",
	"client_secret", "client_assertion", "client_assertion_type",
	"grant_type", "code", "code_verifier", "refresh_token",
}

// reserved reports whether the agent sets parameter name itself, in any
// case: some servers match parameter names without regard to case, so
// extra_params_allowed may not list "Redirect_Uri" either.
func reserved(name string) bool {
	return slices.ContainsFunc(reservedParams, func(r string) bool { return strings.EqualFold(r, name) })
}

// extraParam is one entry of login/start's extraParams, as the reference's
// SPA sends it.
type extraParam struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// addExtraParams adds the SPA's extraParams to the authorization request
// params. A parameter that the agent sets itself, that is not on the
// allow-list, that comes twice or has no name is refused with 400
// invalid_request; the error (and so the log line) names the parameter but
// never quotes its value, which may be a user's login hint.
func addExtraParams(params url.Values, extra []extraParam, allowed []string) error {
	if allowed == nil {
		allowed = DefaultExtraParamsAllowed
	}
	seen := make(map[string]bool, len(extra))
	for _, kv := range extra {
		name := kv.Key
		switch {
		case name == "":
			return errInvalidRequest.with(fmt.Errorf("extraParams: a parameter without a name"), "extraParams: a parameter has no name")
		case reserved(name):
			return errInvalidRequest.with(fmt.Errorf("extraParams: parameter %q is set by the agent", shorten(name)), "extraParams may not set "+shorten(name)+": the agent sets it")
		case !slices.Contains(allowed, name):
			return errInvalidRequest.with(fmt.Errorf("extraParams: parameter %q is not in extra_params_allowed", shorten(name)), "extraParams may not set "+shorten(name)+": it is not allowed")
		case seen[name]:
			return errInvalidRequest.with(fmt.Errorf("extraParams: parameter %q comes twice", shorten(name)), "extraParams sets "+shorten(name)+" twice")
		}
		seen[name] = true
		params.Set(name, kv.Value)
	}
	return nil
}

// shorten cuts a name the SPA sent to what a log line or message needs.
func shorten(s string) string {
	const most = 64
	if len(s) <= most {
		return s
	}
	return s[:most] + "…"
}
