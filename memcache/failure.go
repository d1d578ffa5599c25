package memcache

import (
	"time"

	"github.com/mnemo-cache/mnemo/cache"
	"github.com/mnemo-cache/mnemo/protocol/binary"
	"github.com/mnemo-cache/mnemo/protocol/text"
)

// Failed commands. Package cache says what kind of failure an error is
// (cache.Classify); the tables below are how each protocol says it. Only
// the out-of-memory wording depends on the command, as in memcached
// ("out of memory storing object" for stores and gets, "out of memory" for
// incr, decr, md, ma and me; "Out of memory allocating item" and
// "Out of memory incrementing value" in the binary protocol).

// textFailures are the text and meta protocols' reply lines per failure
// kind. FailNoMemory's line is the caller's; FailServer's carries the
// error's text.
var textFailures = [...][]byte{
	cache.FailTooLarge: text.TooLarge,
	cache.FailNoMemory: text.OutOfMemoryStoring,
	cache.FailBadKey:   []byte(text.ErrBadFormat.Reply + "\r\n"),
}

// binaryFailures are the binary protocol's statuses per failure kind.
// FailNoMemory's message is the caller's; FailServer's is the error's
// text.
var binaryFailures = [...]binary.Status{
	cache.FailTooLarge: binary.StatusTooLarge,
	cache.FailNoMemory: binary.StatusNoMemory,
	cache.FailBadKey:   binary.StatusInvalid,
	cache.FailServer:   binary.StatusNoMemory,
}

// failure classifies err and logs the errors that have no memcached
// meaning (a disk error, a closed engine): their text reaches the client
// too, but an operator must see them.
func (h *Handler) failure(err error) cache.Failure {
	f := cache.Classify(err)
	if f == cache.FailServer {
		h.logEngineError(err)
	}
	return f
}

// engineErrorEvery is the least time between two "engine error" log
// lines: a failing disk fails every write (and the engine logs the
// failure itself), so one line per failed command would flood the log.
const engineErrorEvery = time.Second

// logEngineError logs err, or counts it when the last line is less than
// engineErrorEvery old; the next line says how many were not logged.
func (h *Handler) logEngineError(err error) {
	now := time.Now().UnixNano()
	last := h.engineErrAt.Load()
	if (last != 0 && now-last < int64(engineErrorEvery)) || !h.engineErrAt.CompareAndSwap(last, now) {
		h.engineErrQuiet.Add(1)
		return
	}
	h.cfg.Logger.Error("engine error", "err", err, "not_logged_since_last", h.engineErrQuiet.Swap(0))
}

// appendFailure appends the text or meta reply line to a command that
// failed with err. noMemory is the command's out-of-memory line.
func (h *Handler) appendFailure(dst []byte, err error, noMemory []byte) []byte {
	switch f := h.failure(err); f {
	case cache.FailNoMemory:
		return append(dst, noMemory...)
	case cache.FailServer:
		return appendServerError(dst, err)
	default:
		return append(dst, textFailures[f]...)
	}
}

// appendServerError appends "SERVER_ERROR <err's text>" as one line
// (an engine's error may quote a file name or a disk's message):
// bytes of the text that would end it or break it (control bytes) are
// written as spaces.
func appendServerError(dst []byte, err error) []byte {
	dst = append(dst, "SERVER_ERROR "...)
	for _, b := range []byte(err.Error()) {
		if b < ' ' || b == 0x7f {
			b = ' '
		}
		dst = append(dst, b)
	}
	return append(dst, "\r\n"...)
}

// appendBinaryFailure appends the binary response to request r that failed
// with err. noMemory is the command's out-of-memory message.
func (h *Handler) appendBinaryFailure(dst []byte, r *binary.Request, err error, noMemory string) []byte {
	f := h.failure(err)
	msg := ""
	switch f {
	case cache.FailNoMemory:
		msg = noMemory
	case cache.FailServer:
		msg = err.Error()
	}
	return binary.AppendError(dst, r.Opcode, binaryFailures[f], r.Opaque, msg)
}
