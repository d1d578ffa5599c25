package enginetest_test

import (
	"bytes"
	"container/list"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/engine/enginetest"
)

// mapEngine is the suite's self-test oracle: a deliberately simple,
// obviously correct engine.Engine (one mutex, a Go map and a list for LRU
// order) that the suite must pass. It is not a product engine.
//
// To prove the suite keeps its own rules, it calls every Mutator twice and
// scribbles over the cur.Value it handed out once Mutate returns. bug, when
// set, plants one known defect (see mutants) so the self-test can show the
// suite notices it.
type mapEngine struct {
	env engine.Env
	bug string

	mu      sync.Mutex
	closed  bool
	items   map[string]*mapItem
	lru     *list.List // of *mapItem, most recent first
	bytes   int64
	cas     uint64
	pending int64 // a delayed flush's deadline, 0 for none
	flushed int64 // bug sameSecond: items with Atime <= flushed are dead
	total   int64 // total_items
	evicted int64
}

type mapItem struct {
	key  string
	it   engine.Item
	elem *list.Element
}

var _ engine.Engine = (*mapEngine)(nil)

// mapOverhead is what the oracle charges per item besides key and value.
const mapOverhead = 48

func newMapEngine(env engine.Env, bug string) *mapEngine {
	return &mapEngine{env: env.WithDefaults(), bug: bug, items: map[string]*mapItem{}, lru: list.New()}
}

func (e *mapEngine) validKey(key []byte) bool {
	if e.bug == "longKeys" {
		return len(key) > 0 && len(key) <= 1000
	}
	return engine.ValidKey(key)
}

// begin locks the engine and settles a delayed flush whose time has come.
// It returns the clock's now and whether the lock is held; when it is not,
// err is what the caller returns.
func (e *mapEngine) begin() (now int64, locked bool, err error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		if e.bug == "closeNil" {
			return 0, false, nil
		}
		return 0, false, engine.ErrClosed
	}
	now = e.env.Clock.Now()
	if e.pending != 0 && now >= e.pending {
		for _, mi := range e.items {
			if mi.it.Atime < e.pending {
				e.remove(mi)
			}
		}
		e.pending = 0
	}
	return now, true, nil
}

func (e *mapEngine) remove(mi *mapItem) {
	delete(e.items, mi.key)
	e.lru.Remove(mi.elem)
	e.bytes -= int64(len(mi.key) + len(mi.it.Value) + mapOverhead)
}

// lookup returns the live item under key, dropping it if it expired.
func (e *mapEngine) lookup(key string, now int64) *mapItem {
	mi := e.items[key]
	if mi == nil {
		return nil
	}
	if e.bug == "sameSecond" && mi.it.Atime <= e.flushed {
		e.remove(mi)
		return nil
	}
	if mi.it.Expired(now) {
		if e.bug == "deleteExpired" {
			return mi
		}
		e.remove(mi)
		return nil
	}
	return mi
}

func (e *mapEngine) View(key []byte, flags engine.GetFlags, fn func(engine.Meta, []byte)) (engine.Meta, bool, error) {
	// Built on Get, as an engine without a cheaper way would.
	m, v, found, err := e.Get(key, nil, flags)
	if err != nil || !found {
		return engine.Meta{}, false, err
	}
	if flags&engine.GetNoValue != 0 {
		v = nil
	} else if e.bug == "viewShort" && len(v) > 0 {
		v = v[:len(v)-1]
	}
	if e.bug != "viewNoCall" {
		fn(m, v)
	}
	return m, true, nil
}

func (e *mapEngine) Get(key, dst []byte, flags engine.GetFlags) (engine.Meta, []byte, bool, error) {
	if !e.validKey(key) {
		return engine.Meta{}, dst, false, engine.ErrBadKey
	}
	now, locked, err := e.begin()
	if !locked {
		return engine.Meta{}, dst, false, err
	}
	defer e.mu.Unlock()
	mi := e.lookup(string(key), now)
	if mi == nil || mi.it.Expired(now) {
		return engine.Meta{}, dst, false, nil
	}
	meta := mi.it.Meta
	if flags&engine.GetNoValue == 0 {
		dst = append(dst, mi.it.Value...)
	}
	if flags&engine.GetTouch != 0 && e.bug != "noTouch" {
		mi.it.Atime = now
		mi.it.Bits |= engine.BitFetched
		e.lru.MoveToFront(mi.elem)
		if e.bug == "touchPostMeta" {
			meta = mi.it.Meta
		}
	}
	return meta, dst, true, nil
}

func (e *mapEngine) Update(key []byte, m engine.Mutator) (engine.Op, engine.Meta, error) {
	if !e.validKey(key) {
		return engine.OpNone, engine.Meta{}, engine.ErrBadKey
	}
	now, locked, err := e.begin()
	if !locked {
		return engine.OpNone, engine.Meta{}, err
	}
	defer e.mu.Unlock()
	k := string(key)
	var op engine.Op
	var next engine.Item
	for range 2 {
		if e.bug == "nonAtomic" {
			e.mu.Unlock()
			runtime.Gosched()
			e.mu.Lock()
		}
		var cur engine.Item
		mi := e.lookup(k, now)
		if mi != nil {
			cur = engine.Item{Meta: mi.it.Meta, Value: bytes.Clone(mi.it.Value)}
		}
		if e.bug == "nonAtomic" {
			e.mu.Unlock()
			runtime.Gosched()
			e.mu.Lock()
		}
		next = engine.Item{}
		op = m.Mutate(&cur, mi != nil, &next)
		for i := range cur.Value {
			cur.Value[i] = 0xEE
		}
	}
	mi := e.lookup(k, now)
	switch op {
	case engine.OpStore:
		if e.bug == "tooLargeDeletes" && len(next.Value) > e.env.ItemSizeMax && mi != nil {
			e.remove(mi)
		}
		if err := e.reserve(k, mi, len(next.Value)); err != nil {
			return engine.OpNone, engine.Meta{}, err
		}
		if mi != nil {
			e.remove(mi)
		}
		it := engine.Item{Meta: next.Meta, Value: bytes.Clone(next.Value)}
		if e.bug == "aliasValue" {
			it.Value = next.Value
		}
		it.Atime = now
		it.Bits = next.Bits
		if it.CAS == 0 {
			e.cas++
			it.CAS = e.cas
		}
		e.total++
		e.insert(k, it)
		return op, it.Meta, nil
	case engine.OpMeta:
		if mi == nil {
			return engine.OpNone, engine.Meta{}, nil
		}
		old := mi.it.CAS
		mi.it.Meta = next.Meta
		if mi.it.CAS == 0 {
			e.cas++
			mi.it.CAS = e.cas
			if e.bug == "metaKeepsCAS" {
				mi.it.CAS = old
			}
		}
		return op, mi.it.Meta, nil
	case engine.OpDelete:
		if mi != nil {
			e.remove(mi)
		}
		return op, engine.Meta{}, nil
	}
	return engine.OpNone, engine.Meta{}, nil
}

// reserve makes room for a value of n bytes under key k (replacing old),
// evicting from the LRU tail unless NoEvict.
func (e *mapEngine) reserve(k string, old *mapItem, n int) error {
	size := int64(len(k) + n + mapOverhead)
	if size > int64(e.env.ItemSizeMax) {
		return engine.ErrTooLarge
	}
	if size > e.env.MemoryLimit {
		return engine.ErrNoMemory
	}
	free := e.env.MemoryLimit - e.bytes
	if old != nil {
		free += int64(len(old.key) + len(old.it.Value) + mapOverhead)
	}
	if size <= free {
		return nil
	}
	if e.env.NoEvict && e.bug != "ignoreNoEvict" {
		return engine.ErrNoMemory
	}
	for el := e.lru.Back(); el != nil && size > free; {
		mi := el.Value.(*mapItem)
		el = el.Prev()
		if mi == old {
			continue
		}
		free += int64(len(mi.key) + len(mi.it.Value) + mapOverhead)
		e.remove(mi)
		e.evicted++
	}
	if size > free {
		return engine.ErrNoMemory
	}
	return nil
}

func (e *mapEngine) insert(k string, it engine.Item) {
	mi := &mapItem{key: k, it: it}
	mi.elem = e.lru.PushFront(mi)
	e.items[k] = mi
	e.bytes += int64(len(k) + len(it.Value) + mapOverhead)
}

func (e *mapEngine) Delete(key []byte) (bool, error) {
	if !e.validKey(key) {
		return false, engine.ErrBadKey
	}
	now, locked, err := e.begin()
	if !locked {
		return false, err
	}
	defer e.mu.Unlock()
	mi := e.lookup(string(key), now)
	if mi == nil {
		return false, nil
	}
	e.remove(mi)
	return true, nil
}

func (e *mapEngine) Flush(at int64) error {
	now, locked, err := e.begin()
	if !locked {
		return err
	}
	defer e.mu.Unlock()
	if at > now {
		e.pending = at
		return nil
	}
	if e.bug == "flushLate" {
		e.pending = now + 1
		return nil
	}
	if e.bug == "sameSecond" {
		e.flushed = now
	}
	e.pending = 0
	for _, mi := range e.items {
		e.remove(mi)
	}
	return nil
}

func (e *mapEngine) Iterate(fn func(key []byte, it *engine.Item) bool) error {
	now, locked, err := e.begin()
	if !locked {
		return err
	}
	// A copy under the lock, fn without it (the Iterate contract: fn may
	// block while other calls go on).
	type kv struct {
		k  string
		it engine.Item
	}
	var snap []kv
	for k, mi := range e.items {
		if mi.it.Expired(now) && e.bug != "iterateExpired" {
			continue
		}
		it := mi.it
		it.Value = bytes.Clone(it.Value)
		snap = append(snap, kv{k, it})
	}
	e.mu.Unlock()
	for i := range snap {
		if !fn([]byte(snap[i].k), &snap[i].it) && e.bug != "iterateNoStop" {
			break
		}
		e.mu.Lock()
		closed := e.closed
		e.mu.Unlock()
		if closed {
			return engine.ErrClosed
		}
	}
	return nil
}

func (e *mapEngine) Stats(add func(name, value string)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	curr := len(e.items)
	if e.bug == "countDeleted" {
		curr = int(e.total)
	}
	add("curr_items", strconv.Itoa(curr))
	add("total_items", strconv.FormatInt(e.total, 10))
	add("bytes", strconv.FormatInt(e.bytes, 10))
	add("limit_maxbytes", strconv.FormatInt(e.env.MemoryLimit, 10))
	add("evictions", strconv.FormatInt(e.evicted, 10))
}

func (e *mapEngine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return engine.ErrClosed
	}
	e.closed = true
	e.items = nil
	e.lru.Init()
	return nil
}

// openMap returns an open function for Run that builds mapEngines with bug.
func openMap(bug string) func(t *testing.T, env engine.Env) engine.Engine {
	return func(t *testing.T, env engine.Env) engine.Engine {
		if _, ok := env.Clock.(*enginetest.FakeClock); !ok {
			t.Errorf("env.Clock is %T, want *enginetest.FakeClock", env.Clock)
		}
		return newMapEngine(env, bug)
	}
}

// TestRun runs the suite against the oracle: the suite passes a correct
// engine.
func TestRun(t *testing.T) {
	enginetest.Run(t, openMap(""))
}

// mutants are defects planted in the oracle, each with the part of the
// suite that must notice it.
var mutants = []struct {
	bug     string
	subtest string
}{
	{"nonAtomic", "Concurrency"},
	{"flushLate", "Flush"},
	{"sameSecond", "Flush"},
	{"touchPostMeta", "Get"},
	{"deleteExpired", "Delete"},
	{"aliasValue", "Update"},
	{"noTouch", "Get"},
	{"metaKeepsCAS", "Update"},
	{"ignoreNoEvict", "Memory"},
	{"longKeys", "Keys"},
	{"iterateExpired", "Iterate"},
	{"iterateNoStop", "Iterate"},
	{"closeNil", "Close"},
	{"tooLargeDeletes", "Values"},
	{"countDeleted", "Stats"},
	{"viewShort", "View"},
	{"viewNoCall", "View"},
}

// mutantEnv names the planted bug in a child process of TestMutants.
const mutantEnv = "ENGINETEST_MUTANT"

// TestMutants shows that the suite fails engines with known defects: for
// each mutant it reruns this test binary on one part of the suite with the
// defect planted, and expects that part to fail.
func TestMutants(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("in a mutant child")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	for _, m := range mutants {
		t.Run(m.bug, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMutantChild$/^"+m.subtest+"$", "-test.count=1")
			cmd.Env = append(os.Environ(), mutantEnv+"="+m.bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed an engine with bug %s:\n%s", m.bug, out)
			}
			if want := "--- FAIL: TestMutantChild/" + m.subtest; !strings.Contains(string(out), want) {
				t.Fatalf("bug %s: output lacks %q:\n%s", m.bug, want, out)
			}
		})
	}
}

// TestMutantChild runs the suite against a mutant oracle; it runs only as
// a child of TestMutants.
func TestMutantChild(t *testing.T) {
	bug := os.Getenv(mutantEnv)
	if bug == "" {
		t.Skip("runs only as a child of TestMutants")
	}
	enginetest.Run(t, openMap(bug))
}

func TestFakeClock(t *testing.T) {
	c := enginetest.NewFakeClock(100)
	var _ engine.Clock = c
	for _, tc := range []struct {
		name string
		do   func()
		want int64
	}{
		{"start", func() {}, 100},
		{"advance", func() { c.Advance(5) }, 105},
		{"advance back", func() { c.Advance(-10) }, 95},
		{"set", func() { c.Set(1_000_000) }, 1_000_000},
		{"advance zero", func() { c.Advance(0) }, 1_000_000},
	} {
		tc.do()
		if got := c.Now(); got != tc.want {
			t.Errorf("%s: Now() = %d, want %d", tc.name, got, tc.want)
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				c.Advance(1)
				c.Now()
			}
		})
	}
	wg.Wait()
	if got := c.Now(); got != 1_004_000 {
		t.Errorf("after 4000 concurrent Advance(1): %d, want 1004000", got)
	}
}
