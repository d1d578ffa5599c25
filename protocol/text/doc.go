// Package text owns memcached's text protocol codec: a streaming,
// split-safe request decoder and the append-style reply encoders. It knows
// nothing of engines or of the server; besides the standard library it
// imports only internal/number, which holds memcached's number rules.
// Reference behaviour is memcached 1.6.18 (doc/protocol.txt and
// proto_text.c); every rule below was checked against that binary.
//
// # Decoding
//
// A Decoder reads requests from the front of the caller's read buffer:
//
//	n, need, err := d.Decode(buf, &req)
//
// It answers in one of three ways:
//
//   - n > 0, err == nil: one request was decoded into req, or (req.Cmd ==
//     CmdNone) n bytes of a refused value were swallowed. The caller drops
//     n bytes from the front of its buffer.
//   - n == 0, err == nil: buf holds no complete request. need is the total
//     len(buf) required before a call can make progress (the whole data
//     block of a storage command, so the caller can grow its buffer once),
//     or 0 when unknown (wait for any more bytes). The caller calls again
//     with the same bytes plus more.
//   - err != nil: a protocol error, always an *Error. n bytes were consumed.
//     The caller writes err.AppendReply (nothing when err.Silent) and closes
//     the connection when err.Close. req.Cmd names the command the line
//     asked for (CmdNone when unknown) and the fields parsed before the error
//     are set, so the caller can count statistics or, for ErrTooLarge on a
//     set, drop the stale item as memcached does.
//
// The decoded Request aliases buf (and the Decoder's reused Keys and Args
// arrays) until the next call to Decode. Decode allocates nothing in steady
// state.
//
// Results never depend on how the input was split into reads: feeding a
// stream whole, split at any offset, or byte by byte gives the same
// requests and errors.
//
// # The command table
//
// Every command the decoder knows is one row of one table (commands, in
// table.go): its name, the Command that Decode reports in Request.Cmd, and
// the syntax of its arguments, which names the function that decodes
// them. The first token of a line is looked up in the table once, by a
// perfect hash that init builds from the table (a key of the name's
// length and first, second and last bytes, a multiply, one slot, a
// comparison of the other bytes; no allocation), and its row's argument
// decoder does the rest. Adding a command is adding a row
// (and, for a new syntax, its decoder); nothing else dispatches on names.
//
// The table holds every command of memcached 1.6.18 as Debian builds it
// (with extstore and TLS). Administrative commands the decoder does not
// parse further (slabs, lru_crawler, lru, watch, extstore, refresh_certs)
// come out as CmdMisc with their Name and Args, for the application to
// run or refuse. memcached's debug-build commands (misbehave, debugtime,
// debugitem) are not in the table: they are unknown, as in Debian's build.
//
// A name that is not in the table is ErrUnknownCommand, with req.Cmd ==
// CmdNone, or ErrHTTP when the last token memcached looks at starts with
// "HTTP/". memcached dispatches on a name's first byte and makes that
// HTTP check only for names whose first byte it has no branch for, so a
// name that starts with g, s, a, c, i, d or t, or a two-byte name that
// starts with m, is never taken for HTTP; we keep that.
//
// # Memcached's rules, kept exactly
//
// Lines end in "\n"; one preceding "\r" is stripped. A NUL byte ends the line
// early (memcached's strlen). Tokens are separated by runs of spaces (only
// spaces; leading and trailing spaces are ignored). Like memcached, only the
// first 23 tokens of a line are looked at, except the keys of a get, gets,
// gat, gats or bget, which are all read. A "noreply" is the last of those
// tokens, and it silences the error replies memcached silences (the
// returned Error then has Silent set).
//
// Numbers are parsed as memcached's safe_strtoul, safe_strtol and
// safe_strtoull on a 64-bit host (package internal/number): leading white space and a sign are
// accepted, trailing garbage is not (unless it starts with white space
// other than a space), and 32-bit results are truncated the way memcached
// truncates them: flags "4294967296" are 0, and a value length of 2^40 is
// 0. A value length that truncates below 0 or above 2^31-3 is
// "CLIENT_ERROR bad command line format".
//
// A storage command whose item would not fit in the item size limit
// (48 + key + 1 + (4 if flags != 0) + bytes + 2 + 8 for the CAS > limit,
// memcached's item header arithmetic) is answered with ErrTooLarge and its
// data block is swallowed without being buffered: Decode consumes what is
// in buf and remembers how much is left. A data block that does not end in
// "\r\n" is ErrBadDataChunk; its bytes+2 bytes are consumed and decoding
// resumes right after them, as in memcached. A key longer than 250 bytes,
// or any other bad storage line, does not swallow the data block: the data
// line is then read as a command, as in memcached.
//
// # Deliberate limits
//
// A command line may be at most MaxLine-1 bytes plus its "\n" (memcached's
// read buffer size, 16 KiB); a longer one closes the connection without a
// reply (ErrLineTooLong). memcached closes such lines when they do not
// arrive in one read and accepts them when they do; we choose the
// deterministic side. Lines that start with "get " or "gets " after at most
// 100 spaces (memcached's multiget exception) may be up to
// Decoder.MaxGetLine bytes (DefaultMaxGetLine, 1 MiB, about 4000 keys of
// 250 bytes); memcached grows its buffer without bound for these. Once
// such a line passes MaxLine bytes and holds a key over 250 bytes, it is
// answered as memcached answers it, ErrBadFormat, at once, and the rest of
// the line is discarded as it arrives, however long it is. The
// caller therefore never needs to buffer more than MaxGetLine, or one
// storage command line plus its data block of at most the item size limit.
//
// # Meta commands
//
// mg, ms, md, ma, mn and me share the decoder and the connection with the
// classic commands. A meta request's key is in Key, decoded from base64
// into a Decoder-owned buffer when the b flag is set; its flags are parsed
// into Request.Meta, and Meta.Tokens keeps the flag tokens in order for the
// reply. The checks follow memcached 1.6.18: at most 19 tokens on the line,
// every flag at most once, known flags only, numeric arguments as
// safe_strtol/strtoul/strtoull read them, base64 as memcached decodes it.
// Meta errors are never silenced by q. An ms error found once its data
// length is known swallows the data block; an ms that would not fit in the
// item size limit is returned with Meta.TooLarge set and its data
// swallowed, so the caller can reply and drop the old item. The flags E,
// x, and N and s on ms (later memcached releases) are decoded too.
//
// # Encoding
//
// Replies are built with append-style functions that allocate nothing when
// dst has room: AppendValue, AppendValueHeader, AppendStat, AppendUint,
// AppendUintLine, AppendVersion, and the pre-built reply lines (Stored, End,
// ...).
package text
