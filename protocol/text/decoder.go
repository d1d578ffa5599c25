package text

import (
	"bytes"

	"github.com/mnemo-cache/mnemo/internal/number"
)

// Limits of the decoder.
const (
	// KeyMax is the longest key in bytes (memcached's KEY_MAX_LENGTH).
	KeyMax = 250
	// MaxLine is the size of the read buffer memcached gives a command
	// line: a line and its "\n" must fit in it, except for get and gets
	// multigets.
	MaxLine = 16384
	// DefaultMaxGetLine is the default Decoder.MaxGetLine.
	DefaultMaxGetLine = 1 << 20
	// DefaultItemSizeMax is memcached's default item size limit (-I 1m).
	DefaultItemSizeMax = 1 << 20

	// maxTokens is the number of tokens memcached looks at in a line (its
	// MAX_TOKENS less the terminal token).
	maxTokens = 23
	// multigetSpaces is how many leading spaces a long get line may have.
	multigetSpaces = 100
	// itemHeader is memcached's sizeof(item) on a 64-bit host.
	itemHeader = 48
	// casSize is the size of the CAS memcached stores with each item.
	casSize = 8
	// flagsSize is the size memcached stores for non-zero client flags.
	flagsSize = 4
	// maxValueLen is the largest value length memcached accepts (INT_MAX-2).
	maxValueLen = 1<<31 - 1 - 2
)

// Decoder decodes text protocol requests. The zero value is not usable:
// use NewDecoder. A Decoder holds the state of one connection and is not
// safe for concurrent use.
type Decoder struct {
	// MaxGetLine is the longest get or gets line, in bytes, the decoder
	// accepts (see the package documentation); a longer one is
	// ErrLineTooLong. NewDecoder sets DefaultMaxGetLine. Values below
	// MaxLine act as MaxLine.
	MaxGetLine int
	// NoCAS tells the decoder that items carry no CAS (memcached's -C), so
	// the item size check leaves out the 8 bytes of a CAS.
	NoCAS bool
	// FlushDisabled makes flush_all fail with ErrFlushDisabled (memcached's
	// -F), checked before its arguments as memcached does.
	FlushDisabled bool

	itemSizeMax int
	swallow     int  // bytes of a refused data block still to discard
	skipLine    bool // discarding the rest of a refused over-long get line

	// The buffers below are allocated on first use and kept, so that an
	// idle connection's decoder stays small.
	toks   [maxTokens][]byte
	keys   [][]byte
	keybuf *[KeyMax]byte // a meta command's key decoded from base64
}

// keyBuffer returns the buffer for a base64-decoded key.
func (d *Decoder) keyBuffer() []byte {
	if d.keybuf == nil {
		d.keybuf = new([KeyMax]byte)
	}
	return d.keybuf[:]
}

// NewDecoder returns a Decoder for items of at most itemSizeMax bytes
// (memcached's -I, counting its item header; DefaultItemSizeMax when
// itemSizeMax <= 0).
func NewDecoder(itemSizeMax int) *Decoder {
	if itemSizeMax <= 0 {
		itemSizeMax = DefaultItemSizeMax
	}
	return &Decoder{
		MaxGetLine:  DefaultMaxGetLine,
		itemSizeMax: itemSizeMax,
	}
}

// Swallowing reports how many bytes of a refused data block the decoder
// will still discard.
func (d *Decoder) Swallowing() int { return d.swallow }

// Resting reports whether the decoder carries nothing from one Decode
// call to the next (no refused data block or over-long line being
// discarded): then any Decoder with the same settings may take its place,
// so that an idle connection need not keep one.
func (d *Decoder) Resting() bool { return d.swallow == 0 && !d.skipLine }

// Decode decodes one request from the start of buf; see the package
// documentation for the contract.
//
//   - n > 0, err == nil: a request was decoded into req (which aliases buf
//     until the next call), or n bytes were swallowed (req.Cmd == CmdNone).
//   - n == 0, err == nil: buf holds no complete request; need is the total
//     len(buf) needed before calling again (0 if unknown: wait for any more
//     bytes).
//   - err != nil: a protocol error (*Error); n bytes were consumed; the
//     caller writes err.AppendReply and closes the connection if err.Close.
func (d *Decoder) Decode(buf []byte, req *Request) (n, need int, err error) {
	*req = Request{}
	if d.swallow > 0 {
		k := min(d.swallow, len(buf))
		d.swallow -= k
		return k, 0, nil
	}
	if len(buf) == 0 {
		return 0, 0, nil
	}
	if d.skipLine {
		el := bytes.IndexByte(buf, '\n')
		if el < 0 {
			return len(buf), 0, nil
		}
		d.skipLine = false
		return el + 1, 0, nil
	}

	el := bytes.IndexByte(buf, '\n')
	if el < 0 {
		if len(buf) < MaxLine {
			return 0, 0, nil
		}
		multiget := isMultiget(buf)
		if multiget && hasLongKey(buf) {
			// memcached answers a key over 250 bytes with CLIENT_ERROR,
			// however long the line: refuse it now and discard the rest
			// of the line as it comes, instead of buffering it.
			d.skipLine = true
			return len(buf), 0, ErrBadFormat
		}
		if !multiget || len(buf) > d.maxGetLine() {
			return len(buf), 0, ErrLineTooLong
		}
		return 0, 0, nil
	}
	if el >= MaxLine && (!isMultiget(buf) || el > d.maxGetLine()) {
		if isMultiget(buf) && hasLongKey(buf[:el]) {
			return el + 1, 0, ErrBadFormat
		}
		return el + 1, 0, ErrLineTooLong
	}
	consumed := el + 1
	line := buf[:el]
	if el > 1 && line[el-1] == '\r' {
		line = line[:el-1]
	}
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i] // memcached reads the line as a C string
	}

	// The first token is the command, looked up in the command table.
	name, pos := nextToken(line, 0)
	if len(name) < 2 {
		return consumed, 0, ErrUnknownCommand
	}
	req.Name = name
	row := lookup(name)
	if row == nil {
		return consumed, 0, d.unknown(line, name, pos, req)
	}
	req.Cmd = row.cmd
	syn := row.args

	// The row's argument decoder reads the rest.
	if syn == synKeys {
		return consumed, 0, d.retrieval(line, pos, req)
	}
	nt := d.tokenize(line, name, pos)
	req.Args = d.toks[1:nt]
	noreply := string(d.toks[nt-1]) == "noreply"
	switch syn {
	case synStorage:
		return d.storage(buf, consumed, nt, noreply, req)
	case synMeta:
		return d.meta(buf, consumed, nt, req)
	case synArith:
		err = d.arithmetic(nt, noreply, req)
	case synTouch:
		err = d.touch(nt, noreply, req)
	case synDelete:
		err = d.delete(nt, noreply, req)
	case synFlushAll:
		err = d.flushAll(nt, noreply, req)
	case synVerbosity:
		err = d.verbosity(nt, noreply, req)
	case synMemlimit:
		err = d.memlimit(nt, noreply, req)
	case synAny:
	case synAnyNoreply:
		req.Noreply = noreply
	case synSubcommand:
		if nt < 2 {
			return consumed, 0, ErrUnknownCommand
		}
		req.Noreply = noreply
	case synSlabs:
		// memcached honours noreply only in "slabs automove".
		req.Noreply = nt >= 3 && string(d.toks[1]) == "automove" && noreply
	default:
		panic("text: command table syntax without a decoder")
	}
	return consumed, 0, err
}

// unknown answers a command name that is not in the command table:
// ErrUnknownCommand, or ErrHTTP when the last token memcached looks at
// starts with "HTTP/". memcached 1.6.18 dispatches on the first byte of
// the name and checks for HTTP only in its last branch, so names that
// start with a byte it has a branch for (g, s, a, c, i, d, t, and m for
// two-byte names) are never HTTP; its get branch answers before looking
// at the arguments.
func (d *Decoder) unknown(line, name []byte, pos int, req *Request) error {
	if name[0] == 'g' {
		return ErrUnknownCommand
	}
	nt := d.tokenize(line, name, pos)
	req.Args = d.toks[1:nt]
	switch name[0] {
	case 's', 'a', 'c', 'i', 'd', 't':
		return ErrUnknownCommand
	case 'm':
		if len(name) == 2 {
			return ErrUnknownCommand
		}
	}
	if bytes.HasPrefix(d.toks[nt-1], []byte("HTTP/")) {
		return ErrHTTP
	}
	return ErrUnknownCommand
}

func (d *Decoder) maxGetLine() int { return max(d.MaxGetLine, MaxLine) }

// hasLongKey reports whether a get line (or its start) holds a token
// longer than KeyMax: a key memcached refuses with CLIENT_ERROR bad
// command line format.
func hasLongKey(line []byte) bool {
	run := 0
	for _, c := range line {
		if c == ' ' || c == '\r' {
			run = 0
			continue
		}
		if run++; run > KeyMax {
			return true
		}
	}
	return false
}

// isMultiget reports whether a line may exceed MaxLine: after at most 100
// spaces it starts with "get " or "gets " (memcached's
// try_read_command_ascii). buf holds at least MaxLine bytes.
func isMultiget(buf []byte) bool {
	i := 0
	for i < len(buf) && buf[i] == ' ' {
		i++
	}
	if i > multigetSpaces {
		return false
	}
	buf = buf[i:]
	return bytes.HasPrefix(buf, []byte("get ")) || bytes.HasPrefix(buf, []byte("gets "))
}

// nextToken returns the token of line that starts at or after i (skipping
// spaces) and the index after it; tok is empty when the line has no more
// tokens.
func nextToken(line []byte, i int) (tok []byte, next int) {
	for i < len(line) && line[i] == ' ' {
		i++
	}
	if i == len(line) {
		return nil, i
	}
	j := bytes.IndexByte(line[i:], ' ')
	if j < 0 {
		return line[i:], len(line)
	}
	return line[i : i+j], i + j
}

// tokenize stores the command token name and the tokens after pos, up to
// memcached's 23 in all, in d.toks and returns their count (at least 1).
func (d *Decoder) tokenize(line, name []byte, pos int) int {
	d.toks[0] = name
	nt := 1
	for nt < maxTokens {
		tok, next := nextToken(line, pos)
		if len(tok) == 0 {
			break
		}
		d.toks[nt] = tok
		nt++
		pos = next
	}
	return nt
}

// retrieval decodes get, gets, gat, gats and bget: every token after the
// command is a key (after the exptime for gat and gats).
func (d *Decoder) retrieval(line []byte, pos int, req *Request) error {
	first, next := nextToken(line, pos)
	if len(first) == 0 {
		// memcached wants at least one token after the command, and
		// answers as to an unknown command.
		req.Cmd = CmdNone
		return ErrUnknownCommand
	}
	if req.Cmd == CmdGat || req.Cmd == CmdGats {
		exp, ok := number.ParseInt32(first)
		if !ok {
			return ErrInvalidExptime
		}
		req.Exptime = int64(exp)
		pos = next
	}
	keys := d.keys[:0]
	for {
		key, next := nextToken(line, pos)
		if len(key) == 0 {
			break
		}
		if len(key) > KeyMax {
			d.keys = keys[:0]
			return ErrBadFormat
		}
		keys = append(keys, key)
		pos = next
	}
	d.keys = keys
	req.Keys = keys
	if len(keys) > 0 {
		req.Key = keys[0]
	}
	return nil
}
