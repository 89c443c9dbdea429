package browser

import "bytes"

// slots are the token-handler cookies in Names order: login, at, auth, id,
// csrf. The suffixes are the cookie names' last part.
var slotSuffixes = [slotCount]string{"login", "at", "auth", "id", "csrf"}

const slotCount = 5

// Found is every token-handler cookie of one request, read in one pass over
// its Cookie headers by [Names.Scan]: each whole cookie and each chunk, and
// whether any of them was ambiguous.
//
// A Found refers to the header bytes it was scanned from and is valid as
// long as they are. It is big (about 1 KiB); keep one in a pooled per-request
// structure. It is not safe for concurrent use.
type Found struct {
	// vals[s][0] is the whole cookie of slot s, vals[s][i+1] its chunk i.
	vals [slotCount][1 + MaxChunks][]byte
	seen [slotCount]uint16 // bit 0: the whole cookie; bit i+1: chunk i
	// ambiguous is set when a name came twice, a cookie came both whole and
	// in chunks, or its chunks do not run from 0 without a gap.
	ambiguous bool
}

// Scan reads every token-handler cookie of the request's Cookie headers into
// f, replacing what f held. It allocates nothing.
//
// Browsers send two cookies of one name when they were set with different
// Path or Domain attributes, and a sibling subdomain can plant one that way.
// Which of them is the genuine one cannot be told from the request, so a
// name that comes twice makes the whole request ambiguous ([Found.Ambiguous])
// instead of being resolved by order.
func (n *Names) Scan(f *Found, rc *RawCookies) {
	*f = Found{}
	for pair := range rc.pairs {
		name, value := splitPair(pair)
		slot, bit, ok := n.parse(name)
		if !ok {
			continue
		}
		if f.seen[slot]&(1<<bit) != 0 {
			f.ambiguous = true
			continue
		}
		f.seen[slot] |= 1 << bit
		f.vals[slot][bit] = value
	}
	for _, seen := range f.seen {
		chunks := seen >> 1
		// Whole and chunked at once, or chunks with a gap (chunks+1 is a
		// power of two only when they run 0, 1, …, k).
		if seen&1 != 0 && chunks != 0 || chunks&(chunks+1) != 0 {
			f.ambiguous = true
		}
	}
}

// parse tells which slot and which bit (0 whole, i+1 chunk i) a cookie name
// stands for.
func (n *Names) parse(name []byte) (slot, bit int, ok bool) {
	if len(name) <= len(n.prefix) || string(name[:len(n.prefix)]) != n.prefix {
		return 0, 0, false
	}
	rest := name[len(n.prefix):]
	bit = 0
	if i := bytes.IndexByte(rest, '.'); i >= 0 {
		if len(rest) != i+2 || rest[i+1] < '0' || rest[i+1] >= '0'+MaxChunks {
			return 0, 0, false
		}
		bit = int(rest[i+1]-'0') + 1
		rest = rest[:i]
	}
	for s, suffix := range slotSuffixes {
		if string(rest) == suffix {
			return s, bit, true
		}
	}
	return 0, 0, false
}

// Ambiguous reports whether a token-handler cookie name came twice, or a
// cookie came both whole and in chunks, or with a gap in its chunks. Such a
// request must be refused, never resolved by order.
func (f *Found) Ambiguous() bool { return f.ambiguous }

// Present reports whether the request holds cookie c, whole or in chunks.
func (f *Found) Present(c *Cookie) bool { return f.seen[c.slot] != 0 }

// Chunks returns how many chunks cookie c came in: 0 when it came whole or
// not at all.
func (f *Found) Chunks(c *Cookie) int {
	n := 0
	for s := f.seen[c.slot] >> 1; s != 0; s >>= 1 {
		n += int(s & 1)
	}
	return n
}

// AppendValue appends the value of cookie c to dst: the whole cookie, or its
// chunks concatenated in order. chunks is how many chunks it came in (0 when
// whole); ok is false when the request does not hold c. Call it only when
// the request is not ambiguous.
func (f *Found) AppendValue(dst []byte, c *Cookie) (out []byte, chunks int, ok bool) {
	seen := f.seen[c.slot]
	if seen == 0 {
		return dst, 0, false
	}
	if seen&1 != 0 {
		return append(dst, f.vals[c.slot][0]...), 0, true
	}
	for i := 1; i <= MaxChunks && seen&(1<<i) != 0; i++ {
		dst = append(dst, f.vals[c.slot][i]...)
		chunks++
	}
	return dst, chunks, true
}
