package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http/httputil"
	"net/textproto"
	"testing"
	"time"
)

// FuzzChunkedDifferential holds the proxy's chunked decoder (upstreamBody)
// to net/http's: httputil.NewChunkedReader for the chunks, then the trailer
// section as net/http's body reader reads it (a CRLF, or a section whose
// CRLFCRLF is within its buffer, read by textproto). For the same bytes both
// decode the same data and stop at the same offset (the rest of a pooled
// connection is the next answer), or both fail. The one licence: the proxy
// refuses a trailer section with a bare LF, obs-fold or a space in a field
// name, which net/http tolerates (RFC 9112 §7.1, erratum 7633; §5.2).
func FuzzChunkedDifferential(f *testing.F) {
	for _, s := range []string{
		"0\r\n\r\n",
		"5\r\nhello\r\n0\r\n\r\n",
		"5;ext=1\r\nhello\r\n6; a=\"b;c\" \r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
		"5 ;ext=1\r\nhello\r\n0\r\n\r\n",
		" 5\r\nhello\r\n0 \t\r\n\r\n",
		"A\r\n0123456789\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"0000000000000005\r\nhello\r\n0\r\n\r\n",
		"00000000000000005\r\nhello\r\n0\r\n\r\n",
		"5\nhello\n0\n\n",
		"5\r\nhello\n0\r\n\r\n",
		"5 2\r\nhello\r\n0\r\n\r\n",
		"5;\rx\r\nhello\r\n0\r\n\r\n",
		"5\r\nhel",
		"5\r\nhelloXY0\r\n\r\n",
		"0\r\nA: b\r\n c\r\n\r\n",
		"0\r\nA b: c\r\n\r\n",
		"0\r\nA:\x01\r\n\r\n",
		"-1\r\n\r\n",
		"ffffffffffffffff\r\nx\r\n",
		"1;" + string(bytes.Repeat([]byte("e"), 5000)) + "\r\nx\r\n0\r\n\r\n",
		string(bytes.Repeat([]byte("1;eeeeeeeeeeeeeeeeeeeeeeeeeeee\r\nx\r\n"), 600)) + "0\r\n\r\n",
		"0\r\n" + string(bytes.Repeat([]byte("T: v\r\n"), 700)) + "\r\n",
	} {
		f.Add([]byte(s), uint16(0))
		f.Add([]byte(s), uint16(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, step uint16) {
		want, trailerStart, wantEnd, wantErr := referenceChunked(in)
		got, gotEnd, gotErr := proxyChunked(in, int(step))
		switch {
		case wantErr != nil && gotErr != nil:
		case wantErr != nil:
			t.Fatalf("net/http refuses %q (%v); the proxy decodes %q and stops at %d", in, wantErr, got, gotEnd)
		case gotErr != nil && strictTrailer(in[trailerStart:wantEnd]):
		case gotErr != nil:
			t.Fatalf("the proxy refuses %q (%v); net/http decodes %q", in, gotErr, want)
		case !bytes.Equal(got, want):
			t.Fatalf("%q: the proxy decodes %q, net/http %q", in, got, want)
		case gotEnd != wantEnd:
			t.Fatalf("%q: the proxy stops at %d, net/http at %d", in, gotEnd, wantEnd)
		}
	})
}

// referenceChunked decodes in as net/http reads a chunked answer and
// returns the data, the offset of the trailer section and the offset after
// the body.
func referenceChunked(in []byte) (data []byte, trailer, end int, err error) {
	r := bytes.NewReader(in)
	br := bufio.NewReaderSize(r, 4096)
	data, err = io.ReadAll(httputil.NewChunkedReader(br))
	if err != nil {
		return nil, 0, 0, err
	}
	trailer = len(in) - r.Len() - br.Buffered()
	// net/http's body.readTrailer.
	switch p, _ := br.Peek(2); {
	case string(p) == "\r\n":
		br.Discard(2)
	case len(p) < 2:
		return nil, 0, 0, io.ErrUnexpectedEOF
	case !seeUpcomingDoubleCRLF(br):
		return nil, 0, 0, errors.New("long trailer")
	default:
		if _, err := textproto.NewReader(br).ReadMIMEHeader(); err != nil {
			return nil, 0, 0, err
		}
	}
	return data, trailer, len(in) - r.Len() - br.Buffered(), nil
}

// seeUpcomingDoubleCRLF is net/http's: whether CRLFCRLF comes within the
// reader's buffer.
func seeUpcomingDoubleCRLF(r *bufio.Reader) bool {
	for n := 4; ; n++ {
		buf, err := r.Peek(n)
		if bytes.HasSuffix(buf, []byte("\r\n\r\n")) {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// strictTrailer reports whether a trailer section holds what the proxy
// refuses and net/http tolerates: a bare LF, a line starting with a space or
// tab (obs-fold), a space in a field name.
func strictTrailer(sec []byte) bool {
	for line := range bytes.SplitAfterSeq(sec, []byte("\n")) {
		switch {
		case len(line) > 0 && line[len(line)-1] == '\n' && (len(line) < 2 || line[len(line)-2] != '\r'):
			return true
		case len(line) > 0 && (line[0] == ' ' || line[0] == '\t'):
			return true
		}
		if name, _, ok := bytes.Cut(line, []byte{':'}); ok && bytes.IndexByte(name, ' ') >= 0 {
			return true
		}
	}
	return false
}

// proxyChunked decodes in with the proxy's upstreamBody, reading step bytes
// at a time (0: io.ReadAll's sizes), and returns the data and the offset
// after the body.
func proxyChunked(in []byte, step int) ([]byte, int, error) {
	r := bytes.NewReader(in)
	br := bufio.NewReaderSize(r, 4096)
	b := &upstreamBody[fuzzPooled]{t: &transport[fuzzPooled]{timeout: time.Minute}, conn: fuzzConn{}, br: br, chunked: true}
	var data []byte
	var err error
	if step == 0 {
		data, err = io.ReadAll(b)
	} else {
		buf := make([]byte, step)
		for {
			var n int
			n, err = b.Read(buf)
			data = append(data, buf[:n]...)
			if err == io.EOF {
				err = nil
				break
			}
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		return nil, 0, err
	}
	return data, len(in) - r.Len() - br.Buffered(), nil
}

// fuzzConn is a connection whose deadlines are no-ops: upstreamBody.Read
// only renews the read deadline. Any other method would panic.
type fuzzConn struct{ net.Conn }

func (fuzzConn) SetReadDeadline(time.Time) error { return nil }

// fuzzPooled stands for fasthttp's pooled connection.
type fuzzPooled struct{}

func (fuzzPooled) Conn() net.Conn { return fuzzConn{} }
