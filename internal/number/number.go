// Package number owns memcached's rules for reading a decimal number: the
// safe_strtoull, safe_strtoll, safe_strtoul and safe_strtol helpers of
// memcached's util.c, as they behave on a 64-bit Linux host over glibc's
// strtoull, strtoll, strtoul and strtol in base 10. Every layer that reads
// a number the way memcached does (protocol arguments, incr and decr
// values, admin commands) uses these functions, so the rules live once.
//
// It is a leaf: it imports no mnemo package, so any layer may import it.
//
// # The rules
//
// The input is read as C reads a NUL-terminated string: a NUL byte ends
// it. The number may be preceded by white space (C's isspace in the C
// locale: space, \t, \n, \v, \f, \r) and a sign, '+' or '-', then holds
// decimal digits (at least one). It must be followed by the end of the
// input or by white space; what comes after that white space is ignored
// ("5\tjunk" is 5). A magnitude that overflows the 64 bits of the C
// conversion is refused.
//
// The unsigned parsers negate a number with a '-' sign in 64 bits, as
// strtoull does ("-1" is 2^64-1), then refuse the result when it is
// negative as a signed 64-bit number and the input holds a '-' anywhere
// (memcached's strchr): so "-0" is 0, "-1" is refused, and
// "-18446744073709551615" is 1. The 32-bit parsers convert in 64 bits
// (long is 64 bits wide) and truncate the result to 32 bits without a
// range check, as memcached stores a long into an int32_t or uint32_t:
// ParseUint32("4294967296") is 0, ParseInt32("4294967297") is 1.
//
// The functions allocate nothing.
package number

// IsSpace reports whether c is white space for C's isspace in the C
// locale.
func IsSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// scan reads b as strtoull and strtoll do in base 10: white space, an
// optional sign, decimal digits. It returns the sign, the magnitude, and
// whether the number is well formed for memcached: at least one digit, no
// 64-bit overflow of the magnitude, and the digits followed by the end of
// the input, white space or a NUL byte.
func scan(b []byte) (neg bool, mag uint64, ok bool) {
	i := 0
	for i < len(b) && IsSpace(b[i]) {
		i++
	}
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	start := i
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if mag > (1<<64-1-d)/10 {
			return false, 0, false // ERANGE
		}
		mag = mag*10 + d
	}
	if i == start {
		return false, 0, false // no conversion
	}
	if i < len(b) && !IsSpace(b[i]) && b[i] != 0 {
		return false, 0, false // trailing garbage
	}
	return neg, mag, true
}

// hasMinus reports whether the C string in b (up to its first NUL)
// contains a '-'.
func hasMinus(b []byte) bool {
	for _, c := range b {
		switch c {
		case '-':
			return true
		case 0:
			return false
		}
	}
	return false
}

// ParseUint64 is memcached's safe_strtoull: it reads b as an unsigned
// 64-bit number (see the package documentation for the rules).
func ParseUint64(b []byte) (uint64, bool) {
	neg, mag, ok := scan(b)
	if !ok {
		return 0, false
	}
	v := mag
	if neg {
		v = -mag
	}
	if int64(v) < 0 && hasMinus(b) {
		return 0, false
	}
	return v, true
}

// ParseUint32 is memcached's safe_strtoul on a 64-bit host: ParseUint64,
// then the result truncated to 32 bits ("4294967296" is 0).
func ParseUint32(b []byte) (uint32, bool) {
	v, ok := ParseUint64(b)
	return uint32(v), ok
}

// ParseInt64 is memcached's safe_strtoll: it reads b as a signed 64-bit
// number, refusing what does not fit in 64 bits.
func ParseInt64(b []byte) (int64, bool) {
	neg, mag, ok := scan(b)
	switch {
	case !ok:
		return 0, false
	case neg && mag > 1<<63, !neg && mag > 1<<63-1:
		return 0, false // ERANGE
	case neg:
		return int64(-mag), true
	}
	return int64(mag), true
}

// ParseInt32 is memcached's safe_strtol on a 64-bit host: ParseInt64,
// then the result truncated to 32 bits ("4294967297" is 1, "2147483648"
// is -2147483648).
func ParseInt32(b []byte) (int32, bool) {
	v, ok := ParseInt64(b)
	return int32(v), ok
}
