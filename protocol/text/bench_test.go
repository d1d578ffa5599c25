package text

import (
	"strings"
	"testing"
)

func benchDecode(b *testing.B, in string) {
	buf := []byte(in)
	d := NewDecoder(0)
	var req Request
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		for rest := buf; len(rest) > 0; {
			n, _, _ := d.Decode(rest, &req)
			rest = rest[n:]
		}
	}
}

func BenchmarkDecodeGet(b *testing.B) { benchDecode(b, "get user:1234567890\r\n") }

func BenchmarkDecodeMultiget100(b *testing.B) {
	benchDecode(b, "get "+strings.Repeat("user:1234567890 ", 100)+"\r\n")
}

func BenchmarkDecodeSet(b *testing.B) {
	benchDecode(b, "set user:1234567890 0 3600 100\r\n"+strings.Repeat("v", 100)+"\r\n")
}

func BenchmarkDecodePipeline(b *testing.B) {
	benchDecode(b, strings.Repeat("get a\r\nset b 0 0 5 noreply\r\nhello\r\nincr c 1\r\ndelete d\r\n", 16))
}

func BenchmarkAppendValue(b *testing.B) {
	dst := make([]byte, 0, 256)
	key, data := []byte("user:1234567890"), []byte(strings.Repeat("v", 100))
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendValue(dst[:0], key, 0, data, 123456, true)
	}
}
