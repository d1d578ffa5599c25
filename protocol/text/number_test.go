package text

import "testing"

// The expected values come from glibc's strtoull and strtol with
// memcached's acceptance rules, run on a 64-bit host.
func TestParseNumbers(t *testing.T) {
	tests := []struct {
		in    string
		u64   uint64
		u64ok bool
		i32   int32
		i32ok bool
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
		{"7\t", 7, true, 7, true},
		{"7\tx", 7, true, 7, true},
		{"7\r", 7, true, 7, true},
		{"7x", 0, false, 0, false},
		{"x7", 0, false, 0, false},
		{"", 0, false, 0, false},
		{"-", 0, false, 0, false},
		{"+", 0, false, 0, false},
		{"+-1", 0, false, 0, false},
		{"0x10", 0, false, 0, false},
		{"1-", 0, false, 0, false},
		{"4294967295", 4294967295, true, -1, true},
		{"4294967296", 4294967296, true, 0, true},
		{"4294967297", 4294967297, true, 1, true},
		{"2147483647", 2147483647, true, 2147483647, true},
		{"2147483648", 2147483648, true, -2147483648, true},
		{"-2147483648", 0, false, -2147483648, true},
		{"-2147483649", 0, false, 2147483647, true},
		{"9223372036854775807", 9223372036854775807, true, -1, true},
		{"9223372036854775808", 9223372036854775808, true, 0, false},
		{"-9223372036854775808", 0, false, 0, true},
		{"-9223372036854775809", 9223372036854775807, true, 0, false},
		{"18446744073709551615", 18446744073709551615, true, 0, false},
		{"18446744073709551616", 0, false, 0, false},
		{"-18446744073709551615", 1, true, 0, false},
		{"-18446744073709551616", 0, false, 0, false},
		{"99999999999999999999", 0, false, 0, false},
		{"00000000000000000000000000001", 1, true, 1, true},
		{"1099511627776", 1099511627776, true, 0, true},
	}
	for _, tt := range tests {
		u, ok := parseUint64([]byte(tt.in))
		if u != tt.u64 || ok != tt.u64ok {
			t.Errorf("parseUint64(%q) = %d, %v; want %d, %v", tt.in, u, ok, tt.u64, tt.u64ok)
		}
		u32, ok := parseUint32([]byte(tt.in))
		if u32 != uint32(tt.u64) || ok != tt.u64ok {
			t.Errorf("parseUint32(%q) = %d, %v; want %d, %v", tt.in, u32, ok, uint32(tt.u64), tt.u64ok)
		}
		i, ok := parseInt32([]byte(tt.in))
		if i != tt.i32 || ok != tt.i32ok {
			t.Errorf("parseInt32(%q) = %d, %v; want %d, %v", tt.in, i, ok, tt.i32, tt.i32ok)
		}
	}
}
