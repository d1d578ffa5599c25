package cache

import (
	"errors"

	"github.com/mnemo-cache/mnemo/engine"
)

// Failure is the kind of a command that failed with an error, one per
// family of memcached's error replies. Every protocol answers a failure of
// one kind the same way, in its own words: the text and meta protocols
// with a reply line, the binary protocol with a status.
//
//	kind            text and meta reply                         binary status
//	FailTooLarge    SERVER_ERROR object too large for cache     0x03 E2BIG
//	FailNoMemory    SERVER_ERROR out of memory[ storing object] 0x82 ENOMEM
//	FailBadKey      CLIENT_ERROR bad command line format        0x04 EINVAL
//	FailServer      SERVER_ERROR <the error>                    0x82 ENOMEM <the error>
type Failure uint8

const (
	// FailNone: no error.
	FailNone Failure = iota
	// FailTooLarge: the item is larger than the item size limit (-I).
	FailTooLarge
	// FailNoMemory: the item does not fit and may not evict (-M), or
	// eviction could not make room.
	FailNoMemory
	// FailBadKey: the engine refused the key.
	FailBadKey
	// FailServer: any other error (a disk error of the persistent engine,
	// a closed engine). Its text is shown to the client, as memcached
	// shows its SERVER_ERROR reasons, and it deserves a log line.
	FailServer
)

// Classify returns the kind of failure err means.
func Classify(err error) Failure {
	switch {
	case err == nil:
		return FailNone
	case errors.Is(err, engine.ErrTooLarge):
		return FailTooLarge
	case errors.Is(err, engine.ErrNoMemory):
		return FailNoMemory
	case errors.Is(err, engine.ErrBadKey):
		return FailBadKey
	}
	return FailServer
}

// outOfRoom reports whether a store failed because the new item could not
// be allocated (memcached's item_alloc returning NULL).
func outOfRoom(err error) bool {
	f := Classify(err)
	return f == FailTooLarge || f == FailNoMemory
}

// countRefused counts a store refused for want of room.
func (s *Session) countRefused(err error) {
	switch Classify(err) {
	case FailTooLarge:
		s.StoreTooLarge.Add(1)
	case FailNoMemory:
		s.StoreNoMemory.Add(1)
	}
}

// dropStale applies memcached's rule for a store that could not allocate
// its item: the key's old item is unlinked, so that a failed store never
// leaves stale data to be served ("Avoid stale data persisting in cache
// because we failed alloc"). memcached does it for set in the text and
// binary protocols, whatever the CAS, and for every mode of ms.
func (s *Session) dropStale(key []byte) {
	// An error here leaves nothing worse than the failed store did; the
	// client has its error reply already.
	_, _ = s.c.eng.Delete(key)
}

// RefuseTooLarge records a storage command whose value the decoder refused
// as larger than the item size limit before it reached the engine (the
// text protocol's set with a length over -I, a binary SET with a body over
// it): it counts store_too_large and, for set, drops the key's old item as
// memcached does. mode is the command's mode as the client sent it.
func (s *Session) RefuseTooLarge(key []byte, mode StoreMode) {
	s.StoreTooLarge.Add(1)
	if mode == ModeSet {
		s.dropStale(key)
	}
}

// RefuseMetaTooLarge is RefuseTooLarge for ms, which drops the old item in
// every mode.
func (s *Session) RefuseMetaTooLarge(key []byte) {
	s.StoreTooLarge.Add(1)
	s.dropStale(key)
}
