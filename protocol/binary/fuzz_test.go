package binary

import (
	"slices"
	"testing"
)

// FuzzDecode checks the decoder's invariants on any input (no panic, n
// within the buffer, progress or a need on every call; all checked by run)
// and that it decodes the same requests and errors whether the input comes
// whole, split in two, or byte by byte. The seed corpus is decodeTests plus
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, tt := range decodeTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, newDec := range []func() *Decoder{
			func() *Decoder { return &Decoder{} },
			func() *Decoder { return &Decoder{ItemSizeMax: 1024, SASL: true} },
			func() *Decoder { return &Decoder{SASL: true, RequireAuth: true, NoCAS: true} },
		} {
			want := run(t, newDec(), [][]byte{in})
			for _, at := range []int{1, len(in) / 3, len(in) / 2, len(in) - 1} {
				if at <= 0 || at >= len(in) {
					continue
				}
				if got := run(t, newDec(), [][]byte{in[:at], in[at:]}); !slices.Equal(got, want) {
					t.Fatalf("split@%d of %x:\n got  %q\n want %q", at, in, got, want)
				}
			}
			if len(in) <= 4096 {
				bytewise := make([][]byte, len(in))
				for i := range in {
					bytewise[i] = in[i : i+1]
				}
				if got := run(t, newDec(), bytewise); !slices.Equal(got, want) {
					t.Fatalf("bytewise of %x:\n got  %q\n want %q", in, got, want)
				}
			}
		}
	})
}
