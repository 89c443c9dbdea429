package agent

import (
	"slices"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/browser"
	"github.com/tokenhandler/tokenhandler/session"
)

// jar writes the token-handler cookies of one configuration: names, paths
// (contract §4) and attributes. It is immutable and safe for concurrent use.
type jar struct {
	names browser.Names
	codec *session.Codec
	// attrs is "; HttpOnly; Secure; SameSite=…[; Domain=…]" and maxAge
	// "; Max-Age=N" or "".
	attrs, maxAge string
	// The Path of each cookie.
	loginPath, atPath, authPath, idPath, csrfPath string
	// variants are the Paths a cookie of this deployment may have been set
	// with, and attrVariants the Domain attributes: clearVariants clears
	// every combination.
	variants     []string
	attrVariants []string
}

func newJar(cfg *Config, names browser.Names, codec *session.Codec) *jar {
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
		names: names, codec: codec, attrs: attrs, maxAge: maxAge,
		loginPath: base, atPath: base, authPath: authPath, idPath: agentBase, csrfPath: base,
	}
	if cfg.Cookie.NamePrefix.Host() { // __Host- cookies must have Path=/ (RFC 6265bis §4.1.3.2)
		j.loginPath, j.atPath, j.authPath, j.idPath, j.csrfPath = "/", "/", "/", "/", "/"
	}
	for _, p := range []string{"/", base, agentBase, agentBase + "/refresh"} {
		if !slices.Contains(j.variants, p) {
			j.variants = append(j.variants, p)
		}
	}
	j.attrVariants = []string{attrs}
	if cfg.Cookie.Domain != "" {
		j.attrVariants = append(j.attrVariants, "; HttpOnly; Secure; SameSite="+sameSite)
	}
	if cfg.Cookie.NamePrefix.Host() {
		j.variants = []string{"/"}
	}
	return j
}

// set seals value into cookie c for the session env with the given Path,
// splitting it into chunks when one Set-Cookie would pass
// browser.MaxSetCookie, and clears whatever the request holds of c that this
// answer does not overwrite (the whole cookie when chunked now, stale chunks
// otherwise). The chunk count is sealed into a v2 value, so it is decided
// from the sealed length before sealing.
func (j *jar) set(ctx *fasthttp.RequestCtx, req *browser.RawCookies, c *browser.Cookie, path string, env *session.Envelope, value []byte) error {
	attrs := "; Path=" + path + j.attrs + j.maxAge
	size := j.codec.SealedLen(len(value))
	// The longest chunk name is Name.7: two bytes over Name.
	room := browser.MaxSetCookie - len(c.Name) - 2 - 1 - len(attrs)
	n, ok := browser.Split(size, room)
	if !ok {
		return errorf(errServer, "a %s value of %d bytes needs more than %d cookies", c.Name, size, browser.MaxChunks)
	}
	whole := n == 1 && len(c.Name)+1+size+len(attrs) <= browser.MaxSetCookie
	chunks := 0
	if !whole {
		chunks = max(n, 2)
	}
	sealed, err := j.codec.Seal(make([]byte, 0, size), purposeOf(c), chunks, env, value)
	if err != nil {
		return err
	}
	if whole {
		addSetCookie(ctx, c.Name, string(sealed), attrs)
		j.clearChunks(ctx, req, c, path, 0)
		return nil
	}
	per := (len(sealed) + chunks - 1) / chunks
	for i := range chunks {
		chunk := sealed[i*per : min((i+1)*per, len(sealed))]
		addSetCookie(ctx, c.Chunk(i), string(chunk), attrs)
	}
	if req.Cookie(c.Name) != nil {
		j.clearOne(ctx, c.Name, path)
	}
	j.clearChunks(ctx, req, c, path, chunks)
	return nil
}

// purposeOf is the session purpose of cookie c.
func purposeOf(c *browser.Cookie) session.Purpose { return session.Purpose(c.Index() + 1) }

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

// clearAll clears the token-handler cookies of the session the request
// carries, in the reference's order: auth, at, id, csrf (then login). Only
// the cookies (and chunks) the request holds are cleared, so an answer
// does not name cookies the browser does not have. The one exception is a
// cookie whose Path the request's path is not under (P-auth on
// <base_path>/refresh, seen from logout): the browser does not send it
// here, so whether it holds one cannot be known, and it is cleared (RFC
// 6265 §5.1.4 path-match).
func (j *jar) clearAll(ctx *fasthttp.RequestCtx, req *browser.RawCookies) {
	path := ctx.Path()
	for _, c := range []struct {
		cookie *browser.Cookie
		path   string
	}{
		{&j.names.RefreshToken, j.authPath},
		{&j.names.AccessToken, j.atPath},
		{&j.names.IDToken, j.idPath},
		{&j.names.CSRF, j.csrfPath},
		{&j.names.Login, j.loginPath},
	} {
		if req.Cookie(c.cookie.Name) != nil || !pathMatch(path, c.path) {
			j.clearOne(ctx, c.cookie.Name, c.path)
		}
		j.clearChunks(ctx, req, c.cookie, c.path, 0)
	}
}

// pathMatch reports whether a request path is under a cookie Path, so that
// a browser sends the cookie with it (RFC 6265 §5.1.4).
func pathMatch(reqPath []byte, cookiePath string) bool {
	p := string(reqPath)
	switch {
	case p == cookiePath:
		return true
	case !strings.HasPrefix(p, cookiePath):
		return false
	}
	return strings.HasSuffix(cookiePath, "/") || p[len(cookiePath)] == '/'
}

// clearVariants clears every token-handler cookie under every Path and
// Domain this deployment may have set it with, and every chunk the request
// holds: browsers send two cookies of one name when they differ in Path or
// Domain, which the agent and proxy refuse as ambiguous, and a new login is
// how a browser gets out of that. A sibling subdomain's cookie with another
// Domain cannot be cleared from here.
//
// P-login is left alone: login/start sets it next, and a client that reads
// Set-Cookie headers by name rather than in order (k6's) must not see it
// cleared.
func (j *jar) clearVariants(ctx *fasthttp.RequestCtx, req *browser.RawCookies) {
	var names []string
	for _, c := range []*browser.Cookie{&j.names.AccessToken, &j.names.RefreshToken, &j.names.IDToken, &j.names.CSRF} {
		names = append(names, c.Name)
		for i := range browser.MaxChunks {
			if req.Cookie(c.Chunk(i)) != nil {
				names = append(names, c.Chunk(i))
			}
		}
	}
	for _, attrs := range j.attrVariants {
		for _, path := range j.variants {
			for _, name := range names {
				addSetCookie(ctx, name, "", "; Path="+path+attrs+"; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
			}
		}
	}
}

// open opens cookie c as found in the request, checking its purpose and
// chunk count. ok is false when the request does not hold it or it does
// not open; when it does not open but is well-formed (a key mismatch,
// most likely), req.foreign names it.
func (j *jar) open(req *request, c *browser.Cookie) (o opened, ok bool) {
	sealed, chunks, present := req.found.AppendValue(nil, c)
	if !present || len(sealed) == 0 {
		return opened{}, false
	}
	value, f, err := j.codec.Open(nil, sealed, purposeOf(c), chunks, &o.env)
	if err != nil {
		if j.codec.WellFormed(sealed) {
			req.foreign = c.Name
		}
		return opened{}, false
	}
	o.value, o.format = value, f
	return o, true
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
