package cache_test

import (
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/mnemo-cache/mnemo/cache"
	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/engine/enginetest"
	"github.com/mnemo-cache/mnemo/engine/memory"
)

const t0 = 1_700_000_000

func newCache(t *testing.T, opts cache.Options) (*cache.Cache, *enginetest.FakeClock) {
	t.Helper()
	clock := enginetest.NewFakeClock(t0)
	eng, err := memory.New(engine.Env{Clock: clock}.WithDefaults(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return cache.New(eng, clock, opts), clock
}

func TestExpiry(t *testing.T) {
	now := int64(t0)
	for _, tc := range []struct {
		exptime, want int64
	}{
		{0, 0},
		{-1, 1},
		{-1000, 1},
		{1, now + 1},
		{60 * 60 * 24 * 30, now + 60*60*24*30}, // 30 days: still relative
		{60*60*24*30 + 1, 1},                   // absolute and long past
		{now - 10, 1},                          // absolute, past
		{now, 1},                               // absolute, now: expired
		{now + 100, now + 100},                 // absolute, future
		{1 << 31, 1 << 31},                     // far future
	} {
		if got := cache.Expiry(tc.exptime, now); got != tc.want {
			t.Errorf("Expiry(%d) = %d, want %d", tc.exptime, got, tc.want)
		}
	}
}

func TestStoreModes(t *testing.T) {
	c, _ := newCache(t, cache.Options{})
	s := c.NewSession()
	defer s.Close()
	k := []byte("k")
	get := func() (string, uint32, bool) {
		m, v, ok, err := s.Get(k, nil)
		if err != nil {
			t.Fatal(err)
		}
		return string(v), m.Flags, ok
	}
	steps := []struct {
		name  string
		mode  cache.StoreMode
		flags uint32
		value string
		cas   func() uint64
		want  cache.Status
		val   string // value after, "" = absent
		fl    uint32
	}{
		{"replace absent", cache.ModeReplace, 1, "a", nil, cache.NotStored, "", 0},
		{"append absent", cache.ModeAppend, 1, "a", nil, cache.NotStored, "", 0},
		{"prepend absent", cache.ModePrepend, 1, "a", nil, cache.NotStored, "", 0},
		{"cas absent", cache.ModeCAS, 1, "a", func() uint64 { return 1 }, cache.NotFound, "", 0},
		{"add absent", cache.ModeAdd, 7, "a", nil, cache.Stored, "a", 7},
		{"add present", cache.ModeAdd, 8, "b", nil, cache.NotStored, "a", 7},
		{"replace present", cache.ModeReplace, 9, "b", nil, cache.Stored, "b", 9},
		{"append keeps flags", cache.ModeAppend, 1, "c", nil, cache.Stored, "bc", 9},
		{"prepend keeps flags", cache.ModePrepend, 2, "z", nil, cache.Stored, "zbc", 9},
		{"cas bad", cache.ModeCAS, 3, "x", func() uint64 { m, _, _, _ := s.Get(k, nil); return m.CAS + 1000 }, cache.Exists, "zbc", 9},
		{"cas good", cache.ModeCAS, 3, "x", func() uint64 { m, _, _, _ := s.Get(k, nil); return m.CAS }, cache.Stored, "x", 3},
		{"set", cache.ModeSet, 4, "y", nil, cache.Stored, "y", 4},
		{"set with bad cas", cache.ModeSet, 5, "w", func() uint64 { return 1 }, cache.Exists, "y", 4},
	}
	for _, st := range steps {
		var cas uint64
		if st.cas != nil {
			cas = st.cas()
		}
		got, _, err := s.Store(st.mode, k, st.flags, 0, []byte(st.value), cas)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got != st.want {
			t.Errorf("%s: status %d, want %d", st.name, got, st.want)
		}
		v, fl, ok := get()
		if st.val == "" && ok || st.val != "" && (v != st.val || fl != st.fl) {
			t.Errorf("%s: item %q flags %d found %v, want %q flags %d", st.name, v, fl, ok, st.val, st.fl)
		}
	}
	var counts = map[string]uint64{}
	c.Stats(func(n string, v uint64) { counts[n] = v })
	// "set with bad cas" is a cas command too (binary protocol), as in
	// memcached: it counts in cas_badval.
	if counts["cas_hits"] != 1 || counts["cas_badval"] != 2 || counts["cas_misses"] != 1 {
		t.Errorf("cas counters %v", counts)
	}
}

func TestArith(t *testing.T) {
	c, _ := newCache(t, cache.Options{})
	s := c.NewSession()
	defer s.Close()
	for _, tc := range []struct {
		name    string
		initial string
		incr    bool
		delta   uint64
		status  cache.Status
		result  uint64
		stored  string
	}{
		{"incr", "1", true, 1, cache.Stored, 2, "2"},
		{"incr grows", "9", true, 1, cache.Stored, 10, "10"},
		{"decr pads", "10", false, 1, cache.Stored, 9, "9 "},
		{"decr floor", "5", false, 10, cache.Stored, 0, "0"},
		{"incr wraps", "18446744073709551615", true, 2, cache.Stored, 1, "1                   "},
		{"leading space", "  7", true, 1, cache.Stored, 8, "8  "},
		{"trailing space", "7 ", true, 1, cache.Stored, 8, "8 "},
		{"non numeric", "x1", true, 1, cache.NonNumeric, 0, "x1"},
		{"trailing garbage", "1x", true, 1, cache.NonNumeric, 0, "1x"},
		{"empty", "", true, 1, cache.NonNumeric, 0, ""},
		{"negative", "-5", true, 1, cache.NonNumeric, 0, "-5"},
		{"overflow", "18446744073709551616", true, 1, cache.NonNumeric, 0, "18446744073709551616"},
	} {
		k := []byte(tc.name)
		if _, _, err := s.Store(cache.ModeSet, k, 3, 0, []byte(tc.initial), 0); err != nil {
			t.Fatal(err)
		}
		st, v, _, err := s.Arith(k, cache.Arith{Incr: tc.incr, Delta: tc.delta})
		if err != nil {
			t.Fatal(err)
		}
		if st != tc.status || v != tc.result {
			t.Errorf("%s: got status %d value %d, want %d %d", tc.name, st, v, tc.status, tc.result)
		}
		m, val, _, _ := s.Get(k, nil)
		if string(val) != tc.stored || m.Flags != 3 {
			t.Errorf("%s: stored %q flags %d, want %q flags 3", tc.name, val, m.Flags, tc.stored)
		}
	}
	st, _, _, _ := s.Arith([]byte("absent"), cache.Arith{Incr: true, Delta: 1})
	if st != cache.NotFound {
		t.Errorf("absent: status %d", st)
	}
	st, v, _, _ := s.Arith([]byte("created"), cache.Arith{Incr: true, Delta: 1, Create: true, Initial: 42})
	if st != cache.Stored || v != 42 {
		t.Errorf("create: status %d value %d", st, v)
	}
}

func TestTouchGatDeleteExpiry(t *testing.T) {
	c, clock := newCache(t, cache.Options{})
	s := c.NewSession()
	defer s.Close()
	k := []byte("k")
	s.Store(cache.ModeSet, k, 0, 10, []byte("v"), 0)
	before, _, _, _ := s.Get(k, nil)
	if st, _ := s.Touch(k, 100); st != cache.Touched {
		t.Fatalf("touch: %d", st)
	}
	clock.Advance(50)
	m, v, ok, _ := s.GetAndTouch(k, []byte("prefix:"), 10)
	if !ok || string(v) != "prefix:v" || m.CAS != before.CAS {
		t.Fatalf("gat: %v %q cas %d (was %d)", ok, v, m.CAS, before.CAS)
	}
	clock.Advance(11)
	if _, _, ok, _ := s.Get(k, nil); ok {
		t.Fatal("item outlived its gat exptime")
	}
	if st, _ := s.Touch(k, 10); st != cache.NotFound {
		t.Fatalf("touch expired: %d", st)
	}
	s.Store(cache.ModeSet, k, 0, -1, []byte("v"), 0)
	if _, _, ok, _ := s.Get(k, nil); ok {
		t.Fatal("negative exptime stored a live item")
	}
	s.Store(cache.ModeSet, k, 0, 0, []byte("v"), 0)
	m, _, _, _ = s.Get(k, nil)
	if st, _ := s.Delete(k, m.CAS+1); st != cache.Exists {
		t.Fatalf("delete bad cas: %d", st)
	}
	if st, _ := s.Delete(k, m.CAS); st != cache.Deleted {
		t.Fatalf("delete cas: %d", st)
	}
	if st, _ := s.Delete(k, 0); st != cache.NotFound {
		t.Fatalf("delete absent: %d", st)
	}
}

func TestFlushAll(t *testing.T) {
	c, clock := newCache(t, cache.Options{})
	s := c.NewSession()
	defer s.Close()
	s.Store(cache.ModeSet, []byte("a"), 0, 0, []byte("1"), 0)
	if err := c.FlushAll(10); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := s.Get([]byte("a"), nil); !ok {
		t.Fatal("delayed flush removed the item early")
	}
	clock.Advance(10)
	if _, _, ok, _ := s.Get([]byte("a"), nil); ok {
		t.Fatal("delayed flush did not remove the item")
	}
	s.Store(cache.ModeSet, []byte("b"), 0, 0, []byte("1"), 0)
	c.FlushAll(0)
	s.Store(cache.ModeSet, []byte("c"), 0, 0, []byte("1"), 0)
	if _, _, ok, _ := s.Get([]byte("b"), nil); ok {
		t.Fatal("flush_all kept an item")
	}
	if _, _, ok, _ := s.Get([]byte("c"), nil); !ok {
		t.Fatal("flush_all removed an item stored after it")
	}
	nf, _ := newCache(t, cache.Options{DisableFlush: true})
	if err := nf.FlushAll(0); !errors.Is(err, cache.ErrFlushDisabled) {
		t.Fatalf("flush with -F: %v", err)
	}
}

func TestDisableCAS(t *testing.T) {
	c, _ := newCache(t, cache.Options{DisableCAS: true})
	s := c.NewSession()
	defer s.Close()
	s.Store(cache.ModeSet, []byte("a"), 0, 0, []byte("1"), 0)
	m, _, _, _ := s.Get([]byte("a"), nil)
	if m.CAS != 0 {
		t.Fatalf("gets with -C reports cas %d", m.CAS)
	}
	if st, _, _ := s.Store(cache.ModeCAS, []byte("a"), 0, 0, []byte("2"), 1); st != cache.Exists {
		t.Fatalf("cas with -C: %d", st)
	}
}

// TestCountersAcrossSessions checks that counters of ended sessions are
// kept and that concurrent sessions are summed.
func TestCountersAcrossSessions(t *testing.T) {
	c, _ := newCache(t, cache.Options{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := c.NewSession()
			defer s.Close()
			for i := 0; i < 100; i++ {
				k := []byte("k" + strconv.Itoa(i))
				s.Store(cache.ModeSet, k, 0, 0, k, 0)
				s.Get(k, nil)
				s.Get([]byte("missing"), nil)
			}
		}()
	}
	wg.Wait()
	live := c.NewSession()
	live.Get([]byte("k1"), nil)
	got := map[string]uint64{}
	c.Stats(func(n string, v uint64) { got[n] = v })
	if got["cmd_set"] != 800 || got["cmd_get"] != 1601 || got["get_hits"] != 801 || got["get_misses"] != 800 {
		t.Errorf("counters: %v", got)
	}
	live.Close()
	c.ResetStats()
	c.Stats(func(n string, v uint64) {
		if v != 0 {
			t.Errorf("after reset %s = %d", n, v)
		}
	})
}

// TestStoreAllocs proves that a set and a get allocate nothing in steady
// state.
func TestStoreAllocs(t *testing.T) {
	c, _ := newCache(t, cache.Options{})
	s := c.NewSession()
	defer s.Close()
	k, v, x := []byte("key"), []byte("value-value-value"), []byte("x")
	dst := make([]byte, 0, 64)
	s.Store(cache.ModeSet, k, 0, 0, v, 0)
	if n := testing.AllocsPerRun(1000, func() {
		s.Store(cache.ModeSet, k, 0, 0, v, 0)
	}); n != 0 {
		t.Errorf("set allocates %.1f times", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		_, dst, _, _ = s.Get(k, dst[:0])
	}); n != 0 {
		t.Errorf("get allocates %.1f times", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		s.Store(cache.ModeAppend, k, 0, 0, x, 0)
		s.Store(cache.ModeSet, k, 0, 0, v, 0)
	}); n != 0 {
		t.Errorf("append allocates %.1f times", n)
	}
}
