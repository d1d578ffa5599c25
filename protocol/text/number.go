package text

import (
	"bytes"
	"math"
)

// Numbers are parsed the way memcached's safe_strto* helpers parse them on
// a 64-bit Linux host (util.c over glibc's strtoul/strtol/strtoull in base
// 10). Tokens never contain a space, but may contain other white space.

// isCSpace reports whether c is white space for C's isspace in the C
// locale.
func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// scanC scans tok like strtoull/strtoll in base 10: leading white space, an
// optional sign, then decimal digits. It returns the sign, the magnitude,
// the index after the last digit (0 when there were no digits: no
// conversion) and whether the magnitude overflowed 64 bits.
func scanC(tok []byte) (neg bool, mag uint64, end int, overflow bool) {
	i := 0
	for i < len(tok) && isCSpace(tok[i]) {
		i++
	}
	if i < len(tok) && (tok[i] == '+' || tok[i] == '-') {
		neg = tok[i] == '-'
		i++
	}
	start := i
	for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
		d := uint64(tok[i] - '0')
		if !overflow {
			if mag > (math.MaxUint64-d)/10 {
				overflow = true
			} else {
				mag = mag*10 + d
			}
		}
		i++
	}
	if i == start {
		return false, 0, 0, false
	}
	return neg, mag, i, overflow
}

// endsNumber reports whether a number that ended at end is followed by the
// end of the token or by white space (memcached accepts "5\tjunk").
func endsNumber(tok []byte, end int) bool {
	return end == len(tok) || isCSpace(tok[end])
}

// parseUint64 is memcached's safe_strtoull: strtoull, then a value that is
// negative as a signed number is refused if the token holds a '-'.
func parseUint64(tok []byte) (uint64, bool) {
	neg, mag, end, overflow := scanC(tok)
	if end == 0 || overflow || !endsNumber(tok, end) {
		return 0, false
	}
	v := mag
	if neg {
		v = -mag
	}
	if int64(v) < 0 && bytes.IndexByte(tok, '-') >= 0 {
		return 0, false
	}
	return v, true
}

// parseUint32 is memcached's safe_strtoul on a 64-bit host: strtoul works
// on 64 bits and the result is truncated to 32 bits ("4294967296" is 0).
func parseUint32(tok []byte) (uint32, bool) {
	v, ok := parseUint64(tok)
	return uint32(v), ok
}

// parseInt32 is memcached's safe_strtol on a 64-bit host: strtol works on
// 64 bits (refusing what overflows them) and the result is truncated to 32
// bits ("4294967297" is 1).
func parseInt32(tok []byte) (int32, bool) {
	neg, mag, end, overflow := scanC(tok)
	if end == 0 || overflow || !endsNumber(tok, end) {
		return 0, false
	}
	if neg {
		if mag > 1<<63 {
			return 0, false
		}
		return int32(int64(-mag)), true
	}
	if mag > math.MaxInt64 {
		return 0, false
	}
	return int32(int64(mag)), true
}
