package memory

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/internal/invariants"
)

// fakeClock is a settable engine.Clock.
type fakeClock struct{ now atomic.Int64 }

func (c *fakeClock) Now() int64      { return c.now.Load() }
func (c *fakeClock) Set(t int64)     { c.now.Store(t) }
func (c *fakeClock) Advance(d int64) { c.now.Add(d) }
func newClock(t int64) *fakeClock    { c := &fakeClock{}; c.Set(t); return c }

const t0 = 1_700_000_000

// setM stores a fixed value with fixed metadata; it is reusable and
// allocation-free.
type setM struct {
	value   []byte
	flags   uint32
	exptime int64
	cas     uint64
}

func (m *setM) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	next.Value = m.value
	next.Flags = m.flags
	next.Exptime = m.exptime
	next.CAS = m.cas
	return engine.OpStore
}

// funcM adapts a function to engine.Mutator.
type funcM func(cur *engine.Item, found bool, next *engine.Item) engine.Op

func (f funcM) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	return f(cur, found, next)
}

// testEngine opens an engine on a fake clock with sweeping off unless the
// config turns it on, and closes it when t ends.
func testEngine(t testing.TB, env engine.Env, config string) (*Engine, *fakeClock) {
	t.Helper()
	clock := newClock(t0)
	if env.Clock == nil {
		env.Clock = clock
	}
	env.Logger = slog.New(slog.DiscardHandler)
	if config == "" {
		config = "sweep_interval=0"
	}
	e, err := New(env, config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !e.closed.Load() {
			verify(t, e)
		}
		_ = e.Close()
	})
	return e, clock
}

// verify runs the engine's full invariant check (in every build) and fails
// the test with the violation it finds.
func verify(t testing.TB, e *Engine) {
	t.Helper()
	if msg, ok := violation(e.checkInvariants); ok {
		t.Fatal(msg)
	}
}

// violation runs fn and returns the message of the invariants.Violation
// it panics with, if any; other panics go on.
func violation(fn func()) (msg string, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			v, isV := r.(invariants.Violation)
			if !isV {
				panic(r)
			}
			msg, ok = v.Error(), true
		}
	}()
	fn()
	return "", false
}

func set(t testing.TB, e *Engine, key, value string, exptime int64) engine.Meta {
	t.Helper()
	op, m, err := e.Update([]byte(key), &setM{value: []byte(value), exptime: exptime})
	if err != nil || op != engine.OpStore {
		t.Fatalf("set %q: op %d err %v", key, op, err)
	}
	return m
}

func get(t testing.TB, e *Engine, key string) (string, bool) {
	t.Helper()
	_, v, ok, err := e.Get([]byte(key), nil, 0)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return string(v), ok
}

func stat(e *Engine, name string) string {
	var v string
	e.Stats(func(n, val string) {
		if n == name {
			v = val
		}
	})
	return v
}

// eventually polls cond until it holds. It waits for background work
// whose timing is up to the scheduler: the one-minute bound only stops a
// hang, it is not a timing expectation (a busy machine may take seconds).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after a minute: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
