package text

import "fmt"

// syntax names the argument decoder of a command: how the tokens after the
// command name are read. Each one is one decoder function, called from
// Decoder.decodeArgs. (The table holds a syntax rather than a func value
// because an indirect call would make every caller's *Request escape to
// the heap.)
type syntax uint8

const (
	// synKeys: the line's keys, all of them (get, gets, bget), after an
	// exptime for gat and gats; the line is not cut at 23 tokens.
	synKeys syntax = iota
	// synStorage: <key> <flags> <exptime> <bytes> [<cas unique>] [noreply]
	// and the data block.
	synStorage
	// synArith: <key> <delta> [noreply].
	synArith
	// synTouch: <key> <exptime> [noreply].
	synTouch
	// synDelete: <key> [0] [noreply].
	synDelete
	// synFlushAll: [delay] [noreply].
	synFlushAll
	// synVerbosity: <level> [noreply].
	synVerbosity
	// synMemlimit: <megabytes> [noreply].
	synMemlimit
	// synMeta: a meta command's key, flags and, for ms, data block.
	synMeta
	// synAny: any tokens, kept in Args and not checked.
	synAny
	// synAnyNoreply: any tokens; a last "noreply" sets Noreply.
	synAnyNoreply
	// synSubcommand: a subcommand and its arguments (at least one token);
	// a last "noreply" sets Noreply.
	synSubcommand
	// synSlabs: slabs' subcommand and arguments; noreply counts only in
	// "slabs automove".
	synSlabs
)

// command is one row of the command table.
type command struct {
	name string  // the command token
	cmd  Command // what Decode reports in Request.Cmd
	args syntax  // how its arguments are decoded
}

// commands is the command table: every command name the decoder knows,
// which Command it is and how its arguments are read. It holds the
// commands of memcached 1.6.18's text protocol as Debian builds it (with
// extstore and TLS, without the debug-build commands misbehave and
// debugtime). A name that is not here is an unknown command.
var commands = [...]command{
	// Retrieval.
	{"get", CmdGet, synKeys},
	{"gets", CmdGets, synKeys},
	{"gat", CmdGat, synKeys},
	{"gats", CmdGats, synKeys},
	{"bget", CmdGet, synKeys}, // ancient "binary get"; Name tells it apart

	// Storage.
	{"set", CmdSet, synStorage},
	{"add", CmdAdd, synStorage},
	{"replace", CmdReplace, synStorage},
	{"append", CmdAppend, synStorage},
	{"prepend", CmdPrepend, synStorage},
	{"cas", CmdCas, synStorage},

	// Other item commands.
	{"delete", CmdDelete, synDelete},
	{"incr", CmdIncr, synArith},
	{"decr", CmdDecr, synArith},
	{"touch", CmdTouch, synTouch},

	// Meta commands.
	{"mg", CmdMetaGet, synMeta},
	{"ms", CmdMetaSet, synMeta},
	{"md", CmdMetaDelete, synMeta},
	{"ma", CmdMetaArith, synMeta},
	{"mn", CmdMetaNoop, synMeta},
	{"me", CmdMetaDebug, synMeta},

	// Administration.
	{"stats", CmdStats, synAny},
	{"flush_all", CmdFlushAll, synFlushAll},
	{"version", CmdVersion, synAny},
	{"verbosity", CmdVerbosity, synVerbosity},
	{"quit", CmdQuit, synAny},
	{"shutdown", CmdShutdown, synAny},
	{"cache_memlimit", CmdCacheMemlimit, synMemlimit},
	{"slabs", CmdMisc, synSlabs},
	{"lru_crawler", CmdMisc, synAny},
	{"lru", CmdMisc, synSubcommand},
	{"watch", CmdMisc, synAnyNoreply},
	{"extstore", CmdMisc, synSubcommand},
	{"refresh_certs", CmdMisc, synAnyNoreply},
}

// The table is found by a perfect hash. A name's key packs its length and
// its first, second and last bytes; the hash multiplies the key by a
// constant chosen at init so that no two names share a slot, and the slot
// holds the key, the row, and the name to check the other bytes against.
// A lookup is a few loads, a multiply and the comparisons, small enough
// to be inlined into Decode: no loop over names, no call, a 4 KiB table.
const slotBits = 7

// slot is one entry of the hash table: the key and name of a command (key
// 0 in an empty slot; a name's key is never 0) and its row of the table.
type slot struct {
	key  uint64
	cmd  Command
	args syntax
	name string
}

var (
	// slotMul is the multiplier of the hash.
	slotMul uint64
	// slots is the hash table of commands.
	slots [1 << slotBits]slot
)

func init() {
	for i := range commands {
		if len(commands[i].name) < 2 {
			panic(fmt.Sprintf("text: command %q is shorter than 2 bytes", commands[i].name))
		}
	}
	// Odd multipliers from a fixed pseudo-random sequence (Knuth's MMIX
	// LCG), starting at the golden ratio; the search is deterministic, so
	// every process gets the same hash.
	mul := uint64(0x9e3779b97f4a7c15)
	for range 1 << 16 {
		if tryMul(mul | 1) {
			return
		}
		mul = mul*6364136223846793005 + 1442695040888963407
	}
	panic("text: no perfect hash for the command table")
}

// tryMul fills slots for multiplier mul and reports whether no two names
// share a slot. It panics if two names have the same key, which no
// multiplier can tell apart (make the key hold another byte).
func tryMul(mul uint64) bool {
	slotMul = mul
	clear(slots[:])
	for i := range commands {
		c := &commands[i]
		k := nameKey([]byte(c.name))
		s := &slots[slotOf(k)]
		if s.key != 0 {
			if s.key == k {
				panic(fmt.Sprintf("text: commands %q and %q have the same length and first, second and last bytes", s.name, c.name))
			}
			return false
		}
		*s = slot{key: k, cmd: c.cmd, args: c.args, name: c.name}
	}
	return true
}

// nameKey packs the length and the first, second and last bytes of name
// (at least 2 bytes).
func nameKey(name []byte) uint64 {
	return uint64(len(name))<<24 | uint64(name[0])<<16 | uint64(name[1])<<8 | uint64(name[len(name)-1])
}

// slotOf returns the index in slots of key k.
func slotOf(k uint64) uint64 { return k * slotMul >> (64 - slotBits) }

// lookup returns the command table's row for name, or nil when name is not
// a command. name has at least two bytes.
//
// It spells out nameKey and slotOf, to stay within the inliner's budget.
func lookup(name []byte) *slot {
	k := uint64(len(name))<<24 | uint64(name[0])<<16 | uint64(name[1])<<8 | uint64(name[len(name)-1])
	s := &slots[k*slotMul>>(64-slotBits)]
	if s.key != k {
		return nil
	}
	// Same length, first, second and last bytes; compare the others.
	for i := 2; i < len(name)-1; i++ {
		if name[i] != s.name[i] {
			return nil
		}
	}
	return s
}
