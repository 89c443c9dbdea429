package browser

import "bytes"

// RawCookies reads cookies straight from the request's Cookie header values
// (RFC 6265 §5.4 cookie-string: "name=value; name2=value2"), in order,
// without parsing them into a map or changing any byte.
//
// A RawCookies only refers to the header values; it is valid as long as they
// are. Use it by pointer as a Cookies.
type RawCookies [][]byte

// Cookie returns the value of the first cookie named name, or nil. Names
// match exactly (case-sensitive); a pair without '=' has the empty name, as
// browsers send it.
func (rc *RawCookies) Cookie(name string) []byte {
	for pair := range rc.pairs {
		if k, v := splitPair(pair); string(k) == name {
			return v
		}
	}
	return nil
}

// AppendWithout appends to dst one cookie-string made of every pair whose
// name is not in drop, in their order and byte for byte, joined by "; ".
func (rc *RawCookies) AppendWithout(dst []byte, drop []string) []byte {
	start := len(dst)
	for pair := range rc.pairs {
		if contains(drop, pairName(pair)) {
			continue
		}
		if len(dst) > start {
			dst = append(dst, ';', ' ')
		}
		dst = append(dst, pair...)
	}
	return dst
}

// pairs yields every non-empty "name=value" pair of the header values, in
// order, trimmed of spaces and tabs. Only the pair needs the caller's eye:
// the ';' separators and empty pairs are pairs' business.
func (rc *RawCookies) pairs(yield func(pair []byte) bool) {
	for _, h := range *rc {
		for len(h) > 0 {
			var pair []byte
			pair, h = nextPair(h)
			if len(pair) > 0 && !yield(pair) {
				return
			}
		}
	}
}

// nextPair splits off the first ';'-separated pair of h, trimmed of spaces
// and tabs.
func nextPair(h []byte) (pair, rest []byte) {
	i := bytes.IndexByte(h, ';')
	if i < 0 {
		return TrimOWS(h), h[len(h):]
	}
	return TrimOWS(h[:i]), h[i+1:]
}

// splitPair returns the trimmed name and value of "name=value"; a pair
// without '=' is a value with the empty name (RFC 6265bis §5.6). Neither is
// nil when pair is not: a present but empty value counts as present.
func splitPair(pair []byte) (name, value []byte) {
	if i := bytes.IndexByte(pair, '='); i >= 0 {
		return TrimOWS(pair[:i]), TrimOWS(pair[i+1:])
	}
	return pair[:0], pair
}

func pairName(pair []byte) []byte {
	name, _ := splitPair(pair)
	return name
}

// TrimOWS returns b without the optional whitespace around it: spaces and
// tabs (RFC 9110 §5.6.3 OWS, and RFC 6265 §5.2 around cookie pairs). It
// returns a subslice of b and does not allocate.
func TrimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func contains(list []string, b []byte) bool {
	for _, s := range list {
		if s == string(b) {
			return true
		}
	}
	return false
}
