package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// HeaderRequestID carries the request id to the upstream and back to the
// client; NGINX's $request_id fits it.
const HeaderRequestID = "X-Request-Id"

// maxRequestID is the longest incoming request id kept; longer or odd ones
// are replaced, so that a client cannot write arbitrary text into our logs.
const maxRequestID = 64

// requestIDs makes ids "<8 hex, random per process>-<counter>", unique within
// a process and unlikely to collide across instances.
type requestIDs struct {
	prefix [8]byte
	n      atomic.Uint64
}

func (r *requestIDs) init() {
	var b [4]byte
	rand.Read(b[:])
	hex.Encode(r.prefix[:], b[:])
}

// set keeps a well-formed incoming X-Request-Id or makes one, sets it on the
// request (for the upstream) and the response, and returns it.
func (r *requestIDs) set(ctx *fasthttp.RequestCtx, s *scratch) []byte {
	id := ctx.Request.Header.Peek(HeaderRequestID)
	if validRequestID(id) {
		id = append(s.id[:0], id...) // dropRequestFields may reuse the header's memory
	} else {
		b := append(s.id[:0], r.prefix[:]...)
		b = append(b, '-')
		id = strconv.AppendUint(b, r.n.Add(1), 36)
	}
	// Every copy goes: SetBytesV alone replaces only the first, and a
	// second X-Request-Id would reach the API beside ours.
	if len(ctx.Request.Header.PeekAll(HeaderRequestID)) > 1 {
		dropRequestFields(&ctx.Request.Header, s, requestIDField, nil)
	}
	ctx.Request.Header.SetBytesV(HeaderRequestID, id)
	ctx.Response.Header.SetBytesV(HeaderRequestID, id)
	return id
}

var requestIDField = []string{HeaderRequestID}

func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > maxRequestID {
		return false
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
