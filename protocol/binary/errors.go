package binary

// Error is a protocol error: the status memcached answers a frame it
// refuses with, and whether it then closes the connection. Decode returns
// only the *Error values below.
type Error struct {
	// Status is the response status; it is not sent when NoReply is set.
	Status Status
	// NoReply: nothing is written (memcached closes without a word).
	NoReply bool
	// Close: the connection is closed after the reply is written.
	Close bool

	desc string
}

// Error describes the error.
func (e *Error) Error() string { return "binary: " + e.desc }

// AppendReply appends the error response to req (its opcode and opaque
// echoed, the status's message as the body) to dst, or nothing when
// NoReply is set.
func (e *Error) AppendReply(dst []byte, req *Request) []byte {
	if e.NoReply {
		return dst
	}
	return AppendError(dst, req.Opcode, e.Status, req.Opaque, "")
}

// The errors Decode returns.
var (
	// ErrBadMagic: the frame does not start with MagicRequest. memcached
	// closes the connection without a reply.
	ErrBadMagic = &Error{NoReply: true, Close: true, desc: "invalid magic"}
	// ErrBadLength: the key and extras are longer than the body.
	ErrBadLength = &Error{Status: StatusUnknownCommand, Close: true, desc: "key and extras longer than the body"}
	// ErrAuth: SASL is on and the connection has not authenticated.
	ErrAuth = &Error{Status: StatusAuthError, Close: true, desc: "not authenticated"}
	// ErrKeyTooLong: the key is longer than KeyMax.
	ErrKeyTooLong = &Error{Status: StatusInvalid, Close: true, desc: "key too long"}
	// ErrBadFormat: extras, key or body lengths the opcode does not allow.
	ErrBadFormat = &Error{Status: StatusInvalid, Close: true, desc: "invalid extras, key or body length for the opcode"}
	// ErrUnknownCommand: an opcode memcached does not handle (or a SASL
	// opcode while SASL is off); its body is skipped.
	ErrUnknownCommand = &Error{Status: StatusUnknownCommand, desc: "unknown command"}
	// ErrTooLarge: a storage command's item would exceed the item size
	// limit; its value is skipped without being buffered. Request.Key is
	// set (a failed SET removes the old item).
	ErrTooLarge = &Error{Status: StatusTooLarge, desc: "item too large"}
	// ErrBodyTooLarge: the value part of the body is 2^31 bytes or more,
	// a length memcached's int turns negative (it then reads the value as
	// the next request and closes on its bad magic). The connection is
	// closed after the E2BIG reply. Decode returns it on the header alone,
	// without Request.Key; FrameKey reads the key.
	ErrBodyTooLarge = &Error{Status: StatusTooLarge, Close: true, desc: "body too large"}
	// ErrMechTooLong: a SASL mechanism name longer than MechMax; the
	// value is skipped.
	ErrMechTooLong = &Error{Status: StatusInvalid, desc: "SASL mechanism name too long"}
	// ErrSASLTooLarge: SASL data larger than the item size limit, which
	// memcached cannot allocate (ENOMEM); the value is skipped.
	ErrSASLTooLarge = &Error{Status: StatusNoMemory, desc: "SASL data too large"}
)
