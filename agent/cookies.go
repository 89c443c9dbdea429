package agent

import (
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/crypto"
)

// jar writes the token-handler cookies of one configuration: names, paths
// (SPEC §4) and attributes. It is immutable and safe for concurrent use.
type jar struct {
	names  browser.Names
	keys   *crypto.Keyring
	format crypto.Format
	// attrs is "; HttpOnly; Secure; SameSite=…[; Domain=…]" and maxAge
	// "; Max-Age=N" or "".
	attrs, maxAge string
	// The Path of each cookie.
	loginPath, atPath, authPath, idPath, csrfPath string
}

func newJar(cfg *Config, names browser.Names) *jar {
	sameSite := "Strict"
	if cfg.Cookie.SameSite == "lax" {
		sameSite = "Lax"
	}
	attrs := "; HttpOnly; Secure; SameSite=" + sameSite
	if cfg.Cookie.Domain != "" {
		attrs += "; Domain=" + cfg.Cookie.Domain
	}
	maxAge := ""
	if cfg.Cookie.MaxAge > 0 {
		maxAge = "; Max-Age=" + strconv.Itoa(int(cfg.Cookie.MaxAge.Seconds()))
	}
	base := cfg.Cookie.BasePath
	if base == "" {
		base = "/"
	}
	agentBase := cfg.BasePath
	authPath := agentBase + "/refresh"
	if cfg.Logout.RevokeRefreshToken {
		authPath = agentBase // logout reads it to revoke it
	}
	j := &jar{
		names: names, keys: cfg.Keys, format: cfg.CookieFormat, attrs: attrs, maxAge: maxAge,
		loginPath: base, atPath: base, authPath: authPath, idPath: agentBase, csrfPath: base,
	}
	if cfg.Cookie.HostPrefix { // __Host- cookies must have Path=/ (RFC 6265bis §4.1.3.2)
		j.loginPath, j.atPath, j.authPath, j.idPath, j.csrfPath = "/", "/", "/", "/", "/"
	}
	return j
}

// set seals value into cookie c with the given Path, splitting it into
// chunks when one Set-Cookie would pass browser.MaxSetCookie, and clears
// whatever the request holds of c that this answer does not overwrite (the
// whole cookie when chunked now, stale chunks otherwise).
func (j *jar) set(ctx *fasthttp.RequestCtx, req *browser.RawCookies, c *browser.Cookie, path string, value []byte) error {
	sealed, err := j.keys.Seal(nil, value, j.format)
	if err != nil {
		return err
	}
	attrs := "; Path=" + path + j.attrs + j.maxAge
	// The longest chunk name is Name.7: two bytes over Name.
	room := browser.MaxSetCookie - len(c.Name) - 2 - 1 - len(attrs)
	n, ok := browser.Split(len(sealed), room)
	if !ok {
		return errorf(errServer, "a %s value of %d bytes needs more than %d cookies", c.Name, len(sealed), browser.MaxChunks)
	}
	if n == 1 && len(c.Name)+1+len(sealed)+len(attrs) <= browser.MaxSetCookie {
		addSetCookie(ctx, c.Name, string(sealed), attrs)
		j.clearChunks(ctx, req, c, path, 0)
		return nil
	}
	n = max(n, 2)
	per := (len(sealed) + n - 1) / n
	for i := range n {
		chunk := sealed[i*per : min((i+1)*per, len(sealed))]
		addSetCookie(ctx, c.Chunk(i), string(chunk), attrs)
	}
	if req.Cookie(c.Name) != nil {
		j.clearOne(ctx, c.Name, path)
	}
	j.clearChunks(ctx, req, c, path, n)
	return nil
}

// clear clears cookie c, and every chunk of it the request holds.
func (j *jar) clear(ctx *fasthttp.RequestCtx, req *browser.RawCookies, c *browser.Cookie, path string) {
	j.clearOne(ctx, c.Name, path)
	j.clearChunks(ctx, req, c, path, 0)
}

// clearChunks clears chunks from index from on that the request holds.
func (j *jar) clearChunks(ctx *fasthttp.RequestCtx, req *browser.RawCookies, c *browser.Cookie, path string, from int) {
	for i := from; i < browser.MaxChunks; i++ {
		if req.Cookie(c.Chunk(i)) != nil {
			j.clearOne(ctx, c.Chunk(i), path)
		}
	}
}

// clearOne expires a cookie with the Path and Domain it was set with: a
// cookie is only replaced by one of the same name, path and domain
// (RFC 6265 §5.3 step 11), which the reference gets wrong for path-scoped
// cookies.
func (j *jar) clearOne(ctx *fasthttp.RequestCtx, name, path string) {
	addSetCookie(ctx, name, "", "; Path="+path+j.attrs+"; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
}

// clearAll clears every token-handler cookie.
func (j *jar) clearAll(ctx *fasthttp.RequestCtx, req *browser.RawCookies) {
	j.clear(ctx, req, &j.names.AccessToken, j.atPath)
	j.clear(ctx, req, &j.names.RefreshToken, j.authPath)
	j.clear(ctx, req, &j.names.IDToken, j.idPath)
	j.clear(ctx, req, &j.names.CSRF, j.csrfPath)
	if req.Cookie(j.names.Login.Name) != nil {
		j.clear(ctx, req, &j.names.Login, j.loginPath)
	}
}

// open returns the decrypted value of cookie c (chunks reassembled), or nil.
func (j *jar) open(req *browser.RawCookies, c *browser.Cookie) []byte {
	sealed, ok := c.AppendValue(nil, req)
	if !ok || len(sealed) == 0 {
		return nil
	}
	plain, err := j.keys.Open(nil, sealed)
	if err != nil {
		return nil
	}
	return plain
}

func addSetCookie(ctx *fasthttp.RequestCtx, name, value, attrs string) {
	var b strings.Builder
	b.Grow(len(name) + 1 + len(value) + len(attrs))
	b.WriteString(name)
	b.WriteByte('=')
	b.WriteString(value)
	b.WriteString(attrs)
	ctx.Response.Header.Add(fasthttp.HeaderSetCookie, b.String())
}
