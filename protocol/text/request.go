package text

// Command is the kind of a decoded request.
type Command uint8

// The commands of the text protocol.
const (
	// CmdNone: nothing to execute (bytes of a refused value were swallowed).
	CmdNone Command = iota
	// CmdGet: get <key>* (also the ancient bget; Name tells them apart).
	CmdGet
	// CmdGets: gets <key>*.
	CmdGets
	// CmdGat: gat <exptime> <key>*; there may be no key (memcached then
	// answers just END).
	CmdGat
	// CmdGats: gats <exptime> <key>*; there may be no key.
	CmdGats
	// CmdSet: set <key> <flags> <exptime> <bytes> [noreply].
	CmdSet
	// CmdAdd: add <key> <flags> <exptime> <bytes> [noreply].
	CmdAdd
	// CmdReplace: replace <key> <flags> <exptime> <bytes> [noreply].
	CmdReplace
	// CmdAppend: append <key> <flags> <exptime> <bytes> [noreply].
	CmdAppend
	// CmdPrepend: prepend <key> <flags> <exptime> <bytes> [noreply].
	CmdPrepend
	// CmdCas: cas <key> <flags> <exptime> <bytes> <cas unique> [noreply].
	CmdCas
	// CmdDelete: delete <key> [0] [noreply].
	CmdDelete
	// CmdIncr: incr <key> <value> [noreply].
	CmdIncr
	// CmdDecr: decr <key> <value> [noreply].
	CmdDecr
	// CmdTouch: touch <key> <exptime> [noreply].
	CmdTouch
	// CmdFlushAll: flush_all [delay] [noreply]; the delay is in Exptime.
	CmdFlushAll
	// CmdVersion: version (any arguments are ignored).
	CmdVersion
	// CmdVerbosity: verbosity <level> [noreply]; the level is in Num.
	CmdVerbosity
	// CmdQuit: quit (any arguments are ignored).
	CmdQuit
	// CmdShutdown: shutdown [graceful]; Args are not checked by the decoder
	// because memcached first checks that shutdown is enabled (-A): see
	// Request.ShutdownMode.
	CmdShutdown
	// CmdCacheMemlimit: cache_memlimit <megabytes> [noreply]; the value is
	// in Num.
	CmdCacheMemlimit
	// CmdStats: stats [group [args...]]; the tokens are in Args.
	CmdStats
	// CmdMisc: a known administrative command that the decoder does not
	// parse further (slabs, lru_crawler, watch, lru, extstore,
	// refresh_certs). Name holds the command, Args the tokens after it.
	CmdMisc
	// CmdMetaGet: mg <key> <flags>*. Key is decoded (from base64 when the
	// b flag is set); Meta holds the flags.
	CmdMetaGet
	// CmdMetaSet: ms <key> <datalen> <flags>*, its data block in Data
	// (unless Meta.TooLarge).
	CmdMetaSet
	// CmdMetaDelete: md <key> <flags>*.
	CmdMetaDelete
	// CmdMetaArith: ma <key> <flags>*.
	CmdMetaArith
	// CmdMetaNoop: mn (any arguments are ignored).
	CmdMetaNoop
	// CmdMetaDebug: me <key> [b].
	CmdMetaDebug

	numCommands
)

var commandNames = [numCommands]string{
	CmdNone:          "none",
	CmdGet:           "get",
	CmdGets:          "gets",
	CmdGat:           "gat",
	CmdGats:          "gats",
	CmdSet:           "set",
	CmdAdd:           "add",
	CmdReplace:       "replace",
	CmdAppend:        "append",
	CmdPrepend:       "prepend",
	CmdCas:           "cas",
	CmdDelete:        "delete",
	CmdIncr:          "incr",
	CmdDecr:          "decr",
	CmdTouch:         "touch",
	CmdFlushAll:      "flush_all",
	CmdVersion:       "version",
	CmdVerbosity:     "verbosity",
	CmdQuit:          "quit",
	CmdShutdown:      "shutdown",
	CmdCacheMemlimit: "cache_memlimit",
	CmdStats:         "stats",
	CmdMisc:          "misc",
	CmdMetaGet:       "mg",
	CmdMetaSet:       "ms",
	CmdMetaDelete:    "md",
	CmdMetaArith:     "ma",
	CmdMetaNoop:      "mn",
	CmdMetaDebug:     "me",
}

// String returns the command's protocol name ("misc" for CmdMisc, "none"
// for CmdNone).
func (c Command) String() string {
	if c < numCommands {
		return commandNames[c]
	}
	return "unknown"
}

// IsStorage reports whether c carries a data block (set, add, replace,
// append, prepend, cas).
func (c Command) IsStorage() bool { return c >= CmdSet && c <= CmdCas }

// IsMeta reports whether c is one of the meta commands mg, ms, md, ma,
// mn and me.
func (c Command) IsMeta() bool { return c >= CmdMetaGet && c <= CmdMetaDebug }

// IsRetrieval reports whether c is one of get, gets, gat, gats.
func (c Command) IsRetrieval() bool { return c >= CmdGet && c <= CmdGats }

// Request is one decoded request. Its byte slices alias the buffer passed
// to Decode and the Decoder's reused arrays: they are valid until the next
// call to Decode. Fields a command does not use are zero.
type Request struct {
	// Cmd is the command.
	Cmd Command
	// Name is the command token as sent.
	Name []byte
	// Key is the key, or the first key of a retrieval command.
	Key []byte
	// Keys holds all keys of get, gets, gat and gats (Keys[0] == Key). Its
	// backing array is reused between Decode calls.
	Keys [][]byte
	// Flags are the client flags of a storage command.
	Flags uint32
	// Exptime is the expiration time of a storage command, touch, gat and
	// gats, or the delay of flush_all, as memcached reads it: the number
	// sent, truncated to 32 bits. The cache layer converts it.
	Exptime int64
	// Delta is the amount of incr and decr.
	Delta uint64
	// CAS is the cas unique of a cas command.
	CAS uint64
	// Num is the level of verbosity or the megabytes of cache_memlimit.
	Num uint32
	// Data is the value of a storage command, without its "\r\n".
	Data []byte
	// Noreply is set when the command asked for no reply.
	Noreply bool
	// Args holds the tokens after the command name (at most 22, the part of
	// the line memcached looks at) for every command but the retrieval
	// ones. Its backing array is reused between Decode calls.
	Args [][]byte
	// Meta holds the decoded flags of a meta command.
	Meta MetaFlags
}

// ShutdownMode interprets the arguments of a shutdown command as memcached
// does once shutdown is enabled: no argument is a plain shutdown, the single
// argument "graceful" a graceful one; anything else is not ok (reply
// ErrShutdownMode).
func (r *Request) ShutdownMode() (graceful, ok bool) {
	switch {
	case len(r.Args) == 0:
		return false, true
	case len(r.Args) == 1 && string(r.Args[0]) == "graceful":
		return true, true
	}
	return false, false
}
