package interop

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/internal/testserver"
)

// The differential test: every script in testdata/diff is sent to Debian's
// memcached and to mnemo, and the replies must be the same bytes after the
// Normalisations. testdata/diff/README.md documents the script format.

// syncRequest is what #sync sends, and syncReply what it waits for: a
// meta no-op, answered once every request before it has been executed.
const (
	syncRequest = "mn\r\n"
	syncReply   = "MN\r\n"
)

// A session has no time limit of its own: each read and write waits at
// most testserver.Patience (a hang), however long the whole script takes.

// segment is bytes written with one Write, then, for chunk, a wait until
// the server has read them (so that it reads the next segment apart), or
// for sync, a wait until it has answered them all, then a pause.
type segment struct {
	data  []byte
	chunk bool
	sync  bool
	pause time.Duration
}

// script is a parsed testdata/diff file.
type script struct {
	flags    []string
	segments []segment
}

// parseScript parses the script format described in testdata/diff/README.md.
func parseScript(src string) (*script, error) {
	s := &script{}
	var cur []byte
	flush := func(pause time.Duration) {
		s.segments = append(s.segments, segment{data: cur, pause: pause})
		cur = nil
	}
	src = strings.TrimSuffix(src, "\n")
	for i, line := range strings.Split(src, "\n") {
		line = strings.TrimSuffix(line, "\r")
		lineNo := i + 1
		if !strings.HasPrefix(line, "#") {
			b, eol, err := unescapeLine(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", lineNo, err)
			}
			cur = append(cur, b...)
			if eol {
				cur = append(cur, "\r\n"...)
			}
			continue
		}
		name, arg, _ := strings.Cut(line[1:], ":")
		arg = strings.TrimSpace(arg)
		switch {
		case name == "" || strings.HasPrefix(name, " ") || strings.HasPrefix(name, "#"):
			// A comment.
		case name == "flags":
			if lineNo != 1 {
				return nil, fmt.Errorf("line %d: #flags must be the first line", lineNo)
			}
			s.flags = strings.Fields(arg)
		case name == "sleep":
			secs, err := strconv.ParseFloat(arg, 64)
			if err != nil || secs < 0 || secs > 5 {
				return nil, fmt.Errorf("line %d: bad #sleep %q", lineNo, arg)
			}
			flush(time.Duration(secs * float64(time.Second)))
		case name == "chunk":
			s.segments = append(s.segments, segment{data: cur, chunk: true})
			cur = nil
		case name == "sync":
			cur = append(cur, syncRequest...)
			s.segments = append(s.segments, segment{data: cur, sync: true})
			cur = nil
		case name == "send-raw":
			b, err := strconv.Unquote(arg)
			if err != nil {
				return nil, fmt.Errorf("line %d: #send-raw wants a Go-quoted string: %v", lineNo, err)
			}
			cur = append(cur, b...)
		case name == "repeat":
			n, q, _ := strings.Cut(arg, " ")
			count, err := strconv.Atoi(n)
			if err != nil || count < 0 || count > 1<<26 {
				return nil, fmt.Errorf("line %d: bad #repeat count %q", lineNo, n)
			}
			b, err := strconv.Unquote(strings.TrimSpace(q))
			if err != nil {
				return nil, fmt.Errorf("line %d: #repeat wants a Go-quoted string: %v", lineNo, err)
			}
			cur = append(cur, bytes.Repeat([]byte(b), count)...)
		default:
			return nil, fmt.Errorf("line %d: unknown directive %q", lineNo, line)
		}
	}
	flush(0)
	return s, nil
}

// unescapeLine decodes a request line's escapes (\\ \r \n \t \xHH) and
// reports whether the line ends with a line end: a single trailing
// backslash means it does not.
func unescapeLine(line string) (b []byte, eol bool, err error) {
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		if i == len(line)-1 {
			return b, false, nil
		}
		i++
		switch line[i] {
		case '\\':
			b = append(b, '\\')
		case 'r':
			b = append(b, '\r')
		case 'n':
			b = append(b, '\n')
		case 't':
			b = append(b, '\t')
		case 'x':
			if i+2 >= len(line) {
				return nil, false, errors.New(`short \x escape`)
			}
			v, perr := strconv.ParseUint(line[i+1:i+3], 16, 8)
			if perr != nil {
				return nil, false, fmt.Errorf(`bad \x escape %q`, line[i-1:i+3])
			}
			b = append(b, byte(v))
			i += 2
		default:
			return nil, false, fmt.Errorf(`unknown escape \%c`, line[i])
		}
	}
	return b, true, nil
}

// sessionResult is what one server answered to a script.
type sessionResult struct {
	reply []byte
	err   error // a read error other than EOF or a reset
}

// replyStream collects what a server sends on a session until it closes
// the connection.
type replyStream struct {
	mu   sync.Mutex
	cond sync.Cond
	buf  []byte
	done bool
	err  error
}

func newReplyStream() *replyStream {
	r := &replyStream{}
	r.cond.L = &r.mu
	return r
}

// readFrom reads c to its end.
func (r *replyStream) readFrom(c net.Conn) {
	b := make([]byte, 64<<10)
	for {
		n, err := c.Read(b)
		r.mu.Lock()
		r.buf = append(r.buf, b[:n]...)
		if err != nil {
			switch {
			case errors.Is(err, io.EOF) || isReset(err):
			case errors.Is(err, os.ErrDeadlineExceeded):
				r.err = fmt.Errorf("no reply for %v, the server hangs: %w", patience, err)
			default:
				r.err = err
			}
			r.done = true
		}
		r.cond.Broadcast()
		r.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// waitSyncs waits until n sync replies have arrived; false if the stream
// ended first.
func (r *replyStream) waitSyncs(n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for bytes.Count(r.buf, []byte(syncReply)) < n {
		if r.done {
			return false
		}
		r.cond.Wait()
	}
	return true
}

// result waits for the end of the stream.
func (r *replyStream) result() sessionResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	for !r.done {
		r.cond.Wait()
	}
	return sessionResult{reply: r.buf, err: r.err}
}

// runSession sends the script's segments to addr and reads the replies
// until the server closes the connection.
func runSession(addr string, s *script) sessionResult {
	nc, err := net.DialTimeout("tcp", addr, patience)
	if err != nil {
		return sessionResult{err: err}
	}
	defer nc.Close()
	conn := testserver.Patient(nc)
	replies := newReplyStream()
	go replies.readFrom(conn)
	syncs := 0
	var waitErr error
	for _, seg := range s.segments {
		if len(seg.data) > 0 {
			if _, err := conn.Write(seg.data); err != nil {
				break // the server closed the connection: see what it said
			}
		}
		if seg.chunk {
			if err := testserver.WaitConsumed(nc); err != nil {
				waitErr = fmt.Errorf("waiting for the server to read a chunk: %w", err)
				break
			}
		}
		if seg.sync {
			syncs++
			if !replies.waitSyncs(syncs) {
				break
			}
		}
		time.Sleep(seg.pause)
	}
	if waitErr != nil {
		nc.Close() // ends the reader
		r := replies.result()
		r.err = waitErr
		return r
	}
	return replies.result()
}

// isReset reports whether err is the peer resetting the connection, which
// a server that closes with unread input causes.
func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "connection reset")
}

func TestDifferential(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "diff", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scripts in testdata/diff")
	}
	lookPath(t, "memcached", "memcached")
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		if _, ok := knownBugScripts[name]; ok {
			continue // run by TestKnownBugScripts
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runScriptFile(t, file)
		})
	}
}

// runScriptFile parses one script and compares the two servers' replies.
func runScriptFile(t *testing.T, file string) {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s, err := parseScript(string(src))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	compareSession(t, s)
}

// clockTries is how many times compareSession runs a script whose
// replies differ while a server's clock ticked.
const clockTries = 3

// compareSession runs s against a fresh memcached and a fresh mnemo at
// the same time and compares the replies.
//
// Replies that tell times (a meta TTL, me's la=, exptimes) are the same
// only when no clock ticks between the command that stores a time and the
// one that tells it; within one batch that is all but certain, but on a
// loaded machine a batch can straddle a tick. So when the replies differ
// and a server's clock (its "stats time") ticked during the session, the
// script runs again on fresh servers, up to clockTries times; replies
// that differ with both clocks still are always a failure. Scripts that
// #sleep wait out ticks by design (see testdata/diff/README.md) and are
// never run again.
func compareSession(t *testing.T, s *script) {
	t.Helper()
	sleeps := slices.ContainsFunc(s.segments, func(g segment) bool { return g.pause > 0 })
	for try := 1; ; try++ {
		mc, mn, ticked := runPair(t, s)
		if mc.err != nil {
			t.Errorf("memcached session: %v (reply so far %q)", mc.err, clip(mc.reply))
		}
		if mn.err != nil {
			t.Errorf("mnemo session: %v (reply so far %q)", mn.err, clip(mn.reply))
		}
		if os.Getenv("INTEROP_SHOW") != "" {
			t.Logf("memcached: %q\nmnemo:     %q", clip(mc.reply), clip(mn.reply))
		}
		want, got := Normalise(mc.reply), Normalise(mn.reply)
		if bytes.Equal(want, got) {
			return
		}
		if ticked != "" && !sleeps && try < clockTries {
			t.Logf("replies differ, and %s's clock ticked during the session: running it again on fresh servers", ticked)
			continue
		}
		t.Errorf("replies differ (flags %q)\n%s", s.flags, describeDiff(want, got))
		return
	}
}

// runPair runs s on a fresh memcached and a fresh mnemo at the same time
// and tells which server's clock ticked during the sessions, if any.
func runPair(t *testing.T, s *script) (mc, mn sessionResult, ticked string) {
	t.Helper()
	mcAddr := startMemcached(t, append(slices.Clone(testserver.MemcachedDeterministic), s.flags...)...)
	mnAddr := startMnemo(t, s.flags...)
	mc0, mn0 := statTime(t, mcAddr), statTime(t, mnAddr)
	mcDone := make(chan sessionResult, 1)
	go func() { mcDone <- runSession(mcAddr, s) }()
	mn = runSession(mnAddr, s)
	mc = <-mcDone
	switch {
	case mc.err != nil || mn.err != nil:
	case statTime(t, mcAddr) != mc0:
		ticked = "memcached"
	case statTime(t, mnAddr) != mn0:
		ticked = "mnemo"
	}
	return mc, mn, ticked
}

// statTime returns the "time" stat of the server at addr: its clock, in
// seconds, which stored and told times are read from.
func statTime(t *testing.T, addr string) string {
	t.Helper()
	c := dial(t, addr)
	defer c.conn.Close()
	_, values := c.stats("")
	return values["time"]
}

// describeDiff shows where two reply streams part and what follows.
func describeDiff(want, got []byte) string {
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	// Start the excerpt at the beginning of the line that differs.
	start := bytes.LastIndexByte(want[:i], '\n') + 1
	return fmt.Sprintf("memcached %d bytes, mnemo %d bytes; first difference at byte %d\n"+
		"  memcached: %q\n  mnemo:     %q\nfull memcached: %q\nfull mnemo:     %q",
		len(want), len(got), i, clip(want[start:]), clip(got[start:]), clip(want), clip(got))
}

// clip shortens a reply for a message.
func clip(b []byte) []byte {
	const max = 600
	if len(b) <= max {
		return b
	}
	return append(append(bytes.Clone(b[:max/2]), "..."...), b[len(b)-max/2:]...)
}

func TestParseScript(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		flags []string
		segs  []segment
		err   bool
	}{
		{name: "plain", src: "get a\nquit\n", segs: []segment{{data: []byte("get a\r\nquit\r\n")}}},
		{name: "flags", src: "#flags: -I 2m -C\nquit\n", flags: []string{"-I", "2m", "-C"},
			segs: []segment{{data: []byte("quit\r\n")}}},
		{name: "escapes", src: `a\x00b\\c\r\n\t` + "\n", segs: []segment{{data: []byte("a\x00b\\c\r\n\t\r\n")}}},
		{name: "no line end", src: "set a 0 0 1\\\n#chunk\nX\nquit\n", segs: []segment{
			{data: []byte("set a 0 0 1"), chunk: true}, {data: []byte("X\r\nquit\r\n")}}},
		{name: "sleep", src: "x\n#sleep: 1.5\ny\n", segs: []segment{
			{data: []byte("x\r\n"), pause: 1500 * time.Millisecond}, {data: []byte("y\r\n")}}},
		{name: "sync", src: "x\n#sync\n#sleep: 2\ny\n", segs: []segment{
			{data: []byte("x\r\nmn\r\n"), sync: true}, {pause: 2 * time.Second}, {data: []byte("y\r\n")}}},
		{name: "raw and repeat", src: "#send-raw: \"a\\r\"\n#repeat: 3 \"xy\"\n# comment\n",
			segs: []segment{{data: []byte("a\rxyxyxy")}}},
		{name: "empty line", src: "\nquit\n", segs: []segment{{data: []byte("\r\nquit\r\n")}}},
		{name: "unknown directive", src: "#bogus\n", err: true},
		{name: "late flags", src: "x\n#flags: -C\n", err: true},
		{name: "bad escape", src: `a\q` + "\n", err: true},
		{name: "short hex", src: `a\x4` + "\n", err: true},
		{name: "bad sleep", src: "#sleep: soon\n", err: true},
		{name: "bad raw", src: "#send-raw: abc\n", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseScript(tt.src)
			if tt.err {
				if err == nil {
					t.Fatalf("parseScript(%q) succeeded, want an error", tt.src)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseScript(%q): %v", tt.src, err)
			}
			if fmt.Sprint(s.flags) != fmt.Sprint(tt.flags) {
				t.Errorf("flags = %q, want %q", s.flags, tt.flags)
			}
			if len(s.segments) != len(tt.segs) {
				t.Fatalf("segments = %v, want %v", s.segments, tt.segs)
			}
			for i := range tt.segs {
				got, want := s.segments[i], tt.segs[i]
				if !bytes.Equal(got.data, want.data) || got.chunk != want.chunk || got.sync != want.sync || got.pause != want.pause {
					t.Errorf("segment %d = %q/%v/%v/%v, want %q/%v/%v/%v", i, got.data, got.chunk, got.sync, got.pause,
						want.data, want.chunk, want.sync, want.pause)
				}
			}
		})
	}
}

func TestNormalise(t *testing.T) {
	tests := []struct{ in, want string }{
		{"VERSION 1.6.18-mnemo\r\n", "VERSION <version>\r\n"},
		{"VERSION 1.6.18\r\n", "VERSION <version>\r\n"},
		{"OK\r\nVERSION 1.6.18\r\nEND\r\n", "OK\r\nVERSION <version>\r\nEND\r\n"},
		// Only whole reply lines: a value that says VERSION is left alone.
		{"VALUE k 0 12\r\nxVERSION 1.6\r\nEND\r\n", "VALUE k 0 12\r\nxVERSION 1.6\r\nEND\r\n"},
		{"STORED\r\n", "STORED\r\n"},
	}
	for _, tt := range tests {
		if got := string(Normalise([]byte(tt.in))); got != tt.want {
			t.Errorf("Normalise(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
