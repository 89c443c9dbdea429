package proxy

import (
	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/browser"
)

// writeError answers with e. The fasthttp server sends no body to HEAD.
func writeError(ctx *fasthttp.RequestCtx, e *browser.ErrorAnswer) {
	ctx.SetStatusCode(e.Status)
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.Response.SetBodyRaw(e.Body)
}
