// Package enginetest owns mnemo's engine conformance suite: the one set of
// tests that every storage engine (memory, persistent, restartable) must
// pass, and the FakeClock through which the suite controls time.
//
// An engine runs the suite from its own _test.go file:
//
//	func TestConformance(t *testing.T) {
//		enginetest.Run(t, func(t *testing.T, env engine.Env) engine.Engine {
//			e, err := engine.Open("memory", env, "")
//			if err != nil {
//				t.Fatal(err)
//			}
//			return e
//		})
//	}
//
// # What the suite checks
//
// Everything package engine promises: Get (hit, miss, dst appending,
// GetNoValue, GetTouch), Update with each Op and the Mutator contract, CAS
// assignment, Delete, expiry, Flush (immediate, delayed, replaced), key and
// value limits (ErrBadKey, ErrTooLarge), binary keys and values, Iterate,
// Stats, atomicity and consistency under concurrent use, memory pressure
// (eviction, and ErrNoMemory with NoEvict) and Close (ErrClosed).
//
// Engines whose items survive Close also run the reopen phase, RunReopen
// (reopen.go): items, deletes, overwrites, flushes, exptimes and the CAS
// counter across Close and a new open on the same state.
//
// # Rules the suite keeps
//
// The suite's Mutators are pure functions of the current item and their own
// inputs (an engine may call Mutate more than once per Update), never retain
// cur.Value, and never call the engine. Time only moves when the suite moves
// the FakeClock. Every engine the suite opens is closed by the suite.
package enginetest

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// startTime is where each subtest's FakeClock starts (unix seconds).
const startTime = 1_700_000_000

// Run runs the conformance suite. open is called once per subtest and must
// return a fresh, empty engine built with env (the suite sets env.Clock to a
// fake clock it controls, and may set MemoryLimit/ItemSizeMax/NoEvict); the
// suite closes each engine it opens.
//
// env arrives with its defaults filled in (engine.Env.WithDefaults) and a
// Logger that discards records.
func Run(t *testing.T, open func(t *testing.T, env engine.Env) engine.Engine) {
	s := &suite{open: open}
	for _, g := range []struct {
		name string
		fn   func(*testing.T, *suite)
	}{
		{"Get", testGet},
		{"View", testView},
		{"Update", testUpdate},
		{"Delete", testDelete},
		{"Expiry", testExpiry},
		{"Flush", testFlush},
		{"Keys", testKeys},
		{"Values", testValues},
		{"Iterate", testIterate},
		{"Stats", testStats},
		{"Concurrency", testConcurrency},
		{"Close", testClose},
		{"Memory", testMemory},
	} {
		t.Run(g.name, func(t *testing.T) { g.fn(t, s) })
	}
}

// suite carries the engine constructor through the subtests.
type suite struct {
	open func(t *testing.T, env engine.Env) engine.Engine
}

// fixture is one freshly opened engine and the clock it runs on.
type fixture struct {
	t     *testing.T
	e     engine.Engine
	clock *FakeClock
}

// engine opens a fresh engine with the default Env.
func (s *suite) engine(t *testing.T) *fixture {
	t.Helper()
	return s.engineWith(t, engine.Env{})
}

// engineWith opens a fresh engine with env (its Clock and Logger replaced)
// and arranges for it to be closed when t ends.
func (s *suite) engineWith(t *testing.T, env engine.Env) *fixture {
	t.Helper()
	clock := NewFakeClock(startTime)
	env.Clock = clock
	env.Logger = slog.New(slog.DiscardHandler)
	env = env.WithDefaults()
	e := s.open(t, env)
	if e == nil {
		t.Fatal("enginetest: open returned a nil engine")
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return &fixture{t: t, e: e, clock: clock}
}

// now is the fixture clock's time.
func (f *fixture) now() int64 { return f.clock.Now() }

// store stores value under key with flags and exptime through Update/OpStore
// and returns the metadata Update reported. It fails the test on error.
func (f *fixture) store(key string, value []byte, flags uint32, exptime int64) engine.Meta {
	f.t.Helper()
	m := storeM{next: engine.Item{Meta: engine.Meta{Flags: flags, Exptime: exptime}, Value: value}}
	op, meta, err := f.e.Update([]byte(key), m)
	if err != nil {
		f.t.Fatalf("Update(%s, OpStore): %v", q(key), err)
	}
	if op != engine.OpStore {
		f.t.Fatalf("Update(%s, OpStore) returned op %d, want OpStore", q(key), op)
	}
	return meta
}

// set stores a string value with no flags that never expires.
func (f *fixture) set(key, value string) engine.Meta {
	f.t.Helper()
	return f.store(key, []byte(value), 0, 0)
}

// get is a plain Get that copies the value out. It fails the test on error.
func (f *fixture) get(key string) (engine.Item, bool) {
	f.t.Helper()
	return f.getFlags(key, 0)
}

// getFlags is get with flags.
func (f *fixture) getFlags(key string, flags engine.GetFlags) (engine.Item, bool) {
	f.t.Helper()
	meta, val, found, err := f.e.Get([]byte(key), nil, flags)
	if err != nil {
		f.t.Fatalf("Get(%s): %v", q(key), err)
	}
	if !found {
		return engine.Item{}, false
	}
	return engine.Item{Meta: meta, Value: bytes.Clone(val)}, true
}

// mustGet gets key and fails the test if it is absent.
func (f *fixture) mustGet(key string) engine.Item {
	f.t.Helper()
	it, ok := f.get(key)
	if !ok {
		f.t.Fatalf("Get(%s): not found, want found (clock %d)", q(key), f.now())
	}
	return it
}

// mustMiss fails the test if key is present.
func (f *fixture) mustMiss(key string) {
	f.t.Helper()
	if it, ok := f.get(key); ok {
		f.t.Fatalf("Get(%s): found %s (meta %+v), want absent (clock %d)", q(key), qb(it.Value), it.Meta, f.now())
	}
}

// mustHave fails the test unless key holds value.
func (f *fixture) mustHave(key, value string) engine.Item {
	f.t.Helper()
	it := f.mustGet(key)
	if string(it.Value) != value {
		f.t.Fatalf("Get(%s) = %s, want %s", q(key), qb(it.Value), q(value))
	}
	return it
}

// observe runs a recording Mutator that returns OpNone and reports what it
// was shown.
func (f *fixture) observe(key string) (engine.Item, bool) {
	f.t.Helper()
	r := &recordM{op: engine.OpNone}
	op, _, err := f.e.Update([]byte(key), r)
	if err != nil {
		f.t.Fatalf("Update(%s, OpNone): %v", q(key), err)
	}
	if op != engine.OpNone {
		f.t.Fatalf("Update(%s, OpNone) returned op %d", q(key), op)
	}
	if !r.found && !isZeroItem(r.cur) {
		f.t.Fatalf("Update(%s): Mutator got found=false with non-zero cur %+v", q(key), r.cur)
	}
	return r.cur, r.found
}

// stats collects the engine's stats into a map.
func (f *fixture) stats() map[string]string {
	m := map[string]string{}
	f.e.Stats(func(name, value string) { m[name] = value })
	return m
}

// statInt returns the stat name parsed as an integer; it fails the test
// if the stat is missing or not a number.
func (f *fixture) statInt(name string) int64 {
	f.t.Helper()
	v, ok := f.stats()[name]
	if !ok {
		f.t.Fatalf("Stats: no %q", name)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		f.t.Fatalf("Stats: %s = %q is not an integer", name, v)
	}
	return n
}

// storeM is a Mutator that stores a fixed item whatever the current one.
type storeM struct{ next engine.Item }

func (m storeM) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	*next = m.next
	return engine.OpStore
}

// recordM is a Mutator that records (copies) what it was shown and returns
// a fixed decision. Recording the last call is harmless if the engine calls
// it more than once: every call sees the same state and decides the same.
type recordM struct {
	op    engine.Op
	next  engine.Item
	cur   engine.Item
	found bool
}

func (m *recordM) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	m.found = found
	m.cur = engine.Item{Meta: cur.Meta}
	if cur.Value != nil {
		m.cur.Value = bytes.Clone(cur.Value)
	}
	if m.op == engine.OpStore || m.op == engine.OpMeta {
		*next = m.next
	}
	return m.op
}

// metaM is a Mutator that replaces a present item's metadata (OpMeta),
// keeping its CAS when keepCAS is set and asking for a fresh one otherwise.
// It leaves absent keys alone.
type metaM struct {
	flags   uint32
	exptime int64
	bits    uint8
	keepCAS bool
}

func (m metaM) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	if !found {
		return engine.OpNone
	}
	next.Meta = engine.Meta{Flags: m.flags, Exptime: m.exptime, Bits: m.bits, Atime: cur.Atime}
	if m.keepCAS {
		next.CAS = cur.CAS
	}
	return engine.OpMeta
}

// incrM is a Mutator that reads the value as a decimal number (absent is
// 0) and stores the number plus one, keeping the flags.
type incrM struct{}

func (incrM) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	var n uint64
	if found {
		v, err := strconv.ParseUint(string(cur.Value), 10, 64)
		if err != nil {
			return engine.OpNone // the test reports the bad value
		}
		n = v
		next.Flags = cur.Flags
	}
	next.Value = strconv.AppendUint(nil, n+1, 10)
	return engine.OpStore
}

// isZeroItem reports whether it is the zero Item (an empty non-nil value
// counts as zero).
func isZeroItem(it engine.Item) bool {
	return it.Meta == (engine.Meta{}) && len(it.Value) == 0
}

// q quotes a key or value for messages, shortening long ones.
func q(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q...(%d bytes)", s[:32], len(s))
	}
	return strconv.Quote(s)
}

// qb is q for a byte slice.
func qb(b []byte) string { return q(string(b)) }
