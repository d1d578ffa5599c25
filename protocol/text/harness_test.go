package text

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mnemo-cache/mnemo/internal/number"
)

// fmtReq renders a decoded request compactly for comparisons.
func fmtReq(r *Request) string {
	var b strings.Builder
	b.WriteString(r.Cmd.String())
	if r.Cmd == CmdMisc || string(r.Name) != r.Cmd.String() {
		fmt.Fprintf(&b, " name=%q", r.Name)
	}
	if r.Key != nil {
		if r.Meta.Base64 {
			fmt.Fprintf(&b, " k=%q", r.Key)
		} else {
			fmt.Fprintf(&b, " k=%s", r.Key)
		}
	}
	if len(r.Keys) > 1 {
		b.WriteString(" keys=[")
		for i, k := range r.Keys {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.Write(k)
		}
		b.WriteByte(']')
	}
	if r.Flags != 0 {
		fmt.Fprintf(&b, " f=%d", r.Flags)
	}
	if r.Exptime != 0 {
		fmt.Fprintf(&b, " e=%d", r.Exptime)
	}
	if r.Delta != 0 {
		fmt.Fprintf(&b, " d=%d", r.Delta)
	}
	if r.CAS != 0 {
		fmt.Fprintf(&b, " c=%d", r.CAS)
	}
	if r.Num != 0 {
		fmt.Fprintf(&b, " n=%d", r.Num)
	}
	if r.Cmd.IsMeta() {
		fmtMeta(&b, &r.Meta)
	}
	if r.Data != nil {
		fmt.Fprintf(&b, " data=%q", r.Data)
	}
	if r.Noreply {
		b.WriteString(" noreply")
	}
	switch r.Cmd {
	case CmdStats, CmdMisc, CmdShutdown:
		if len(r.Args) > 0 {
			fmt.Fprintf(&b, " args=%q", r.Args)
		}
	}
	return b.String()
}

// fmtMeta renders the decoded flags of a meta command.
func fmtMeta(b *strings.Builder, m *MetaFlags) {
	if m.Base64 {
		b.WriteString(" b64")
	}
	if m.Quiet {
		b.WriteString(" q")
	}
	if len(m.Tokens) > 0 {
		fmt.Fprintf(b, " flags=%q", m.Tokens)
	}
	if m.Mode != 0 {
		fmt.Fprintf(b, " M=%c", m.Mode)
	}
	if m.ClientFlags != 0 {
		fmt.Fprintf(b, " F=%d", m.ClientFlags)
	}
	if m.TTL != 0 {
		fmt.Fprintf(b, " T=%d", m.TTL)
	}
	if m.VivifyTTL != 0 {
		fmt.Fprintf(b, " N=%d", m.VivifyTTL)
	}
	if m.RecacheTTL != 0 {
		fmt.Fprintf(b, " R=%d", m.RecacheTTL)
	}
	if m.CompareCAS != 0 {
		fmt.Fprintf(b, " C=%d", m.CompareCAS)
	}
	if m.NewCAS != 0 {
		fmt.Fprintf(b, " E=%d", m.NewCAS)
	}
	if m.Delta != 1 && m.Delta != 0 {
		fmt.Fprintf(b, " D=%d", m.Delta)
	}
	if m.Initial != 0 {
		fmt.Fprintf(b, " J=%d", m.Initial)
	}
	if m.TooLarge {
		b.WriteString(" toolarge")
	}
}

// fmtErr renders a decode error and the command it was for.
func fmtErr(err error, r *Request) string {
	var e *Error
	if !errors.As(err, &e) {
		return "BAD ERROR TYPE " + err.Error()
	}
	s := "ERR " + e.Error()
	if e.Silent {
		s += " silent"
	}
	if e.Close {
		s += " close"
	}
	if r.Cmd != CmdNone {
		s += " (" + r.Cmd.String() + ")"
	}
	return s
}

// run feeds chunks, in order, to a fresh decoder the way a connection
// would: each chunk is appended to the pending bytes, which are then
// decoded until no more progress is made. It returns the requests and
// errors seen, checking the Decode contract on every call.
func run(t testing.TB, d *Decoder, chunks [][]byte) []string {
	t.Helper()
	var (
		buf []byte
		out []string
		req Request
	)
	for _, c := range chunks {
		buf = append(buf, c...)
		for {
			n, need, err := d.Decode(buf, &req)
			if n < 0 || n > len(buf) {
				t.Fatalf("Decode(%q) consumed %d of %d bytes", buf, n, len(buf))
			}
			if err != nil {
				if n == 0 {
					t.Fatalf("Decode(%q) returned %v without consuming", buf, err)
				}
				out = append(out, fmtErr(err, &req))
				buf = buf[n:]
				var e *Error
				if errors.As(err, &e) && e.Close {
					return out
				}
				continue
			}
			if n == 0 {
				if need != 0 && need <= len(buf) {
					t.Fatalf("Decode(%q) wants %d bytes but has %d", buf, need, len(buf))
				}
				if req.Cmd != CmdNone {
					t.Fatalf("Decode(%q) set a request without consuming", buf)
				}
				break
			}
			if need != 0 {
				t.Fatalf("Decode(%q) returned need %d with n %d", buf, need, n)
			}
			if req.Cmd == CmdMetaSet && !req.Meta.TooLarge {
				want, _ := number.ParseInt32(req.Args[1])
				if len(req.Data) != int(want) {
					t.Fatalf("Decode(%q): ms data %q is not %d bytes", buf, req.Data, want)
				}
			}
			if req.Cmd.IsStorage() {
				want, _ := number.ParseInt32(req.Args[3])
				if len(req.Data) != int(want) {
					t.Fatalf("Decode(%q): data %q is not %d bytes", buf, req.Data, want)
				}
			}
			if req.Cmd != CmdNone {
				out = append(out, fmtReq(&req))
			}
			buf = buf[n:]
		}
	}
	return out
}

// splits returns the ways every decoder test feeds its input: whole, split
// in two at every offset (first part, then the rest), and byte by byte.
func splits(in []byte) (names []string, feeds [][][]byte) {
	names = append(names, "whole")
	feeds = append(feeds, [][]byte{in})
	for i := 1; i < len(in); i++ {
		names = append(names, fmt.Sprintf("split@%d", i))
		feeds = append(feeds, [][]byte{in[:i], in[i:]})
	}
	bytewise := make([][]byte, len(in))
	for i := range in {
		bytewise[i] = in[i : i+1]
	}
	names = append(names, "bytewise")
	feeds = append(feeds, bytewise)
	return names, feeds
}

// check decodes in every way splits gives and compares with want.
func check(t *testing.T, newDecoder func() *Decoder, in string, want []string) {
	t.Helper()
	names, feeds := splits([]byte(in))
	for i, feed := range feeds {
		got := run(t, newDecoder(), feed)
		if !equal(got, want) {
			t.Fatalf("%s of %q:\n got  %q\n want %q", names[i], in, got, want)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
