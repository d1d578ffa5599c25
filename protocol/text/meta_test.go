package text

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// The expected results below were checked against memcached 1.6.18 (the
// error replies) and follow its proto_text.c for what is decoded.
var metaDecodeTests = []struct {
	name string
	in   string
	want []string
}{
	// mn and me.
	{"mn", "mn\r\n", []string{"mn"}},
	{"mn args ignored", "mn a b c\r\n", []string{"mn"}},
	{"me", "me foo\r\n", []string{"me k=foo"}},
	{"me extra", "me foo x y\r\n", []string{"me k=foo"}},
	{"me b", "me Zm9v b\r\n", []string{`me k="foo" b64`}},
	{"me b bad", "me Zm9 b\r\n", []string{"ERR CLIENT_ERROR bad command line format (me)"}},
	{"me b not alone", "me Zm9v bb\r\n", []string{"me k=Zm9v"}},
	{"me no key", "me\r\n", []string{"ERR CLIENT_ERROR bad command line format (me)"}},
	{"me key 251", "me " + key251 + "\r\n", []string{"ERR CLIENT_ERROR bad command line format (me)"}},
	{"m unknown", "mz a\r\n", []string{"ERR ERROR"}},
	{"m three letters", "mgg a\r\n", []string{"ERR ERROR"}},

	// mg.
	{"mg bare", "mg a\r\n", []string{"mg k=a"}},
	{"mg no key", "mg\r\n", []string{"ERR ERROR (mg)"}},
	{"mg flags", "mg a v c f h k l O123 q s t u\r\n",
		[]string{`mg k=a q flags=["v" "c" "f" "h" "k" "l" "O123" "q" "s" "t" "u"]`}},
	{"mg ttls", "mg a N30 R10 T-1 E99\r\n", []string{`mg k=a flags=["N30" "R10" "T-1" "E99"] T=-1 N=30 R=10 E=99`}},
	{"mg key 250", "mg " + key250 + " v\r\n", []string{"mg k=" + key250 + ` flags=["v"]`}},
	{"mg key 251", "mg " + key251 + " v\r\n", []string{"ERR CLIENT_ERROR bad command line format (mg)"}},
	{"mg 18 tokens", "mg a" + strings.Repeat(" O", 1) + " a b c d e f g h i j k l m n o\r\n",
		[]string{"ERR CLIENT_ERROR invalid flag (mg)"}},
	{"mg 20 tokens", "mg a v c f h k l O1 q s t u T1 N1 R1 I P L E\r\n",
		[]string{"ERR CLIENT_ERROR options flags are too long (mg)"}},
	{"mg 19 tokens", "mg a v c f h k l O1 q s t u T1 N1 R1 I P L\r\n",
		[]string{`mg k=a q flags=["v" "c" "f" "h" "k" "l" "O1" "q" "s" "t" "u" "T1" "N1" "R1" "I" "P" "L"] T=1 N=1 R=1`}},
	{"mg duplicate", "mg a v v\r\n", []string{"ERR CLIENT_ERROR duplicate flag (mg)"}},
	{"mg duplicate by first byte", "mg a O1 Oabc\r\n", []string{"ERR CLIENT_ERROR duplicate flag (mg)"}},
	{"mg high byte", "mg a \x80\r\n", []string{"ERR CLIENT_ERROR duplicate flag (mg)"}},
	{"mg unknown flag", "mg a v z\r\n", []string{"ERR CLIENT_ERROR invalid flag (mg)"}},
	{"mg digit flag", "mg a 1\r\n", []string{"ERR CLIENT_ERROR invalid flag (mg)"}},
	{"mg bad T", "mg a Tx\r\n", []string{"ERR CLIENT_ERROR bad token in command line format (mg)"}},
	{"mg empty N", "mg a N\r\n", []string{"ERR CLIENT_ERROR bad token in command line format (mg)"}},
	{"mg bad F", "mg a Fx\r\n", []string{"ERR CLIENT_ERROR bad command line format (mg)"}},
	{"mg bad F after bad T", "mg a Tx Fx\r\n", []string{"ERR CLIENT_ERROR bad token in command line format (mg)"}},
	{"mg bad then unknown", "mg a Tx z\r\n", []string{"ERR CLIENT_ERROR invalid flag (mg)"}},
	{"mg bad D", "mg a D-1\r\n", []string{"ERR CLIENT_ERROR invalid numeric delta value (mg)"}},
	{"mg bad J", "mg a Jx\r\n", []string{"ERR CLIENT_ERROR invalid numeric initial value (mg)"}},
	{"mg M length", "mg a MEE\r\n", []string{"ERR CLIENT_ERROR incorrect length for M token (mg)"}},
	{"mg b", "mg Zm9v b v\r\n", []string{`mg k="foo" b64 flags=["b" "v"]`}},
	{"mg b binary", "mg AAEC/w== b\r\n", []string{`mg k="\x00\x01\x02\xff" b64 flags=["b"]`}},
	{"mg b junk skipped", "mg Zm*9v b\r\n", []string{`mg k="foo" b64 flags=["b"]`}},
	{"mg b bad length", "mg Zm9 b\r\n", []string{"ERR CLIENT_ERROR error decoding key (mg)"}},
	{"mg b three pads", "mg Z=== b\r\n", []string{"ERR CLIENT_ERROR error decoding key (mg)"}},
	{"mg b no alphabet", "mg *** b\r\n", []string{"ERR CLIENT_ERROR error decoding key (mg)"}},
	{"mg opaque long is left to the caller", "mg a O" + strings.Repeat("x", 40) + "\r\n",
		[]string{"mg k=a flags=[\"O" + strings.Repeat("x", 40) + "\"]"}},
	{"mg tab in flag", "mg a T\t5\r\n", []string{`mg k=a flags=["T\t5"] T=5`}},

	// ms.
	{"ms", "ms a 3\r\nabc\r\n", []string{`ms k=a data="abc"`}},
	{"ms flags", "ms a 2 T10 F5 C7 I k O1 q c MA s N3 E9\r\nxy\r\n",
		[]string{`ms k=a q flags=["T10" "F5" "C7" "I" "k" "O1" "q" "c" "MA" "s" "N3" "E9"] M=A F=5 T=10 N=3 C=7 E=9 data="xy"`}},
	{"ms empty", "ms a 0\r\n\r\n", []string{`ms k=a data=""`}},
	{"ms no key", "ms\r\n", []string{"ERR ERROR (ms)"}},
	{"ms no length", "ms a\r\nversion\r\n", []string{"ERR CLIENT_ERROR bad command line format (ms)", "version"}},
	{"ms bad length", "ms a x\r\nversion\r\n", []string{"ERR CLIENT_ERROR bad command line format (ms)", "version"}},
	{"ms negative length", "ms a -1\r\nversion\r\n", []string{"ERR CLIENT_ERROR bad command line format (ms)", "version"}},
	{"ms key 251", "ms " + key251 + " 1\r\nx\r\n", []string{"ERR CLIENT_ERROR bad command line format (ms)", "ERR ERROR"}},
	{"ms too many tokens", "ms a 1 a b c d e f g h i j k l m n o p q\r\nx\r\n",
		[]string{"ERR CLIENT_ERROR options flags too long (ms)", "ERR ERROR"}},
	{"ms unknown flag swallows", "ms a 3 z\r\nabc\r\nversion\r\n",
		[]string{"ERR CLIENT_ERROR invalid flag (ms)", "version"}},
	{"ms swallow is blind", "ms a 3 z\r\nabcdeversion\r\n",
		[]string{"ERR CLIENT_ERROR invalid flag (ms)", "version"}},
	{"ms duplicate", "ms a 1 T1 T2\r\nx\r\nversion\r\n", []string{"ERR CLIENT_ERROR duplicate flag (ms)", "version"}},
	{"ms bad mode", "ms a 1 MX\r\nx\r\nversion\r\n", []string{"ERR CLIENT_ERROR invalid mode for ms M token (ms)", "version"}},
	{"ms lower mode", "ms a 1 Ms\r\nx\r\n", []string{"ERR CLIENT_ERROR invalid mode for ms M token (ms)"}},
	{"ms modes", "ms a 1 ME\r\nx\r\nms a 1 MS\r\nx\r\nms a 1 MR\r\nx\r\nms a 1 MP\r\nx\r\n", []string{
		`ms k=a flags=["ME"] M=E data="x"`, `ms k=a flags=["MS"] M=S data="x"`,
		`ms k=a flags=["MR"] M=R data="x"`, `ms k=a flags=["MP"] M=P data="x"`}},
	{"ms opaque too long", "ms a 1 O" + strings.Repeat("x", 32) + "\r\nx\r\nversion\r\n",
		[]string{"ERR CLIENT_ERROR opaque token too long (ms)", "version"}},
	{"ms opaque 32", "ms a 1 O" + strings.Repeat("x", 31) + "\r\nx\r\n",
		[]string{`ms k=a flags=["O` + strings.Repeat("x", 31) + `"] data="x"`}},
	{"ms mode error wins over opaque", "ms a 1 MX O" + strings.Repeat("x", 40) + "\r\nx\r\n",
		[]string{"ERR CLIENT_ERROR invalid mode for ms M token (ms)"}},
	{"ms bad F", "ms a 1 F-1\r\nx\r\n", []string{"ERR CLIENT_ERROR bad command line format (ms)"}},
	{"ms b", "ms Zm9v 1 b k\r\nx\r\n", []string{`ms k="foo" b64 flags=["b" "k"] data="x"`}},
	{"ms b bad", "ms Zm9 1 b\r\nx\r\nversion\r\n", []string{"ERR CLIENT_ERROR error decoding key (ms)", "version"}},
	{"ms bad data chunk", "ms a 1\r\nxyz\r\n", []string{"ERR CLIENT_ERROR bad data chunk (ms)", "ERR ERROR"}},
	{"ms bad data chunk quiet", "ms a 1 q\r\nxy\r\nversion\r\n", []string{"ERR CLIENT_ERROR bad data chunk (ms)", "ERR ERROR", "version"}},
	{"ms 19 tokens", "ms a 1 a b c d e f g h i j k l m n o p\r\nx\r\nversion\r\n", []string{"ERR CLIENT_ERROR invalid flag (ms)", "version"}},
	{"ms too large", "ms a 2000000 T1\r\n" + strings.Repeat("x", 2000000) + "\r\nversion\r\n",
		[]string{`ms k=a flags=["T1"] T=1 toolarge`, "version"}},
	{"ms too large with flags", "ms a 1048514 F1\r\n" + strings.Repeat("x", 1048514) + "\r\nversion\r\n",
		[]string{`ms k=a flags=["F1"] F=1 toolarge`, "version"}},

	// md.
	{"md", "md a\r\n", []string{"md k=a"}},
	{"md flags", "md a q C5 I T30 k O9 x E7 b\r\n", []string{"ERR CLIENT_ERROR invalid or duplicate flag (md)"}},
	{"md flags ok", "md Zm9v q C5 I T30 k O9 x E7 b\r\n",
		[]string{`md k="foo" b64 q flags=["q" "C5" "I" "T30" "k" "O9" "x" "E7" "b"] T=30 C=5 E=7`}},
	{"md no key", "md\r\n", []string{"ERR ERROR (md)"}},
	{"md key 251", "md " + key251 + "\r\n", []string{"ERR CLIENT_ERROR bad command line format (md)"}},
	{"md too many", "md a q a b c d e f g h i j k l m n o p q\r\n", []string{"ERR CLIENT_ERROR options flags too long (md)"}},
	{"md unknown", "md a z\r\n", []string{"ERR CLIENT_ERROR invalid or duplicate flag (md)"}},
	{"md bad C", "md a Cx\r\n", []string{"ERR CLIENT_ERROR invalid or duplicate flag (md)"}},
	{"md opaque too long", "md a O" + strings.Repeat("x", 32) + "\r\n", []string{"ERR CLIENT_ERROR opaque token too long (md)"}},

	// ma.
	{"ma", "ma a\r\n", []string{"ma k=a"}},
	{"ma flags", "ma a N0 J10 D5 MD T3 q t c v k O1 C2\r\n",
		[]string{`ma k=a q flags=["N0" "J10" "D5" "MD" "T3" "q" "t" "c" "v" "k" "O1" "C2"] M=D T=3 C=2 D=5 J=10`}},
	{"ma modes", "ma a MI\r\nma a M+\r\nma a M-\r\n",
		[]string{`ma k=a flags=["MI"] M=I`, `ma k=a flags=["M+"] M=+`, `ma k=a flags=["M-"] M=-`}},
	{"ma bad mode", "ma a MX\r\n", []string{"ERR CLIENT_ERROR invalid mode for ma M token (ma)"}},
	{"ma bad D", "ma a Dx\r\n", []string{"ERR CLIENT_ERROR invalid or duplicate flag (ma)"}},
	{"ma duplicate", "ma a D1 D2\r\n", []string{"ERR CLIENT_ERROR invalid or duplicate flag (ma)"}},
	{"ma no key", "ma\r\n", []string{"ERR ERROR (ma)"}},

	// Meta and classic commands share the stream.
	{"mixed", "set a 0 0 1\r\nx\r\nmg a v\r\nms b 1 T0\r\ny\r\nget b\r\nmn\r\n",
		[]string{`set k=a data="x"`, `mg k=a flags=["v"]`, `ms k=b flags=["T0"] data="y"`, "get k=b", "mn"}},
}

func TestDecodeMeta(t *testing.T) {
	for _, tt := range metaDecodeTests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.in) > 4096 {
				// Every split of a big value is quadratic: check whole
				// and a few splits.
				for _, at := range []int{0, 1, 10, len(tt.in) / 2, len(tt.in) - 3} {
					chunks := [][]byte{[]byte(tt.in)}
					if at > 0 {
						chunks = [][]byte{[]byte(tt.in[:at]), []byte(tt.in[at:])}
					}
					if got := run(t, newDefault(), chunks); !equal(got, tt.want) {
						t.Fatalf("split@%d:\n got  %.200q\n want %q", at, got, tt.want)
					}
				}
				return
			}
			check(t, newDefault, tt.in, tt.want)
		})
	}
}

func TestDecodeMetaPipelined(t *testing.T) {
	var in strings.Builder
	var want []string
	for _, tt := range metaDecodeTests {
		if len(tt.in) > 4096 {
			continue
		}
		in.WriteString(tt.in)
		want = append(want, tt.want...)
	}
	stream := []byte(in.String())
	for i := 0; i < len(stream); i += 5 {
		chunks := [][]byte{stream}
		if i > 0 {
			chunks = [][]byte{stream[:i], stream[i:]}
		}
		if got := run(t, newDefault(), chunks); !equal(got, want) {
			t.Fatalf("split@%d:\n got  %q\n want %q", i, got, want)
		}
	}
}

func TestMetaFlagsHas(t *testing.T) {
	d := newDefault()
	var req Request
	if _, _, err := d.Decode([]byte("mg a v O1 k\r\n"), &req); err != nil {
		t.Fatal(err)
	}
	for _, c := range []byte("vOk") {
		if !req.Meta.Has(c) {
			t.Errorf("Has(%c) false", c)
		}
	}
	for _, c := range []byte("bqcT \x00\xff") {
		if req.Meta.Has(c) {
			t.Errorf("Has(%q) true", c)
		}
	}
	if req.Meta.OpaqueTooLong() {
		t.Error("short opaque reported too long")
	}
	d.Decode([]byte("ma a O"+strings.Repeat("y", 32)+"\r\n"), &req)
	if !req.Meta.OpaqueTooLong() {
		t.Error("long opaque not reported")
	}
}

func TestBase64(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"Zm9v", "foo", true},
		{"Zm8=", "fo", true},
		{"Zg==", "f", true},
		{"Zg==Zm9v", "f", true}, // stops after the padded group
		{"Z\x01m\x02 9v", "foo", true},
		{"Zm9", "", false},
		{"", "", false},
		{"Z===", "", false},
		{"====", "", false},
		{"Z=g=", "d", true},
	} {
		var dst [KeyMax]byte
		n, ok := decodeBase64(dst[:], []byte(tt.in))
		if ok != tt.ok || string(dst[:n]) != tt.want {
			t.Errorf("decodeBase64(%q) = %q, %v; want %q, %v", tt.in, dst[:n], ok, tt.want, tt.ok)
		}
	}
	for n := 0; n < 40; n++ {
		key := bytes.Repeat([]byte{byte(n * 7), 0xff, 0}, n)[:n]
		got := AppendBase64(nil, key)
		if want := base64.StdEncoding.EncodeToString(key); string(got) != want {
			t.Fatalf("AppendBase64(%x) = %s, want %s", key, got, want)
		}
		if n == 0 {
			continue
		}
		var dst [KeyMax]byte
		m, ok := decodeBase64(dst[:], got)
		if !ok || !bytes.Equal(dst[:m], key) {
			t.Fatalf("round trip of %x: %x %v", key, dst[:m], ok)
		}
	}
	if got := string(AppendMetaKey(nil, []byte("foo"), true)); got != " kZm9v b" {
		t.Errorf("AppendMetaKey b64 = %q", got)
	}
	if got := string(AppendMetaKey(nil, []byte("foo"), false)); got != " kfoo" {
		t.Errorf("AppendMetaKey = %q", got)
	}
}
