package text

import (
	"errors"
	"strings"
	"testing"
)

// protocolCommands is every command memcached 1.6.18 accepts on its text
// port as Debian builds it (proto_text.c process_command_ascii, with
// extstore and TLS), each with a well-formed line (doc/protocol.txt) and
// the Command it must decode to. It is written out here, not taken from
// the command table, so that a command dropped from the table fails.
var protocolCommands = []struct {
	name string
	in   string
	cmd  Command
}{
	{"get", "get a b\r\n", CmdGet},
	{"gets", "gets a\r\n", CmdGets},
	{"gat", "gat 10 a\r\n", CmdGat},
	{"gats", "gats 10 a\r\n", CmdGats},
	{"bget", "bget a\r\n", CmdGet},
	{"set", "set a 0 0 1\r\nx\r\n", CmdSet},
	{"add", "add a 0 0 1\r\nx\r\n", CmdAdd},
	{"replace", "replace a 0 0 1\r\nx\r\n", CmdReplace},
	{"append", "append a 0 0 1\r\nx\r\n", CmdAppend},
	{"prepend", "prepend a 0 0 1\r\nx\r\n", CmdPrepend},
	{"cas", "cas a 0 0 1 5\r\nx\r\n", CmdCas},
	{"delete", "delete a\r\n", CmdDelete},
	{"incr", "incr a 1\r\n", CmdIncr},
	{"decr", "decr a 1\r\n", CmdDecr},
	{"touch", "touch a 10\r\n", CmdTouch},
	{"mg", "mg a v\r\n", CmdMetaGet},
	{"ms", "ms a 1 T10\r\nx\r\n", CmdMetaSet},
	{"md", "md a q\r\n", CmdMetaDelete},
	{"ma", "ma a D2\r\n", CmdMetaArith},
	{"mn", "mn\r\n", CmdMetaNoop},
	{"me", "me a\r\n", CmdMetaDebug},
	{"stats", "stats items\r\n", CmdStats},
	{"flush_all", "flush_all 10\r\n", CmdFlushAll},
	{"version", "version\r\n", CmdVersion},
	{"verbosity", "verbosity 1\r\n", CmdVerbosity},
	{"quit", "quit\r\n", CmdQuit},
	{"shutdown", "shutdown graceful\r\n", CmdShutdown},
	{"cache_memlimit", "cache_memlimit 64\r\n", CmdCacheMemlimit},
	{"slabs", "slabs reassign 1 2\r\n", CmdMisc},
	{"slabs", "slabs automove 1\r\n", CmdMisc},
	{"lru_crawler", "lru_crawler metadump all\r\n", CmdMisc},
	{"lru", "lru mode flat\r\n", CmdMisc},
	{"watch", "watch fetchers\r\n", CmdMisc},
	{"extstore", "extstore item_size 512\r\n", CmdMisc},
	{"refresh_certs", "refresh_certs\r\n", CmdMisc},
}

// unknownCommands are answered with plain ERROR: memcached's debug-build
// commands (absent from Debian's build, the reference), names close to
// real ones, and names of every length around the table's.
var unknownCommands = []string{
	"misbehave", "debugtime 1", "debugitem a",
	"foo", "GET a", "Get a", "gett a", "ge a", "g a", "sett a 0 0 1", "se", "stat", "statss",
	"mx a", "mgg a", "m a", "mm", "flush", "flush_al", "flush_alll", "lru_crawlers",
	"cache_memlimits 5", "refresh_cert", "bgets a", "incr_ a 1", "versio", "quit_",
	"aaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaa", "aaaaaaaa", "aaaa", "aa",
	"s" + strings.Repeat("e", 256) + "t", "s" + strings.Repeat("e", 1<<14-8) + "t",
}

// TestEveryCommandReachesItsDecoder decodes a line of every command
// memcached accepts and checks that it comes out as its Command, and that
// unknown names are plain ERROR.
func TestEveryCommandReachesItsDecoder(t *testing.T) {
	d := NewDecoder(0)
	var req Request
	for _, tt := range protocolCommands {
		n, need, err := d.Decode([]byte(tt.in), &req)
		if err != nil || n != len(tt.in) || need != 0 {
			t.Errorf("%q: n %d need %d err %v", tt.in, n, need, err)
			continue
		}
		if req.Cmd != tt.cmd || string(req.Name) != tt.name {
			t.Errorf("%q: Cmd %v Name %q, want %v %q", tt.in, req.Cmd, req.Name, tt.cmd, tt.name)
		}
	}
	for _, name := range unknownCommands {
		in := name + "\r\n"
		n, _, err := d.Decode([]byte(in), &req)
		if !errors.Is(err, ErrUnknownCommand) || n != len(in) || req.Cmd != CmdNone {
			t.Errorf("%q: n %d err %v Cmd %v, want ERROR", in, n, err, req.Cmd)
		}
	}
}

// TestCommandTable checks the command table against itself: every row is
// found, no Command is unreachable, and String names a row of its Command.
func TestCommandTable(t *testing.T) {
	var rows [numCommands]int
	seen := map[string]bool{}
	for _, c := range commands {
		if seen[c.name] {
			t.Errorf("%q: two rows", c.name)
		}
		seen[c.name] = true
		rows[c.cmd]++
		if s := lookup([]byte(c.name)); s == nil || s.cmd != c.cmd || s.args != c.args || s.name != c.name {
			t.Errorf("lookup(%q) = %+v; want %v, %v", c.name, s, c.cmd, c.args)
		}
	}
	for c := CmdNone + 1; c < numCommands; c++ {
		if rows[c] == 0 {
			t.Errorf("%v: no row in the command table", c)
		}
		if c == CmdMisc {
			continue
		}
		if s := lookup([]byte(c.String())); s == nil || s.cmd != c {
			t.Errorf("%v.String() = %q is not a command of the table", c, c.String())
		}
	}
	for _, p := range protocolCommands {
		delete(seen, p.name)
	}
	for name := range seen {
		t.Errorf("%q: in the table but not in protocolCommands", name)
	}
}

// TestLookupNearMisses checks that names one byte away from a command
// (changed, cut or extended) are not taken for it.
func TestLookupNearMisses(t *testing.T) {
	for _, c := range commands {
		name := []byte(c.name)
		var misses [][]byte
		for i := range name {
			for _, x := range []byte{0, ' ', 'a', 'z', '_', 0xff, name[i] ^ 0x20} {
				if x == name[i] {
					continue
				}
				b := []byte(c.name)
				b[i] = x
				misses = append(misses, b)
			}
		}
		misses = append(misses, name[:len(name)-1], append([]byte(c.name), 's'), append([]byte("x"), name...))
		for _, m := range misses {
			if len(m) < 2 {
				continue // Decode refuses those before the lookup
			}
			want := ""
			for _, o := range commands {
				if o.name == string(m) {
					want = o.name
				}
			}
			got := ""
			if s := lookup(m); s != nil {
				got = s.name
			}
			if got != want {
				t.Errorf("lookup(%q) found %q; want %q", m, got, want)
			}
		}
	}
}

func TestCommandsZeroAllocs(t *testing.T) {
	d := NewDecoder(0)
	var req Request
	var lines []string
	for _, tt := range protocolCommands {
		lines = append(lines, tt.in)
	}
	for _, name := range unknownCommands {
		lines = append(lines, name+"\r\n")
	}
	lines = append(lines, "GET / HTTP/1.1\r\n", strings.Repeat("x", 40)+"\r\n")
	for _, in := range lines {
		b := []byte(in)
		d.Decode(b, &req) // warm up the reused arrays
		if allocs := testing.AllocsPerRun(100, func() { d.Decode(b, &req) }); allocs != 0 {
			t.Errorf("%q: %v allocs per Decode", in, allocs)
		}
	}
}
