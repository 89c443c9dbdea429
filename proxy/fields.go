package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// fasthttp's Del moves the last field line into the place of each line it
// removes. Lines of different names may change places (RFC 9110 §5.3), but
// two lines of one name must not: "A proxy MUST NOT change the order of these
// field line values when forwarding a message" (X-Forwarded-For, Via, Accept,
// Cache-Control, ...). The functions below remove and replace fields without
// that: when no other name has more than one line, Del cannot swap two lines
// of one name and is used as is; otherwise the remaining lines are written
// again in their order. Both cases allocate nothing once the scratch buffers
// have grown.

// fieldLine is a field line copied into scratch.fields: the name is
// fields[at:at+nameLen], the value the valueLen bytes after it.
type fieldLine struct{ at, nameLen, valueLen int }

// specialRequestFields are the fields fasthttp keeps outside its list of
// lines (Connection too, when it says close); Del does not move them.
// Connection is removed before forwarding anyway.
var specialRequestFields = [][]byte{
	[]byte(fasthttp.HeaderHost), []byte(fasthttp.HeaderContentLength), []byte(fasthttp.HeaderContentType),
	[]byte(fasthttp.HeaderUserAgent), []byte(fasthttp.HeaderTrailer), []byte(fasthttp.HeaderCookie),
	[]byte(fasthttp.HeaderConnection),
}

var specialResponseFields = [][]byte{
	[]byte(fasthttp.HeaderContentLength), []byte(fasthttp.HeaderContentType), []byte(fasthttp.HeaderContentEncoding),
	[]byte(fasthttp.HeaderServer), []byte(fasthttp.HeaderSetCookie), []byte(fasthttp.HeaderTrailer),
	[]byte(fasthttp.HeaderConnection),
}

func isOneOf(name []byte, names [][]byte) bool {
	for _, n := range names {
		if bytes.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// copyLine copies a field line into s.fields.
func (s *scratch) copyLine(name, value []byte) fieldLine {
	at := len(s.fields)
	s.fields = append(append(s.fields, name...), value...)
	return fieldLine{at: at, nameLen: len(name), valueLen: len(value)}
}

func (s *scratch) name(l fieldLine) []byte { return s.fields[l.at : l.at+l.nameLen] }

func (s *scratch) value(l fieldLine) []byte {
	return s.fields[l.at+l.nameLen : l.at+l.nameLen+l.valueLen]
}

// repeatedName reports whether two of the kept lines share a name.
func (s *scratch) repeatedName() bool {
	for i, a := range s.lines {
		for _, b := range s.lines[i+1:] {
			if bytes.EqualFold(s.name(a), s.name(b)) {
				return true
			}
		}
	}
	return false
}

// dropRequestFields removes from h every line whose name is one of names
// or, framing fields aside, one of the comma-separated tokens of named (what
// a Connection header lists), and keeps the order of the lines of every
// other name. It finds lines with PeekAll rather than All: All makes
// fasthttp parse the Cookie header, and reading it afterwards allocates and
// rewrites it. The names that come more than once are taken from the
// request as it arrived: the proxy adds no line of a name already there.
func dropRequestFields(h *fasthttp.RequestHeader, s *scratch, names []string, named []byte) {
	s.fields, s.lines, s.drops = s.fields[:0], s.lines[:0], s.drops[:0]
	for _, n := range names {
		if len(h.PeekAll(n)) > 0 {
			s.drops = append(s.drops, s.copyLine([]byte(n), nil))
		}
	}
	for tok := range tokens(named) {
		if !framingField(tok) && len(h.PeekAll(string(tok))) > 0 {
			s.drops = append(s.drops, s.copyLine(tok, nil))
		}
	}
	if len(s.drops) == 0 {
		return
	}
	// The lines of a name that comes more than once are saved, and written
	// again after the Dels, in their order. The names are collected in one
	// pass: scanning the raw header (a 1.4 KiB Cookie line included) once
	// per name was 3 % of upstream mode's profile behind NGINX, whose
	// X-Forwarded-* lines are dropped on every request.
	s.names = s.names[:0]
	for name := range fieldNamesOf(h.RawHeaders()) {
		s.names = append(s.names, name)
	}
	for i, name := range s.names {
		if !isOneOf(name, s.names[i+1:]) || isOneOf(name, specialRequestFields) || s.dropping(name) || s.saved(name) {
			continue // not repeated (or a later line of a name saved or skipped already)
		}
		for _, v := range h.PeekAll(string(name)) {
			s.lines = append(s.lines, s.copyLine(name, v))
		}
	}
	clear(s.names) // they point into the request
	for _, l := range s.drops {
		h.DelBytes(s.name(l))
	}
	for _, l := range s.lines {
		h.DelBytes(s.name(l))
	}
	for _, l := range s.lines {
		h.AddBytesKV(s.name(l), s.value(l))
	}
}

// fieldNamesOf yields the field names of a raw header section, in order.
func fieldNamesOf(raw []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(raw) > 0 {
			line := raw
			if i := bytes.IndexByte(raw, '\n'); i >= 0 {
				line, raw = raw[:i], raw[i+1:]
			} else {
				raw = nil
			}
			if name, _, ok := bytes.Cut(line, []byte{':'}); ok && len(name) > 0 && !yield(name) {
				return
			}
		}
	}
}

func (s *scratch) dropping(name []byte) bool {
	for _, l := range s.drops {
		if bytes.EqualFold(s.name(l), name) {
			return true
		}
	}
	return false
}

func (s *scratch) saved(name []byte) bool {
	for _, l := range s.lines {
		if bytes.EqualFold(s.name(l), name) {
			return true
		}
	}
	return false
}

// dropResponseFields is dropRequestFields for an answer.
func dropResponseFields(h *fasthttp.ResponseHeader, s *scratch, names [][]byte, named []byte) {
	s.fields, s.lines, s.drops = s.fields[:0], s.lines[:0], s.drops[:0]
	for k, v := range h.All() {
		switch {
		case isDropped(k, names, named):
			s.drops = append(s.drops, s.copyLine(k, nil))
		case !isOneOf(k, specialResponseFields):
			s.lines = append(s.lines, s.copyLine(k, v))
		}
	}
	if len(s.drops) == 0 {
		return
	}
	for _, l := range s.drops {
		h.DelBytes(s.name(l))
	}
	if !s.repeatedName() {
		return
	}
	for _, l := range s.lines {
		h.DelBytes(s.name(l))
	}
	for _, l := range s.lines {
		h.AddBytesKV(s.name(l), s.value(l))
	}
}

func isDropped(name []byte, names [][]byte, named []byte) bool {
	if isOneOf(name, names) {
		return true
	}
	for tok := range tokens(named) {
		if bytes.EqualFold(name, tok) && !framingField(tok) {
			return true
		}
	}
	return false
}

// Names of the fields the proxy sets or removes, for the functions above.
var (
	fieldAuthorization   = []byte(fasthttp.HeaderAuthorization)
	fieldXForwardedFor   = []byte(fasthttp.HeaderXForwardedFor)
	fieldXForwardedProto = []byte(fasthttp.HeaderXForwardedProto)
	fieldXForwardedHost  = []byte(fasthttp.HeaderXForwardedHost)
)
