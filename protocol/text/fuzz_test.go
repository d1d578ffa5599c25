package text

import (
	"testing"
)

// FuzzDecode checks the decoder's invariants on any input: no panic, n
// never beyond the buffer, progress on every error, storage data exactly
// the announced length (all checked by run), and the same requests and
// errors whether the input comes whole, split in two, or byte by byte.
func FuzzDecode(f *testing.F) {
	for _, tt := range decodeTests {
		f.Add([]byte(tt.in))
	}
	for _, tt := range metaDecodeTests {
		if len(tt.in) <= 4096 {
			f.Add([]byte(tt.in))
		}
	}
	f.Add([]byte("set k 0 0 400\r\n" + string(make([]byte, 400)) + "\r\nget k\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, newDec := range []func() *Decoder{
			newDefault,
			func() *Decoder { return NewDecoder(300) },
		} {
			want := run(t, newDec(), [][]byte{in})
			for _, at := range []int{1, len(in) / 3, len(in) / 2, len(in) - 1} {
				if at <= 0 || at >= len(in) {
					continue
				}
				got := run(t, newDec(), [][]byte{in[:at], in[at:]})
				if !equal(got, want) {
					t.Fatalf("split@%d of %q:\n got  %q\n want %q", at, in, got, want)
				}
			}
			if len(in) <= 4096 {
				bytewise := make([][]byte, len(in))
				for i := range in {
					bytewise[i] = in[i : i+1]
				}
				if got := run(t, newDec(), bytewise); !equal(got, want) {
					t.Fatalf("bytewise of %q:\n got  %q\n want %q", in, got, want)
				}
			}
		}
	})
}
