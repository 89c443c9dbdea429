package devidp

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"

	"github.com/tokenhandler/tokenhandler/internal/oidcfake"
)

// The login page's form, as pages.go writes it.
var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	formID     = regexp.MustCompile(`<input type="hidden" name="request_id" value="([^"]*)">`)
)

// Login plays the browser on the development IdP, for tests and smoke
// checks: it GETs authorizationURL and, when the answer is the login page,
// POSTs its form as username (a demo user's subject, or "" to cancel). It
// returns the redirect the provider answered with: the client's redirect URI
// with code, state and iss, or with error, error_description, state and iss
// (also when the authorization request was refused before the login page).
// Any other answer is an error.
//
// client makes the two requests (oidcfake.Follow); nil means
// http.DefaultClient.
func Login(ctx context.Context, client *http.Client, authorizationURL, username string) (*url.URL, error) {
	loc, body, err := oidcfake.Follow(ctx, client, authorizationURL, nil)
	if err != nil || loc != nil {
		return loc, err
	}
	action, id := formAction.FindStringSubmatch(body), formID.FindStringSubmatch(body)
	if action == nil || id == nil {
		return nil, errors.New("devidp: login: the answer is not the login page")
	}
	target, err := url.Parse(authorizationURL) // Follow parsed it
	if err == nil {
		target, err = target.Parse(html.UnescapeString(action[1]))
	}
	if err != nil {
		return nil, fmt.Errorf("devidp: login: form action: %w", err)
	}
	form := url.Values{"request_id": {html.UnescapeString(id[1])}}
	if username == "" {
		form.Set("cancel", "1")
	} else {
		form.Set("username", username)
	}
	loc, body, err = oidcfake.Follow(ctx, client, target.String(), form)
	if err == nil && loc == nil {
		err = fmt.Errorf("devidp: login as %q: no redirect: %.200s", username, body)
	}
	return loc, err
}
