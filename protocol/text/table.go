package text

import (
	"encoding/binary"
	"fmt"
)

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

// The table is found by a perfect hash. A name of 2 to 16 bytes is packed,
// with loads that may overlap, into two words that with its length spell
// it exactly (nameWords); the hash multiplies a mix of them by a constant
// chosen at init so that no two names share a slot, and the slot holds the
// words and length to compare with. A lookup is a few loads, a multiply
// and three comparisons: no loop over names, no call.
const (
	slotBits = 7
	maxName  = 16 // the longest name nameWords can pack
)

// slot is one entry of the hash table: the packed name of a command (n is
// 0 in an empty slot) and its row of the table.
type slot struct {
	a, b uint64
	n    uint8
	cmd  Command
	args syntax
}

var (
	// slotMul is the multiplier of the hash.
	slotMul uint64
	// slots is the hash table of commands.
	slots [1 << slotBits]slot
)

func init() {
	for i := range commands {
		if n := len(commands[i].name); n < 2 || n > maxName {
			panic(fmt.Sprintf("text: command %q is not 2 to %d bytes long", commands[i].name, maxName))
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
// share a slot.
func tryMul(mul uint64) bool {
	slotMul = mul
	clear(slots[:])
	for i := range commands {
		name := []byte(commands[i].name)
		a, b := nameWords(name)
		s := &slots[slotOf(a, b, len(name))]
		if s.n != 0 {
			return false
		}
		*s = slot{a: a, b: b, n: uint8(len(name)), cmd: commands[i].cmd, args: commands[i].args}
	}
	return true
}

// nameWords packs name (2 to 16 bytes) into two words that, with its
// length, identify it: the first and last 8 bytes, the first and last 4,
// or the first two and the last.
func nameWords(name []byte) (a, b uint64) {
	n := len(name)
	switch {
	case n >= 8:
		return binary.LittleEndian.Uint64(name), binary.LittleEndian.Uint64(name[n-8:])
	case n >= 4:
		return uint64(binary.LittleEndian.Uint32(name)) | uint64(binary.LittleEndian.Uint32(name[n-4:]))<<32, 0
	default:
		return uint64(name[0]) | uint64(name[1])<<8 | uint64(name[n-1])<<16, 0
	}
}

// slotOf returns the slot of a packed name.
func slotOf(a, b uint64, n int) uint64 {
	return (a ^ b>>3 ^ uint64(n)) * slotMul >> (64 - slotBits)
}

// lookup returns the Command of name and the syntax of its arguments, or
// ok false when name is not a command. name has at least two bytes.
func lookup(name []byte) (cmd Command, args syntax, ok bool) {
	if len(name) > maxName {
		return CmdNone, 0, false
	}
	a, b := nameWords(name)
	s := &slots[slotOf(a, b, len(name))]
	if s.a != a || s.b != b || int(s.n) != len(name) {
		return CmdNone, 0, false
	}
	return s.cmd, s.args, true
}
