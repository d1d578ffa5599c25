//go:build !linux

package server

import "syscall"

// poller parks idle connections on Linux only; elsewhere every connection
// keeps its goroutine.
type poller struct{}

func newPoller() *poller        { return nil }
func (*poller) arm(*Conn) bool  { return false }
func (*poller) forget(*Conn)    {}
func (*poller) run(done func()) { done() }
func (*poller) stop()           {}
func (*poller) close()          {}

// dupCloexec is not needed where nothing parks.
func dupCloexec(int) int { return -1 }

// setConnOptions is not needed where nothing parks.
func setConnOptions(int) bool { return false }

// accept4 is never called where nothing parks (newRawAcceptor needs a
// poller).
func (a *rawAcceptor) accept4(uintptr) { a.nfd, a.err = -1, syscall.ENOSYS }
