package text

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestItemSizeBoundary checks the item size arithmetic against the
// boundaries measured on memcached 1.6.18 with -I 1m and -I 2m: the largest
// value stored and the smallest refused, for short and long keys, with and
// without flags.
func TestItemSizeBoundary(t *testing.T) {
	tests := []struct {
		limit, nkey int
		flags       uint32
		largest     int // largest value length stored
	}{
		{1 << 20, 1, 0, 1048516},
		{1 << 20, 1, 1, 1048512},
		{1 << 20, 250, 0, 1048267},
		{1 << 20, 250, 1, 1048263},
		{2 << 20, 1, 0, 2097092},
		{2 << 20, 1, 1, 2097088},
		{2 << 20, 250, 0, 2096843},
		{2 << 20, 250, 1, 2096839},
	}
	for _, tt := range tests {
		d := NewDecoder(tt.limit)
		if !d.fits(tt.nkey, tt.flags, tt.largest+2) {
			t.Errorf("limit %d key %d flags %d: %d bytes refused", tt.limit, tt.nkey, tt.flags, tt.largest)
		}
		if d.fits(tt.nkey, tt.flags, tt.largest+3) {
			t.Errorf("limit %d key %d flags %d: %d bytes accepted", tt.limit, tt.nkey, tt.flags, tt.largest+1)
		}
		d.NoCAS = true
		if !d.fits(tt.nkey, tt.flags, tt.largest+2+casSize) || d.fits(tt.nkey, tt.flags, tt.largest+3+casSize) {
			t.Errorf("limit %d key %d flags %d: NoCAS boundary wrong", tt.limit, tt.nkey, tt.flags)
		}
	}
}

// TestTooLargeSwallow feeds refused values, split every way, and checks
// that the data block is swallowed exactly (even when it does not end in
// "\r\n") and decoding resumes after it.
func TestTooLargeSwallow(t *testing.T) {
	// With a 200-byte limit, key "k" and flags 0: 48+1+1+n+2+8 <= 200, so
	// 140 bytes is the largest value.
	dec := func() *Decoder { return NewDecoder(200) }
	v140 := strings.Repeat("v", 140)
	v141 := strings.Repeat("v", 141)
	check(t, dec, "set k 0 0 140\r\n"+v140+"\r\nversion\r\n",
		[]string{`set k=k data="` + v140 + `"`, "version"})
	check(t, dec, "set k 0 0 141\r\n"+v141+"\r\nversion\r\n",
		[]string{"ERR SERVER_ERROR object too large for cache (set)", "version"})
	check(t, dec, "set k 0 0 141 noreply\r\n"+v141+"\r\nversion\r\n",
		[]string{"ERR SERVER_ERROR object too large for cache silent (set)", "version"})
	// Flags take 4 bytes.
	check(t, dec, "set k 1 0 137\r\n"+v141[:137]+"\r\nset k 1 0 136\r\n"+v141[:136]+"\r\n",
		[]string{"ERR SERVER_ERROR object too large for cache (set)", `set k=k f=1 data="` + v141[:136] + `"`})
	// The swallowed block is not checked for "\r\n".
	check(t, dec, "append k 0 0 141\r\n"+v141+"zzversion\r\n",
		[]string{"ERR SERVER_ERROR object too large for cache (append)", "version"})
	// A value length of 2^31-3 is swallowed, not refused as a bad line.
	d := NewDecoder(0)
	var req Request
	n, _, err := d.Decode([]byte("set k 0 0 2147483645 noreply\r\nabc"), &req)
	if n != 33 || !errors.Is(err, ErrTooLarge) || d.Swallowing() != 2147483645+2-3 {
		t.Fatalf("got n %d err %v swallowing %d", n, err, d.Swallowing())
	}
	if req.Cmd != CmdSet || string(req.Key) != "k" || !req.Noreply {
		t.Fatalf("request on error: %s", fmtReq(&req))
	}
}

// TestSwallowManyCalls swallows a refused 1 MiB value fed in 4 KiB reads.
func TestSwallowManyCalls(t *testing.T) {
	const size = 1<<20 + 1
	in := []byte(fmt.Sprintf("set big 0 0 %d\r\n", size))
	in = append(in, bytes.Repeat([]byte("x"), size)...)
	in = append(in, "\r\nget big\r\n"...)
	var chunks [][]byte
	for i := 0; i < len(in); i += 4096 {
		chunks = append(chunks, in[i:min(i+4096, len(in))])
	}
	d := NewDecoder(0)
	got := run(t, d, chunks)
	want := []string{"ERR SERVER_ERROR object too large for cache (set)", "get k=big"}
	if !equal(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
	// The decoder never needs more than one read buffered: every call
	// consumes what it is given.
	d = NewDecoder(0)
	var req Request
	line := len(fmt.Sprintf("set big 0 0 %d\r\n", size))
	n, _, err := d.Decode(in[:line+10], &req)
	if n != line+10 || err == nil {
		t.Fatalf("first call: n %d err %v", n, err)
	}
	for off := line + 10; d.Swallowing() > 0; {
		n, _, err := d.Decode(in[off:off+100], &req)
		if n != min(100, size+2-(off-line)) || err != nil || req.Cmd != CmdNone {
			t.Fatalf("swallow at %d: n %d err %v cmd %v", off, n, err, req.Cmd)
		}
		off += n
	}
}

// TestNeed checks that Decode asks for the whole data block at once.
func TestNeed(t *testing.T) {
	d := NewDecoder(0)
	var req Request
	in := []byte("set a 0 0 5\r\nhello\r\n")
	for i := 0; i < len(in); i++ {
		n, need, err := d.Decode(in[:i], &req)
		if n != 0 || err != nil {
			t.Fatalf("at %d: n %d err %v", i, n, err)
		}
		wantNeed := 0
		if i >= 13 {
			wantNeed = len(in)
		}
		if need != wantNeed {
			t.Fatalf("at %d: need %d, want %d", i, need, wantNeed)
		}
	}
	n, need, err := d.Decode(in, &req)
	if n != len(in) || need != 0 || err != nil || string(req.Data) != "hello" {
		t.Fatalf("whole: n %d need %d err %v data %q", n, need, err, req.Data)
	}
}

// checkStride is check for long inputs: splits at a stride and bytewise
// only when short.
func checkStride(t *testing.T, d func() *Decoder, in string, stride int, want []string) {
	t.Helper()
	b := []byte(in)
	if got := run(t, d(), [][]byte{b}); !equal(got, want) {
		t.Fatalf("whole: got %.200q want %.200q", got, want)
	}
	for i := 1; i < len(b); i += stride {
		if got := run(t, d(), [][]byte{b[:i], b[i:]}); !equal(got, want) {
			t.Fatalf("split@%d: got %.200q want %.200q", i, got, want)
		}
	}
}

func TestLongLines(t *testing.T) {
	closed := []string{"ERR text: command line too long silent close"}
	pad := func(n int) string { return strings.Repeat(" ", n) }

	// A non-get line may fill memcached's 16 KiB read buffer, "\n"
	// included.
	stats := "stats" + pad(MaxLine-len("stats")-2) + "\r\n"
	checkStride(t, newDefault, stats+"version\r\n", 509, []string{"stats", "version"})
	stats = "stats" + pad(MaxLine-len("stats")-1) + "\r\n"
	checkStride(t, newDefault, stats+"version\r\n", 509, closed)
	// Without any "\n", the connection is closed once MaxLine bytes are
	// buffered.
	d := NewDecoder(0)
	var req Request
	junk := []byte(strings.Repeat("x", MaxLine))
	if n, _, err := d.Decode(junk[:MaxLine-1], &req); n != 0 || err != nil {
		t.Fatalf("short junk: n %d err %v", n, err)
	}
	if _, _, err := d.Decode(junk, &req); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("junk: err %v", err)
	}

	// get and gets may be longer: 100 keys of 250 bytes.
	var keys []string
	for i := range 100 {
		keys = append(keys, fmt.Sprintf("%03d", i)+strings.Repeat("k", 247))
	}
	all := strings.Join(keys, " ")
	want := []string{"get k=" + keys[0] + " keys=[" + all + "]", "version"}
	checkStride(t, newDefault, "get "+all+"\r\nversion\r\n", 997, want)
	checkStride(t, newDefault, pad(100)+"get "+all+"\r\nversion\r\n", 997, want)
	checkStride(t, newDefault, pad(101)+"get "+all+"\r\nversion\r\n", 997, closed)
	want[0] = "gets" + want[0][3:]
	checkStride(t, newDefault, "gets "+all+"\r\nversion\r\n", 997, want)
	// gat is not a multiget for this rule (memcached closes it too).
	checkStride(t, newDefault, "gat 0 "+all+"\r\nversion\r\n", 997, closed)

	// MaxGetLine bounds get lines.
	small := func() *Decoder {
		d := NewDecoder(0)
		d.MaxGetLine = 20000
		return d
	}
	line := "get " + strings.Repeat("a ", (20000-4)/2) // 20000 bytes
	checkStride(t, small, line+"\nversion\r\n", 1499, []string{
		"get k=a keys=[" + strings.TrimSuffix(strings.Repeat("a ", (20000-4)/2), " ") + "]", "version"})
	checkStride(t, small, line+"a\nversion\r\n", 1499, closed)

	// A get line over MaxGetLine that holds a key over 250 bytes is
	// memcached's CLIENT_ERROR, not a close: the rest of the line is
	// discarded as it arrives and the connection goes on.
	badKey := []string{"ERR CLIENT_ERROR bad command line format", "version"}
	long := "get " + strings.Repeat("k", 30000)
	checkStride(t, small, long+"\r\nversion\r\n", 1499, badKey)
	checkStride(t, small, "get a "+long[4:]+" b\r\nversion\r\n", 2003, badKey)
	checkStride(t, newDefault, "get "+strings.Repeat("k", 2<<20)+"\r\nversion\r\n", 65521, badKey)
}

func TestDecodeZeroAllocs(t *testing.T) {
	inputs := []string{
		"get " + strings.Repeat("key ", 40) + "\r\n",
		"gats 100 a b c\r\n",
		"set key 1 2 5 noreply\r\nhello\r\n",
		"cas key 1 2 5 77\r\nhello\r\n",
		"incr key 10\r\n",
		"delete key 0 noreply\r\n",
		"touch key 10\r\n",
		"stats items\r\n",
		"flush_all 10\r\n",
		"version\r\n",
		"set " + key251 + " 0 0 1\r\n",
		"set a 0 0 1\r\nxy\r\n",
		"bogus\r\n",
		"set k 0 0 2000000\r\nxx",
		"mg Zm9v b v c f O123 k q t\r\n",
		"ms a 2 T10 F5 c MA I\r\nxy\r\n",
		"ms a 2000000 T10\r\nxy",
		"ms a 1 z\r\nx\r\n",
		"md a q I T30 C5\r\n",
		"ma a D5 N0 J3 MD v\r\n",
		"me Zm9v b\r\n",
		"mn\r\n",
	}
	d := NewDecoder(0)
	var req Request
	for _, in := range inputs {
		b := []byte(in)
		d.Decode(b, &req) // warm up the reused arrays
		d.swallow = 0
		allocs := testing.AllocsPerRun(100, func() {
			d.Decode(b, &req)
			d.swallow = 0
		})
		if allocs != 0 {
			t.Errorf("%.40q: %v allocs per Decode", in, allocs)
		}
	}
}

func TestRequestAliasesAndReuse(t *testing.T) {
	d := NewDecoder(0)
	var req Request
	buf := []byte("get a b c\r\nstats x y\r\nset k 0 0 1 noreply\r\nv\r\n")
	n, _, _ := d.Decode(buf, &req)
	if len(req.Keys) != 3 || &req.Key[0] != &buf[4] {
		t.Fatalf("keys do not alias buf: %q", req.Keys)
	}
	buf = buf[n:]
	n, _, _ = d.Decode(buf, &req)
	if req.Keys != nil || len(req.Args) != 2 || &req.Args[0][0] != &buf[6] {
		t.Fatalf("stats: %s", fmtReq(&req))
	}
	buf = buf[n:]
	d.Decode(buf, &req)
	if len(req.Args) != 5 || string(req.Args[4]) != "noreply" || req.Keys != nil {
		t.Fatalf("set args: %q", req.Args)
	}
}
