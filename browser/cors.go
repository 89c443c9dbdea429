package browser

import (
	"strconv"
	"strings"
)

// DefaultAllowMethods answers preflights when no allow_methods are configured.
var DefaultAllowMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// Headers writes response headers; *fasthttp.ResponseHeader is one.
type Headers interface {
	Set(key, value string)
	SetBytesV(key string, value []byte)
	Add(key, value string)
}

// CORS writes the CORS response headers for trusted origins: the exact origin
// echoed, credentials allowed, never "*" (contract §5, §6 step 1 and 7).
//
// A CORS is immutable after NewCORS and safe for concurrent use.
type CORS struct {
	enabled       bool
	allowMethods  string
	allowHeaders  string // "" echoes Access-Control-Request-Headers
	exposeHeaders string
	maxAge        string // "" when max_age is 0: the header is left out
}

// NewCORS precomputes the header values. Empty methods means
// DefaultAllowMethods; empty headers means echo the preflight's requested
// headers; maxAge is in seconds, and 0 leaves Access-Control-Max-Age out,
// as the reference does (a browser then caches the preflight for its
// default of 5 seconds, Fetch §4.8).
func NewCORS(enabled bool, methods, headers, expose []string, maxAge int) *CORS {
	if len(methods) == 0 {
		methods = DefaultAllowMethods
	}
	age := ""
	if maxAge != 0 {
		age = strconv.Itoa(maxAge)
	}
	return &CORS{
		enabled:       enabled,
		allowMethods:  strings.Join(methods, ", "),
		allowHeaders:  strings.Join(headers, ", "),
		exposeHeaders: strings.Join(expose, ", "),
		maxAge:        age,
	}
}

// Enabled reports whether CORS is on.
func (c *CORS) Enabled() bool { return c.enabled }

// Preflight writes the answer to an OPTIONS preflight. Only a trusted origin
// gets CORS headers; Vary: Origin is always written, since the answer depends
// on it.
func (c *CORS) Preflight(h Headers, origin []byte, trusted bool, requestHeaders []byte) {
	h.Add("Vary", "Origin")
	if !trusted {
		return
	}
	h.SetBytesV("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Set("Access-Control-Allow-Methods", c.allowMethods)
	if c.allowHeaders != "" {
		h.Set("Access-Control-Allow-Headers", c.allowHeaders)
	} else if len(requestHeaders) > 0 {
		h.SetBytesV("Access-Control-Allow-Headers", requestHeaders)
	}
	if c.exposeHeaders != "" {
		h.Set("Access-Control-Expose-Headers", c.exposeHeaders)
	}
	if c.maxAge != "" {
		h.Set("Access-Control-Max-Age", c.maxAge)
	}
}

// Response writes the CORS headers of an actual (non-preflight) response,
// error responses included, when CORS is enabled.
func (c *CORS) Response(h Headers, origin []byte, trusted bool) {
	if !c.enabled {
		return
	}
	h.Add("Vary", "Origin")
	if !trusted {
		return
	}
	h.SetBytesV("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	if c.exposeHeaders != "" {
		h.Set("Access-Control-Expose-Headers", c.exposeHeaders)
	}
}
