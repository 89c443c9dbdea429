package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// bufferLimit is the largest upstream answer of known length read whole
// before it is sent on; longer ones, and chunked ones, are streamed.
const bufferLimit = 64 << 10

// transport is the upstream pools' fasthttp.RoundTripper. fasthttp's own
// transport either buffers every answer or, with StreamResponseBody,
// allocates several closures per answer. This one buffers small answers of
// known length and streams the rest through a pooled reader, so that neither
// path allocates in steady state, and it renews the read deadline on every
// read of a streamed body: timeouts.upstream bounds silence, not the length
// of a download.
//
// fasthttp's connection type is unexported; the type parameter C lets the
// compiler name it by inference from the HostClient's own methods, bound once
// per pool (newTransport), so that nothing is allocated per request.
type transport[C interface{ Conn() net.Conn }] struct {
	timeout time.Duration
	acquire func(time.Duration, bool) (C, error)
	reuse   func(C) // back to the pool
	drop    func(C) // closed
	hc      *fasthttp.HostClient
	bodies  sync.Pool // of *upstreamBody[C]
}

// newTransport returns the transport for hc's pool:
// newTransport(hc, timeout, hc.AcquireConn, hc.ReleaseConn, hc.CloseConn).
func newTransport[C interface{ Conn() net.Conn }](hc *fasthttp.HostClient, timeout time.Duration, acquire func(time.Duration, bool) (C, error), reuse, drop func(C)) *transport[C] {
	return &transport[C]{timeout: timeout, acquire: acquire, reuse: reuse, drop: drop, hc: hc}
}

var errUpstreamBody = errors.New("proxy: malformed chunked body from the upstream")

// RoundTrip implements fasthttp.RoundTripper.
func (t *transport[C]) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (retry bool, err error) {
	cc, err := t.acquire(t.timeout, req.ConnectionClose())
	if err != nil {
		return false, err
	}
	conn := cc.Conn()
	if err := conn.SetDeadline(time.Now().Add(t.timeout)); err != nil {
		t.drop(cc)
		return true, err
	}
	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		t.drop(cc)
		return true, timeoutOr(err)
	}

	br := hc.AcquireReader(conn)
	skipBody := resp.SkipBody || req.Header.IsHead()
	resp.Reset()
	resp.SkipBody = skipBody
	if err := readHeader(&resp.Header, br); err != nil {
		hc.ReleaseReader(br)
		t.drop(cc)
		// Retry (an idempotent request, on another connection) only when
		// nothing of an answer came: the shape of a pooled connection the
		// API had closed (fasthttp reports any failure of the first read
		// as io.EOF). An API that answered garbage, or a header larger
		// than the buffer, or nothing in time, would do so again.
		return err == io.EOF, timeoutOr(err)
	}
	keep := !req.ConnectionClose() && !resp.Header.ConnectionClose()
	status := resp.Header.StatusCode()
	if skipBody || status < 200 || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified {
		resp.SkipBody = true
		t.done(cc, br, keep)
		return false, nil
	}
	cl := resp.Header.ContentLength()
	if cl >= 0 && cl <= bufferLimit {
		if err := resp.ReadBody(br, bufferLimit); err != nil {
			hc.ReleaseReader(br)
			t.drop(cc)
			return false, timeoutOr(err)
		}
		t.done(cc, br, keep)
		return false, nil
	}
	body, _ := t.bodies.Get().(*upstreamBody[C])
	if body == nil {
		body = new(upstreamBody[C])
	}
	*body = upstreamBody[C]{t: t, cc: cc, conn: conn, br: br, keep: keep, remaining: int64(cl)}
	switch {
	case cl == -1: // chunked
		body.chunked = true
		body.remaining = 0
		resp.SetBodyStream(body, -1)
	case cl == -2: // until the upstream closes
		body.untilEOF, body.keep = true, false
		resp.SetBodyStream(body, -1)
	default:
		resp.SetBodyStream(body, cl)
	}
	return false, nil
}

// readHeader reads a response header, skipping 1xx interim answers.
func readHeader(h *fasthttp.ResponseHeader, br *bufio.Reader) error {
	for {
		if err := h.Read(br); err != nil {
			return err
		}
		if s := h.StatusCode(); s >= 200 || s == fasthttp.StatusSwitchingProtocols {
			return nil
		}
		h.Reset()
	}
}

// done returns the reader and the connection, to the pool if keep.
func (t *transport[C]) done(cc C, br *bufio.Reader, keep bool) {
	t.hc.ReleaseReader(br)
	if keep {
		t.reuse(cc)
	} else {
		t.drop(cc)
	}
}

func timeoutOr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fasthttp.ErrTimeout
	}
	return err
}

// upstreamBody streams one answer's body from the upstream connection: a
// known length, chunked (RFC 9112 §7.1), or until the connection closes.
// Close hands the connection back to the pool when the body was read to its
// end, and closes it otherwise.
type upstreamBody[C interface{ Conn() net.Conn }] struct {
	t         *transport[C]
	cc        C
	conn      net.Conn
	br        *bufio.Reader
	remaining int64 // bytes left in the body (known length) or in the current chunk
	chunked   bool
	untilEOF  bool
	excess    int64 // chunk overhead beyond the allowance (nextChunk)
	done      bool
	keep      bool
	err       error
}

func (b *upstreamBody[C]) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	if err := b.conn.SetReadDeadline(time.Now().Add(b.t.timeout)); err != nil {
		b.err = err
		return 0, err
	}
	if b.chunked && b.remaining == 0 {
		if err := b.nextChunk(); err != nil {
			b.err = err
			return 0, err
		}
		if b.done {
			return 0, io.EOF
		}
	}
	if !b.untilEOF && int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.br.Read(p)
	b.remaining -= int64(n)
	switch {
	case b.untilEOF && err == io.EOF:
		b.done = true
		return n, io.EOF
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.err = timeoutOr(err)
		return n, b.err
	}
	if !b.chunked && !b.untilEOF && b.remaining == 0 {
		b.done = true
	}
	if b.chunked && b.remaining == 0 {
		if err := b.crlf(); err != nil {
			b.err = err
		}
	}
	return n, nil
}

// The chunked decoder reads RFC 9112 §7.1 as net/http does
// (net/http/internal/chunked.go), so that the proxy and a Go upstream agree
// on where an answer ends: the rest of the connection is the next answer,
// and a decoder more lenient than the sender is how answers get desynchronised
// on a pooled connection. FuzzChunkedDifferential holds it to
// httputil.NewChunkedReader.
const (
	// maxChunkLine is the longest chunk-size line, without its CRLF, plus
	// one: net/http's maxLineLength.
	maxChunkLine = 4096
	// maxTrailer bounds the trailer section, its final empty line
	// included: net/http's bufio buffer, in which it wants to see the
	// section's end.
	maxTrailer = 4096
	// maxChunkExcess is how far chunk-size lines and chunk CRLFs may
	// outgrow 16 bytes per chunk plus twice the chunk data, net/http's
	// bound on an upstream that sends overhead instead of data.
	maxChunkExcess = 16 << 10
)

// nextChunk reads a chunk-size line (RFC 9112 §7.1): 1 to 16 hex digits,
// an optional chunk extension after ';', which is ignored, optional trailing
// whitespace. A zero size ends the body after the trailer section, which is
// checked and dropped.
func (b *upstreamBody[C]) nextChunk() error {
	line, err := b.line()
	if err != nil {
		return err
	}
	b.excess += int64(len(line)) + 2 // the line and the CRLF after its data
	// As net/http: trailing whitespace goes, then the extension; no
	// whitespace before ';' (RFC 9112 §7.1.1 allows BWS there, net/http
	// does not, and the stricter reading wins).
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	if len(line) == 0 || len(line) > 16 {
		return errUpstreamBody
	}
	var size uint64
	for _, c := range line {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return errUpstreamBody
		}
		size = size<<4 | uint64(d)
	}
	if size > math.MaxInt64 {
		return errUpstreamBody
	}
	if b.excess = max(0, b.excess-16-2*int64(size)); b.excess > maxChunkExcess {
		return errUpstreamBody
	}
	if size > 0 {
		b.remaining = int64(size)
		return nil
	}
	return b.trailer()
}

// trailer reads the trailer section (RFC 9112 §7.1.2) up to its empty line
// and drops it. Each line must be a field line (RFC 9110 §5: a token, ':', a
// value of visible characters, spaces and tabs) ending in CRLF; obs-fold
// (RFC 9112 §5.2) is refused, and the section may not exceed maxTrailer.
func (b *upstreamBody[C]) trailer() error {
	n := 0
	for {
		line, err := b.line()
		if err != nil {
			return err
		}
		if n += len(line) + 2; n > maxTrailer {
			return errUpstreamBody
		}
		if len(line) == 0 {
			b.done = true
			return nil
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok || !validToken(name) {
			return errUpstreamBody
		}
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return errUpstreamBody
			}
		}
	}
}

// line reads one line, which must end in CRLF and hold no other CR (RFC 9112
// §7.1 and erratum 7633: no bare LF in chunked framing), without its CRLF.
// The returned slice is valid until the next read.
func (b *upstreamBody[C]) line() ([]byte, error) {
	line, err := b.br.ReadSlice('\n')
	if err != nil {
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return nil, errUpstreamBody
		case err == io.EOF:
			return nil, io.ErrUnexpectedEOF
		}
		return nil, timeoutOr(err)
	}
	if len(line) < 2 || bytes.IndexByte(line, '\r') != len(line)-2 {
		return nil, errUpstreamBody
	}
	line = line[:len(line)-2]
	if len(line) >= maxChunkLine {
		return nil, errUpstreamBody
	}
	return line, nil
}

// crlf reads the CRLF after a chunk's data: exactly those two bytes.
func (b *upstreamBody[C]) crlf() error {
	p, err := b.br.Peek(2)
	if err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return timeoutOr(err)
	}
	if p[0] != '\r' || p[1] != '\n' {
		return errUpstreamBody
	}
	b.br.Discard(2)
	return nil
}

// Close returns the connection to the pool if the body was read to its end
// and the upstream keeps connections alive, and closes it otherwise. The
// fasthttp server calls it once it has sent the answer.
func (b *upstreamBody[C]) Close() error {
	t, cc, br := b.t, b.cc, b.br
	keep := b.done && b.err == nil && b.keep
	*b = upstreamBody[C]{}
	t.bodies.Put(b)
	t.done(cc, br, keep)
	return nil
}
