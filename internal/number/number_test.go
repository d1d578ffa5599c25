package number

import (
	"strconv"
	"strings"
	"testing"
)

// The expected values come from memcached's safe_strtoull, safe_strtoll,
// safe_strtoul and safe_strtol over glibc, run on a 64-bit Linux host.
var parseTests = []struct {
	in    string
	u64   uint64 // ParseUint64, and ParseUint32 truncated
	u64ok bool
	i64   int64 // ParseInt64, and ParseInt32 truncated
	i64ok bool
}{
	{"0", 0, true, 0, true},
	{"-0", 0, true, 0, true},
	{"+0", 0, true, 0, true},
	{"1", 1, true, 1, true},
	{"+5", 5, true, 5, true},
	{"-5", 0, false, -5, true},
	{"-1", 0, false, -1, true},
	{"\t7", 7, true, 7, true},
	{"\v\f3", 3, true, 3, true},
	{" \n\r-2", 0, false, -2, true},
	{"7\t", 7, true, 7, true},
	{"7\tx", 7, true, 7, true},
	{"7\r", 7, true, 7, true},
	{"7 8", 7, true, 7, true},
	{"7x", 0, false, 0, false},
	{"x7", 0, false, 0, false},
	{"", 0, false, 0, false},
	{" ", 0, false, 0, false},
	{"-", 0, false, 0, false},
	{"+", 0, false, 0, false},
	{"+-1", 0, false, 0, false},
	{"- 1", 0, false, 0, false},
	{"0x10", 0, false, 0, false},
	{"1-", 0, false, 0, false},
	{"1.5", 0, false, 0, false},
	{"١", 0, false, 0, false}, // a non-ASCII digit
	{"4294967295", 4294967295, true, 4294967295, true},
	{"4294967296", 4294967296, true, 4294967296, true},
	{"4294967297", 4294967297, true, 4294967297, true},
	{"2147483647", 2147483647, true, 2147483647, true},
	{"2147483648", 2147483648, true, 2147483648, true},
	{"-2147483648", 0, false, -2147483648, true},
	{"-2147483649", 0, false, -2147483649, true},
	{"9223372036854775807", 9223372036854775807, true, 9223372036854775807, true},
	{"9223372036854775808", 9223372036854775808, true, 0, false},
	{"-9223372036854775808", 0, false, -9223372036854775808, true},
	{"-9223372036854775809", 9223372036854775807, true, 0, false},
	{"18446744073709551615", 18446744073709551615, true, 0, false},
	{"18446744073709551616", 0, false, 0, false},
	{"-18446744073709551615", 1, true, 0, false},
	{"-18446744073709551616", 0, false, 0, false},
	{"99999999999999999999", 0, false, 0, false},
	{"00000000000000000000000000001", 1, true, 1, true},
	{"1099511627776", 1099511627776, true, 1099511627776, true},
	// A '-' anywhere refuses a result that is negative as a signed number
	// (memcached's strchr over the whole string), and only such a result.
	{"18446744073709551615\t-", 0, false, 0, false},
	{"9223372036854775808\t-", 0, false, 0, false},
	{"9223372036854775807\t-", 9223372036854775807, true, 9223372036854775807, true},
	{"5\t-", 5, true, 5, true},
	// A NUL byte ends the C string.
	{"12\x00", 12, true, 12, true},
	{"12\x00junk", 12, true, 12, true},
	{"\x0012", 0, false, 0, false},
	{"-1\x00", 0, false, -1, true},
	{"18446744073709551615\x00-", 18446744073709551615, true, 0, false},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		b := []byte(tt.in)
		if v, ok := ParseUint64(b); v != tt.u64 || ok != tt.u64ok {
			t.Errorf("ParseUint64(%q) = %d, %v; want %d, %v", tt.in, v, ok, tt.u64, tt.u64ok)
		}
		if v, ok := ParseUint32(b); v != uint32(tt.u64) || ok != tt.u64ok {
			t.Errorf("ParseUint32(%q) = %d, %v; want %d, %v", tt.in, v, ok, uint32(tt.u64), tt.u64ok)
		}
		if v, ok := ParseInt64(b); v != tt.i64 || ok != tt.i64ok {
			t.Errorf("ParseInt64(%q) = %d, %v; want %d, %v", tt.in, v, ok, tt.i64, tt.i64ok)
		}
		if v, ok := ParseInt32(b); v != int32(tt.i64) || ok != tt.i64ok {
			t.Errorf("ParseInt32(%q) = %d, %v; want %d, %v", tt.in, v, ok, int32(tt.i64), tt.i64ok)
		}
	}
}

func TestIsSpace(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := strings.IndexByte(" \t\n\v\f\r", byte(c)) >= 0
		if got := IsSpace(byte(c)); got != want {
			t.Errorf("IsSpace(%q) = %v", byte(c), got)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	b := []byte(" -18446744073709551615\tx")
	allocs := testing.AllocsPerRun(100, func() {
		ParseUint64(b)
		ParseUint32(b)
		ParseInt64(b)
		ParseInt32(b)
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per run", allocs)
	}
}

// cNumber models C's strtoull and strtoll in base 10 on s, a C string: it
// returns the optional sign and the digits they convert, or ok false when
// they convert nothing or what follows the digits is neither the end
// (NUL) nor white space, as memcached's safe_strto* require. It is written
// with strings and strconv, independently of scan.
func cNumber(s string) (digits string, neg, ok bool) {
	s, _, _ = strings.Cut(s, "\x00")
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	n := len(s) - len(strings.TrimLeft(s, "0123456789"))
	if n == 0 || (n < len(s) && !strings.ContainsRune(" \t\n\v\f\r", rune(s[n]))) {
		return "", false, false
	}
	return s[:n], neg, true
}

// refUint64 is safe_strtoull written after util.c with strconv.
func refUint64(s string) (uint64, bool) {
	digits, neg, ok := cNumber(s)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false // ERANGE
	}
	if neg {
		v = -v
	}
	c, _, _ := strings.Cut(s, "\x00")
	if int64(v) < 0 && strings.Contains(c, "-") {
		return 0, false
	}
	return v, true
}

// refInt64 is safe_strtoll written after util.c with strconv.
func refInt64(s string) (int64, bool) {
	digits, neg, ok := cNumber(s)
	if !ok {
		return 0, false
	}
	if neg {
		digits = "-" + digits
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, false // ERANGE
	}
	return v, true
}

func TestReference(t *testing.T) {
	for _, tt := range parseTests {
		if v, ok := refUint64(tt.in); v != tt.u64 || ok != tt.u64ok {
			t.Errorf("refUint64(%q) = %d, %v; want %d, %v", tt.in, v, ok, tt.u64, tt.u64ok)
		}
		if v, ok := refInt64(tt.in); v != tt.i64 || ok != tt.i64ok {
			t.Errorf("refInt64(%q) = %d, %v; want %d, %v", tt.in, v, ok, tt.i64, tt.i64ok)
		}
	}
}

// FuzzParse compares the parsers with the reference implementations.
func FuzzParse(f *testing.F) {
	for _, tt := range parseTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := string(b)
		wu, wuok := refUint64(s)
		if v, ok := ParseUint64(b); v != wu || ok != wuok {
			t.Fatalf("ParseUint64(%q) = %d, %v; reference %d, %v", b, v, ok, wu, wuok)
		}
		if v, ok := ParseUint32(b); v != uint32(wu) || ok != wuok {
			t.Fatalf("ParseUint32(%q) = %d, %v; reference %d, %v", b, v, ok, uint32(wu), wuok)
		}
		wi, wiok := refInt64(s)
		if v, ok := ParseInt64(b); v != wi || ok != wiok {
			t.Fatalf("ParseInt64(%q) = %d, %v; reference %d, %v", b, v, ok, wi, wiok)
		}
		if v, ok := ParseInt32(b); v != int32(wi) || ok != wiok {
			t.Fatalf("ParseInt32(%q) = %d, %v; reference %d, %v", b, v, ok, int32(wi), wiok)
		}
	})
}

func BenchmarkParseUint64(b *testing.B) {
	in := []byte("1234567890")
	b.ReportAllocs()
	for b.Loop() {
		ParseUint64(in)
	}
}
