package text

// Error is a protocol error: the reply memcached sends for a request it
// refuses, and whether it then closes the connection. Decode returns only
// *Error values, from the pre-built set below (or their silenced twins,
// which errors.Is matches to them).
type Error struct {
	// Reply is the reply line, without "\r\n". It is empty for the errors
	// on which memcached closes the connection without a word.
	Reply string
	// Silent: nothing is written, because the command carried noreply or
	// because memcached closes silently.
	Silent bool
	// Close: the connection is closed after the reply (if any) is written.
	Close bool

	desc  string // description when Reply is empty
	quiet *Error // twin with Silent set, for errors noreply can silence
}

// Error returns the reply line (or a description of a silent close).
func (e *Error) Error() string {
	if e.Reply == "" {
		return e.desc
	}
	return e.Reply
}

// Is reports whether target is an *Error with the same reply and close
// behaviour, so that a silenced error matches its pre-built original.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reply == e.Reply && t.Close == e.Close && t.desc == e.desc
}

// AppendReply appends the reply line and "\r\n" to dst, or nothing when e
// is Silent.
func (e *Error) AppendReply(dst []byte) []byte {
	if e.Silent || e.Reply == "" {
		return dst
	}
	dst = append(dst, e.Reply...)
	return append(dst, "\r\n"...)
}

// silenced returns e's twin that writes nothing, when noreply is set and e
// is one of the errors noreply silences.
func (e *Error) silenced(noreply bool) *Error {
	if noreply && e.quiet != nil {
		return e.quiet
	}
	return e
}

func newError(reply string) *Error {
	e := &Error{Reply: reply}
	e.quiet = &Error{Reply: reply, Silent: true}
	return e
}

// The protocol errors.
var (
	// ErrUnknownCommand: an unknown command or a wrong number of tokens;
	// also cache_memlimit with a bad number.
	ErrUnknownCommand = newError("ERROR")
	// ErrBadFormat: a malformed command line or a key longer than 250
	// bytes.
	ErrBadFormat = newError("CLIENT_ERROR bad command line format")
	// ErrBadDataChunk: the data block of a storage command does not end in
	// "\r\n".
	ErrBadDataChunk = newError("CLIENT_ERROR bad data chunk")
	// ErrTooLarge: the item would exceed the item size limit; its data
	// block is swallowed.
	ErrTooLarge = newError("SERVER_ERROR object too large for cache")
	// ErrInvalidDelta: incr or decr with a bad amount.
	ErrInvalidDelta = newError("CLIENT_ERROR invalid numeric delta argument")
	// ErrInvalidExptime: touch, gat, gats or flush_all with a bad time.
	ErrInvalidExptime = newError("CLIENT_ERROR invalid exptime argument")
	// ErrDeleteFormat: delete with arguments other than [0] [noreply].
	ErrDeleteFormat = newError("CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]")
	// ErrFlushDisabled: flush_all while Decoder.FlushDisabled (memcached's
	// -F).
	ErrFlushDisabled = newError("CLIENT_ERROR flush_all not allowed")
	// ErrLineTooLong: a command line longer than the limits (see the
	// package documentation); memcached closes the connection silently.
	ErrLineTooLong = &Error{Silent: true, Close: true, desc: "text: command line too long"}
	// ErrHTTP: an unknown command whose last token starts with "HTTP/";
	// memcached closes the connection silently.
	ErrHTTP = &Error{Silent: true, Close: true, desc: "text: HTTP request"}

	// Errors of the meta commands. memcached never silences them, not even
	// with the q flag.

	// ErrMetaFlagsTooLong: an mg line with 19 tokens or more.
	ErrMetaFlagsTooLong = &Error{Reply: "CLIENT_ERROR options flags are too long"}
	// ErrMetaOptionsTooLong: an ms, md or ma line with 19 tokens or more.
	ErrMetaOptionsTooLong = &Error{Reply: "CLIENT_ERROR options flags too long"}
	// ErrMetaDuplicateFlag: a flag given twice (or a flag byte of 127 or
	// more), for mg and ms.
	ErrMetaDuplicateFlag = &Error{Reply: "CLIENT_ERROR duplicate flag"}
	// ErrMetaInvalidFlag: an unknown flag, for mg and ms.
	ErrMetaInvalidFlag = &Error{Reply: "CLIENT_ERROR invalid flag"}
	// ErrMetaInvalidOrDuplicate: any bad flag of md and ma.
	ErrMetaInvalidOrDuplicate = &Error{Reply: "CLIENT_ERROR invalid or duplicate flag"}
	// ErrMetaBadToken: a bad numeric argument of N, T, R, C or E.
	ErrMetaBadToken = &Error{Reply: "CLIENT_ERROR bad token in command line format"}
	// ErrMetaKeyDecode: the b flag with a key that is not base64.
	ErrMetaKeyDecode = &Error{Reply: "CLIENT_ERROR error decoding key"}
	// ErrMetaModeLength: an M token that is not two bytes long.
	ErrMetaModeLength = &Error{Reply: "CLIENT_ERROR incorrect length for M token"}
	// ErrMetaInitial: a bad J argument.
	ErrMetaInitial = &Error{Reply: "CLIENT_ERROR invalid numeric initial value"}
	// ErrMetaDelta: a bad D argument.
	ErrMetaDelta = &Error{Reply: "CLIENT_ERROR invalid numeric delta value"}
	// ErrMetaOpaqueTooLong: an O token longer than MaxOpaque. Decode
	// returns it for ms and md; for mg and ma the caller replies it after
	// running the command (see MetaFlags.OpaqueTooLong).
	ErrMetaOpaqueTooLong = &Error{Reply: "CLIENT_ERROR opaque token too long"}
	// ErrMetaSetMode: an ms mode other than E, A, P, R, S.
	ErrMetaSetMode = &Error{Reply: "CLIENT_ERROR invalid mode for ms M token"}
	// ErrMetaArithMode: an ma mode other than I, +, D, -.
	ErrMetaArithMode = &Error{Reply: "CLIENT_ERROR invalid mode for ma M token"}

	// ErrShutdownDisabled is the reply to shutdown when it is not enabled
	// (memcached's -A). Decode does not return it.
	ErrShutdownDisabled = &Error{Reply: "ERROR: shutdown not enabled"}
	// ErrShutdownMode is the reply to shutdown with arguments other than
	// "graceful" (see Request.ShutdownMode). Decode does not return it.
	ErrShutdownMode = &Error{Reply: "CLIENT_ERROR invalid shutdown mode"}
)
