package enginetest

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// RunReopen runs the reopen phase of the suite, for engines whose items
// survive Close (the memory engine on a restartable file, the persistent
// engine). open is called with the directory that holds the engine's
// state: the suite calls it again with the same directory after closing
// the engine, and the new engine must hold what the old one held. The
// suite closes every engine it opens.
//
// It checks that after Close and open: items come back with their value,
// flags, exptime and CAS; deleted and overwritten versions do not; a
// flush stays in force; exptimes keep counting on the clock (items expire
// after the reopen when the clock reaches them); new CAS values are above
// every CAS handed out before.
func RunReopen(t *testing.T, open func(t *testing.T, env engine.Env, dir string) engine.Engine) {
	for _, g := range []struct {
		name string
		fn   func(*testing.T, *reopener)
	}{
		{"Items", testReopenItems},
		{"Flush", testReopenFlush},
		{"Expiry", testReopenExpiry},
	} {
		t.Run("Reopen/"+g.name, func(t *testing.T) {
			g.fn(t, &reopener{open: open, dir: t.TempDir(), clock: NewFakeClock(startTime)})
		})
	}
}

// reopener opens engines on one directory, one at a time, on one clock.
type reopener struct {
	open  func(t *testing.T, env engine.Env, dir string) engine.Engine
	dir   string
	clock *FakeClock
	cur   *fixture
}

// reopen closes the current engine, if any, and opens a new one on the
// same directory.
func (r *reopener) reopen(t *testing.T) *fixture {
	t.Helper()
	if r.cur != nil {
		if err := r.cur.e.Close(); err != nil {
			t.Fatalf("Close before reopening: %v", err)
		}
	}
	env := engine.Env{Clock: r.clock, Logger: slog.New(slog.DiscardHandler)}.WithDefaults()
	e := r.open(t, env, r.dir)
	if e == nil {
		t.Fatal("enginetest: open returned a nil engine")
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	r.cur = &fixture{t: t, e: e, clock: r.clock}
	return r.cur
}

func testReopenItems(t *testing.T, r *reopener) {
	f := r.reopen(t)
	type want struct {
		value []byte
		meta  engine.Meta
	}
	wants := map[string]want{}
	var maxCAS uint64
	for i := range 300 {
		key := fmt.Sprintf("item:%d", i)
		value := bytes.Repeat([]byte{byte(i), 0, '\r', '\n'}, i%50)
		exptime := int64(0)
		if i%3 == 0 {
			exptime = f.now() + 1000
		}
		m := f.store(key, value, uint32(i*7), exptime)
		maxCAS = max(maxCAS, m.CAS)
		wants[key] = want{value, engine.Meta{Flags: uint32(i * 7), Exptime: exptime, CAS: m.CAS}}
	}
	for i := 0; i < 300; i += 5 {
		key := fmt.Sprintf("item:%d", i)
		if _, err := f.e.Delete([]byte(key)); err != nil {
			t.Fatal(err)
		}
		delete(wants, key)
	}
	for i := 1; i < 300; i += 5 {
		key := fmt.Sprintf("item:%d", i)
		m := f.store(key, []byte("overwritten"), 1, 0)
		maxCAS = max(maxCAS, m.CAS)
		wants[key] = want{[]byte("overwritten"), engine.Meta{Flags: 1, CAS: m.CAS}}
	}
	for round := range 2 {
		f = r.reopen(t)
		for i := range 300 {
			key := fmt.Sprintf("item:%d", i)
			w, ok := wants[key]
			it, found := f.get(key)
			switch {
			case !ok && found:
				t.Fatalf("reopen %d: %s (deleted) is back: %s", round, q(key), qb(it.Value))
			case ok && !found:
				t.Fatalf("reopen %d: %s lost", round, q(key))
			case ok && (!bytes.Equal(it.Value, w.value) || it.Flags != w.meta.Flags || it.Exptime != w.meta.Exptime || it.CAS != w.meta.CAS):
				t.Fatalf("reopen %d: %s = %s %+v, want %s %+v", round, q(key), qb(it.Value), it.Meta, qb(w.value), w.meta)
			}
		}
	}
	if m := f.set("after", "x"); m.CAS <= maxCAS {
		t.Fatalf("CAS %d after reopening, not above the %d handed out before", m.CAS, maxCAS)
	}
}

func testReopenFlush(t *testing.T, r *reopener) {
	f := r.reopen(t)
	for i := range 50 {
		f.set(fmt.Sprintf("old:%d", i), "v")
	}
	if err := f.e.Flush(0); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(1)
	f.set("new", "v")
	f = r.reopen(t)
	for i := range 50 {
		f.mustMiss(fmt.Sprintf("old:%d", i))
	}
	f.mustHave("new", "v")
}

func testReopenExpiry(t *testing.T, r *reopener) {
	f := r.reopen(t)
	f.store("soon", []byte("v"), 0, f.now()+10)
	f.store("later", []byte("v"), 0, f.now()+100)
	f = r.reopen(t)
	f.mustHave("soon", "v")
	r.clock.Advance(10)
	f = r.reopen(t)
	f.mustMiss("soon")
	f.mustHave("later", "v")
}
