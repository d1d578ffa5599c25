package enginetest

import (
	"sync/atomic"

	"github.com/mnemo-cache/mnemo/engine"
)

// FakeClock is a settable engine.Clock, safe for concurrent use. The suite
// hands one to every engine it opens and moves it by hand, so that expiry and
// delayed flushes are tested without sleeping.
type FakeClock struct {
	now atomic.Int64
}

var _ engine.Clock = (*FakeClock)(nil)

// NewFakeClock returns a FakeClock that reads now (unix seconds).
func NewFakeClock(now int64) *FakeClock {
	c := &FakeClock{}
	c.now.Store(now)
	return c
}

// Now returns the clock's current time in unix seconds.
func (c *FakeClock) Now() int64 { return c.now.Load() }

// Set moves the clock to now (forwards or backwards).
func (c *FakeClock) Set(now int64) { c.now.Store(now) }

// Advance moves the clock by secs seconds (backwards when secs < 0).
func (c *FakeClock) Advance(secs int64) { c.now.Add(secs) }
