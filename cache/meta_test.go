package cache_test

import (
	"sync"
	"testing"

	"github.com/mnemo-cache/mnemo/cache"
	"github.com/mnemo-cache/mnemo/engine"
)

func mget(t *testing.T, s *cache.Session, key string, o cache.MetaGetOpts) (cache.MetaGetResult, string) {
	t.Helper()
	r, v, err := s.MetaGet([]byte(key), nil, o)
	if err != nil {
		t.Fatal(err)
	}
	return r, string(v)
}

func mset(t *testing.T, s *cache.Session, key, value string, o cache.MetaSetOpts) (cache.Status, engine.Meta) {
	t.Helper()
	st, m, size, err := s.MetaSet([]byte(key), []byte(value), o)
	if err != nil {
		t.Fatal(err)
	}
	if st == cache.Stored && o.Mode != cache.ModeAppend && o.Mode != cache.ModePrepend && size != len(value) {
		t.Errorf("size %d, want %d", size, len(value))
	}
	return st, m
}

func TestMetaStaleWhileRevalidate(t *testing.T) {
	c, clock := newCache(t, cache.Options{})
	s := c.NewSession()
	defer s.Close()
	_, m1 := mset(t, s, "k", "old", cache.MetaSetOpts{Exptime: 100})
	v := cache.MetaGetOpts{Value: true}

	r, val := mget(t, s, "k", v)
	if !r.Found || val != "old" || r.Stale || r.Won || r.WinSent || r.Meta.CAS != m1.CAS {
		t.Fatalf("fresh hit: %+v %q", r, val)
	}
	if st, err := s.MetaDelete([]byte("k"), cache.MetaDeleteOpts{Invalidate: true, TTL: true, Exptime: 30}); err != nil || st != cache.Deleted {
		t.Fatalf("md I: %v %v", st, err)
	}
	// The first reader after invalidation wins, the next ones see Z.
	r, val = mget(t, s, "k", v)
	if !r.Stale || !r.Won || r.WinSent || val != "old" || r.Meta.CAS == m1.CAS || r.Meta.Exptime != t0+30 {
		t.Fatalf("first stale read: %+v", r)
	}
	staleCAS := r.Meta.CAS
	for i := 0; i < 2; i++ {
		r, _ = mget(t, s, "k", v)
		if !r.Stale || r.Won || !r.WinSent {
			t.Fatalf("later stale read: %+v", r)
		}
	}
	// The same through the locked path (T, R).
	r, _ = mget(t, s, "k", cache.MetaGetOpts{Recache: true, RecacheTTL: 1000, Seq: [3]byte{'R'}})
	if !r.Stale || r.Won || !r.WinSent {
		t.Fatalf("stale read with R: %+v", r)
	}
	// A late write with an older CAS and I stores, staying stale.
	st, _ := mset(t, s, "k", "late", cache.MetaSetOpts{HasCAS: true, CAS: staleCAS - 1, Invalidate: true, Exptime: 5})
	if st != cache.Stored {
		t.Fatalf("late write: %v", st)
	}
	r, val = mget(t, s, "k", v)
	if val != "late" || !r.Stale || !r.WinSent || r.Meta.Exptime != t0+30 {
		t.Fatalf("after late write: %+v %q", r, val)
	}
	// Without I an older CAS is refused.
	if st, _ := mset(t, s, "k", "x", cache.MetaSetOpts{HasCAS: true, CAS: 1}); st != cache.Exists {
		t.Fatalf("old CAS without I: %v", st)
	}
	// A new value ends the stale state.
	mset(t, s, "k", "new", cache.MetaSetOpts{Exptime: 30})
	r, val = mget(t, s, "k", v)
	if val != "new" || r.Stale || r.Won || r.WinSent {
		t.Fatalf("after set: %+v %q", r, val)
	}
	// Invalidation makes the win available again.
	s.MetaDelete([]byte("k"), cache.MetaDeleteOpts{Invalidate: true})
	if r, _ = mget(t, s, "k", cache.MetaGetOpts{}); !r.Won {
		t.Fatalf("win after second invalidation: %+v", r)
	}
	s.MetaDelete([]byte("k"), cache.MetaDeleteOpts{Invalidate: true})
	if r, _ = mget(t, s, "k", cache.MetaGetOpts{}); !r.Won || r.WinSent {
		t.Fatalf("win after third invalidation: %+v", r)
	}
	clock.Advance(31)
	if r, _ = mget(t, s, "k", v); r.Found {
		t.Fatalf("stale item outlived its TTL: %+v", r)
	}
}

func TestMetaGetFlags(t *testing.T) {
	c, clock := newCache(t, cache.Options{})
	s := c.NewSession()
	defer s.Close()
	mset(t, s, "k", "v", cache.MetaSetOpts{Exptime: 100, Flags: 7})
	clock.Advance(5)

	// u does not bump: h stays 0 and l keeps growing.
	for i := 0; i < 2; i++ {
		r, _ := mget(t, s, "k", cache.MetaGetOpts{NoBump: true})
		if r.Meta.Bits&engine.BitFetched != 0 || r.Now-r.Meta.Atime != 5 || r.Meta.Flags != 7 {
			t.Fatalf("u read %d: %+v", i, r)
		}
	}
	r, _ := mget(t, s, "k", cache.MetaGetOpts{})
	if r.Meta.Bits&engine.BitFetched != 0 || r.Now-r.Meta.Atime != 5 {
		t.Fatalf("first read: %+v", r)
	}
	r, _ = mget(t, s, "k", cache.MetaGetOpts{})
	if r.Meta.Bits&engine.BitFetched == 0 || r.Now != r.Meta.Atime {
		t.Fatalf("second read: %+v", r)
	}

	// T changes the TTL; R after T sees the new TTL.
	r, _ = mget(t, s, "k", cache.MetaGetOpts{TTL: true, TTLValue: 10, Recache: true, RecacheTTL: 20, Seq: [3]byte{'T', 'R'}})
	if !r.Won || r.TTLExptime != r.Now+10 {
		t.Fatalf("T then R: %+v", r)
	}
	mset(t, s, "k2", "v", cache.MetaSetOpts{Exptime: 100})
	r, _ = mget(t, s, "k2", cache.MetaGetOpts{TTL: true, TTLValue: 10, Recache: true, RecacheTTL: 20, Seq: [3]byte{'R', 'T'}})
	if r.Won {
		t.Fatalf("R then T won: %+v", r)
	}
	if r, _ = mget(t, s, "k2", cache.MetaGetOpts{}); r.Meta.Exptime != r.Now+10 {
		t.Fatalf("T not stored: %+v", r)
	}
	// R never wins on an item without TTL.
	mset(t, s, "k3", "v", cache.MetaSetOpts{})
	if r, _ = mget(t, s, "k3", cache.MetaGetOpts{Recache: true, RecacheTTL: 20, Seq: [3]byte{'R'}}); r.Won {
		t.Fatalf("R on immortal item: %+v", r)
	}
	var counts = map[string]uint64{}
	c.Stats(func(n string, v uint64) { counts[n] = v })
	if counts["cmd_touch"] != 2 || counts["touch_hits"] != 2 || counts["get_hits"] != 6 || counts["cmd_get"] != 6 {
		t.Errorf("counters %v", counts)
	}
}

func TestMetaVivify(t *testing.T) {
	c, _ := newCache(t, cache.Options{})
	s := c.NewSession()
	defer s.Close()
	o := cache.MetaGetOpts{Value: true, Vivify: true, VivifyTTL: 30, Seq: [3]byte{'N'}}
	r, val := mget(t, s, "k", o)
	if !r.Found || !r.Created || !r.Won || val != "" || r.VivifyExptime != t0+30 {
		t.Fatalf("vivify: %+v", r)
	}
	r, _ = mget(t, s, "k", o)
	if !r.Found || r.Created || r.Won || !r.WinSent || r.Meta.Exptime != t0+30 || r.Meta.Bits&engine.BitFetched == 0 {
		t.Fatalf("second: %+v", r)
	}
	// E sets the CAS of a vivified item.
	o.NewCAS = 12345
	if r, _ = mget(t, s, "k2", o); r.Meta.CAS != 12345 {
		t.Fatalf("vivify with E: %+v", r)
	}
	// A miss without N creates nothing.
	if r, _ = mget(t, s, "k3", cache.MetaGetOpts{TTL: true, TTLValue: 5, Seq: [3]byte{'T'}}); r.Found {
		t.Fatal("T created an item")
	}
	if r, _ = mget(t, s, "k3", cache.MetaGetOpts{}); r.Found {
		t.Fatal("item appeared")
	}
}

func TestMetaSetModes(t *testing.T) {
	c, _ := newCache(t, cache.Options{})
	s := c.NewSession()
	defer s.Close()
	check := func(name string, st, want cache.Status, value string) {
		t.Helper()
		if st != want {
			t.Errorf("%s: status %v, want %v", name, st, want)
		}
		_, v, ok, _ := s.Get([]byte("k"), nil)
		if value == "" && ok || value != "" && string(v) != value {
			t.Errorf("%s: value %q (found %v), want %q", name, v, ok, value)
		}
	}
	st, _ := mset(t, s, "k", "a", cache.MetaSetOpts{Mode: cache.ModeAppend})
	check("append absent", st, cache.NotStored, "")
	st, _ = mset(t, s, "k", "a", cache.MetaSetOpts{Mode: cache.ModeReplace})
	check("replace absent", st, cache.NotStored, "")
	st, _ = mset(t, s, "k", "a", cache.MetaSetOpts{Mode: cache.ModeAppend, HasCAS: true, CAS: 5})
	check("append absent with CAS", st, cache.NotStored, "")
	st, _ = mset(t, s, "k", "a", cache.MetaSetOpts{HasCAS: true, CAS: 5})
	check("cas absent", st, cache.NotFound, "")
	st, m := mset(t, s, "k", "a", cache.MetaSetOpts{Mode: cache.ModeAdd, Flags: 3})
	check("add", st, cache.Stored, "a")
	st, _ = mset(t, s, "k", "b", cache.MetaSetOpts{Mode: cache.ModeAdd})
	check("add present", st, cache.NotStored, "a")
	st, _ = mset(t, s, "k", "b", cache.MetaSetOpts{Mode: cache.ModeAppend, HasCAS: true, CAS: m.CAS + 1})
	check("append bad CAS", st, cache.Exists, "a")
	st, m = mset(t, s, "k", "b", cache.MetaSetOpts{Mode: cache.ModeAppend, HasCAS: true, CAS: m.CAS})
	check("append", st, cache.Stored, "ab")
	if m.Flags != 3 {
		t.Errorf("append lost flags: %+v", m)
	}
	st, m = mset(t, s, "k", "z", cache.MetaSetOpts{Mode: cache.ModePrepend})
	check("prepend", st, cache.Stored, "zab")
	st, _ = mset(t, s, "k", "c", cache.MetaSetOpts{HasCAS: true, CAS: 0})
	check("C0", st, cache.Exists, "zab")
	st, m = mset(t, s, "k", "c", cache.MetaSetOpts{Mode: cache.ModeReplace, HasCAS: true, CAS: m.CAS, NewCAS: 999})
	check("replace with CAS and E", st, cache.Stored, "c")
	if m.CAS != 999 {
		t.Errorf("E ignored: %+v", m)
	}
	// N: append to a missing key vivifies it.
	st, _ = mset(t, s, "v", "x", cache.MetaSetOpts{Mode: cache.ModeAppend, Vivify: true, VivifyTTL: 30})
	if st != cache.Stored {
		t.Errorf("append vivify: %v", st)
	}
	if r, val := mget(t, s, "v", cache.MetaGetOpts{Value: true}); val != "x" || r.Meta.Exptime != t0+30 {
		t.Errorf("append vivified: %+v %q", r, val)
	}
	_, _, size, _ := s.MetaSet([]byte("v"), []byte("yz"), cache.MetaSetOpts{Mode: cache.ModeAppend})
	if size != 3 {
		t.Errorf("size after append %d", size)
	}
}

func TestMetaDelete(t *testing.T) {
	c, _ := newCache(t, cache.Options{})
	s := c.NewSession()
	defer s.Close()
	k := []byte("k")
	del := func(o cache.MetaDeleteOpts) cache.Status {
		st, err := s.MetaDelete(k, o)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := del(cache.MetaDeleteOpts{}); st != cache.NotFound {
		t.Fatalf("absent: %v", st)
	}
	_, m := mset(t, s, "k", "v", cache.MetaSetOpts{Flags: 4})
	if st := del(cache.MetaDeleteOpts{HasCAS: true, CAS: m.CAS + 1}); st != cache.Exists {
		t.Fatalf("bad CAS: %v", st)
	}
	// x empties the value, keeping the CAS unless E.
	if st := del(cache.MetaDeleteOpts{HasCAS: true, CAS: m.CAS, RemoveValue: true, Flags: 9}); st != cache.Deleted {
		t.Fatalf("x: %v", st)
	}
	r, val := mget(t, s, "k", cache.MetaGetOpts{Value: true})
	if !r.Found || val != "" || r.Meta.CAS != m.CAS || r.Meta.Flags != 9 {
		t.Fatalf("after x: %+v %q", r, val)
	}
	if st := del(cache.MetaDeleteOpts{Invalidate: true, NewCAS: 77}); st != cache.Deleted {
		t.Fatalf("I: %v", st)
	}
	if r, _ = mget(t, s, "k", cache.MetaGetOpts{}); r.Meta.CAS != 77 || !r.Stale {
		t.Fatalf("after I with E: %+v", r)
	}
	if st := del(cache.MetaDeleteOpts{}); st != cache.Deleted {
		t.Fatalf("delete: %v", st)
	}
	if r, _ = mget(t, s, "k", cache.MetaGetOpts{}); r.Found {
		t.Fatal("not deleted")
	}
	var counts = map[string]uint64{}
	c.Stats(func(n string, v uint64) { counts[n] = v })
	if counts["delete_hits"] != 2 || counts["delete_misses"] != 2 {
		t.Errorf("counters %v", counts)
	}
}

func TestMetaArith(t *testing.T) {
	c, _ := newCache(t, cache.Options{})
	s := c.NewSession()
	defer s.Close()
	k := []byte("n")
	ma := func(o cache.MetaArithOpts) cache.MetaArithResult {
		t.Helper()
		r, err := s.MetaArith(k, o)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := ma(cache.MetaArithOpts{Incr: true, Delta: 1}); r.Status != cache.NotFound {
		t.Fatalf("miss: %+v", r)
	}
	r := ma(cache.MetaArithOpts{Incr: true, Delta: 1, Vivify: true, VivifyTTL: 30, Initial: 5,
		TTL: true, TTLValue: 60, Seq: [3]byte{'T', 'N'}})
	if r.Status != cache.Stored || !r.Created || r.Value != 5 || r.Meta.Exptime != t0+30 {
		t.Fatalf("vivify: %+v", r)
	}
	r = ma(cache.MetaArithOpts{Incr: false, Delta: 10, CAS: r.Meta.CAS})
	if r.Status != cache.Stored || r.Value != 0 || r.Created || r.Exptime != t0+30 {
		t.Fatalf("decr: %+v", r)
	}
	if r2 := ma(cache.MetaArithOpts{Incr: true, Delta: 1, CAS: r.Meta.CAS + 1}); r2.Status != cache.Exists {
		t.Fatalf("bad CAS: %+v", r2)
	}
	r = ma(cache.MetaArithOpts{Incr: true, Delta: 7, NewCAS: 4242, TTL: true, TTLValue: 0, Seq: [3]byte{'T'}})
	if r.Value != 7 || r.Meta.CAS != 4242 || r.Meta.Exptime != 0 {
		t.Fatalf("incr with E and T: %+v", r)
	}
	mset(t, s, "n", "", cache.MetaSetOpts{})
	if r = ma(cache.MetaArithOpts{Incr: true, Delta: 1, CAS: 1}); r.Status != cache.NonNumeric {
		t.Fatalf("empty value: %+v", r)
	}
	var counts = map[string]uint64{}
	c.Stats(func(n string, v uint64) { counts[n] = v })
	if counts["incr_hits"] != 1 || counts["decr_hits"] != 1 || counts["incr_misses"] != 1 {
		t.Errorf("counters %v", counts)
	}
}

func TestMetaSharesItemsWithClassic(t *testing.T) {
	c, _ := newCache(t, cache.Options{})
	s := c.NewSession()
	defer s.Close()
	_, m := mset(t, s, "k", "meta", cache.MetaSetOpts{Flags: 42})
	gm, v, ok, _ := s.Get([]byte("k"), nil)
	if !ok || string(v) != "meta" || gm.Flags != 42 || gm.CAS != m.CAS {
		t.Fatalf("classic get of meta set: %+v %q", gm, v)
	}
	st, sm, _ := s.Store(cache.ModeCAS, []byte("k"), 1, 0, []byte("classic"), m.CAS)
	if st != cache.Stored {
		t.Fatal(st)
	}
	r, val := mget(t, s, "k", cache.MetaGetOpts{Value: true})
	if val != "classic" || r.Meta.CAS != sm.CAS || r.Meta.Flags != 1 {
		t.Fatalf("meta get of classic cas: %+v %q", r, val)
	}
	m2, _, _, _ := s.MetaDebug([]byte("k"), nil)
	if m2.CAS != sm.CAS {
		t.Fatalf("me: %+v", m2)
	}
}

func TestMetaDisableCAS(t *testing.T) {
	c, _ := newCache(t, cache.Options{DisableCAS: true})
	s := c.NewSession()
	defer s.Close()
	_, m := mset(t, s, "k", "v", cache.MetaSetOpts{})
	if m.CAS != 0 {
		t.Fatalf("CAS shown: %+v", m)
	}
	if st, _ := mset(t, s, "k", "w", cache.MetaSetOpts{HasCAS: true, CAS: 5}); st != cache.Exists {
		t.Fatalf("C5 with -C: %v", st)
	}
	if st, _ := s.MetaDelete([]byte("k"), cache.MetaDeleteOpts{HasCAS: true, CAS: 0}); st != cache.Deleted {
		t.Fatalf("md C0 with -C: %v", st)
	}
}

func TestMetaAllocs(t *testing.T) {
	c, _ := newCache(t, cache.Options{})
	s := c.NewSession()
	defer s.Close()
	k, v, a, n := []byte("k"), []byte("value"), []byte("a"), []byte("n")
	dst := make([]byte, 0, 64)
	s.MetaSet(k, v, cache.MetaSetOpts{})
	s.MetaSet(n, []byte("1"), cache.MetaSetOpts{})
	for name, f := range map[string]func(){
		"mg": func() { s.MetaGet(k, dst, cache.MetaGetOpts{Value: true}) },
		"mg T": func() {
			s.MetaGet(k, dst, cache.MetaGetOpts{Value: true, TTL: true, TTLValue: 100, Seq: [3]byte{'T'}})
		},
		"ms": func() { s.MetaSet(k, v, cache.MetaSetOpts{Flags: 1}) },
		"ms MA": func() {
			s.MetaSet(a, v, cache.MetaSetOpts{})
			s.MetaSet(a, v, cache.MetaSetOpts{Mode: cache.ModeAppend})
		},
		"md I": func() { s.MetaDelete(k, cache.MetaDeleteOpts{Invalidate: true}) },
		"ma":   func() { s.MetaArith(n, cache.MetaArithOpts{Incr: true, Delta: 1}) },
		"me":   func() { s.MetaDebug(k, dst) },
	} {
		if n := testing.AllocsPerRun(200, f); n != 0 {
			t.Errorf("%s: %v allocs", name, n)
		}
	}
}

// TestMetaOneWinner checks that of many clients reading a stale item at
// once, exactly one is handed the win.
func TestMetaOneWinner(t *testing.T) {
	c, _ := newCache(t, cache.Options{})
	setup := c.NewSession()
	defer setup.Close()
	for round := 0; round < 20; round++ {
		mset(t, setup, "k", "v", cache.MetaSetOpts{})
		setup.MetaDelete([]byte("k"), cache.MetaDeleteOpts{Invalidate: true})
		const clients = 8
		wins := make(chan bool, clients)
		var wg sync.WaitGroup
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func(locked bool) {
				defer wg.Done()
				s := c.NewSession()
				defer s.Close()
				o := cache.MetaGetOpts{Value: true}
				if locked {
					o.TTL, o.TTLValue, o.Seq = true, 100, [3]byte{'T'}
				}
				r, _, err := s.MetaGet([]byte("k"), nil, o)
				if err != nil || !r.Stale || r.Won == r.WinSent {
					t.Errorf("read: %+v %v", r, err)
				}
				wins <- r.Won
			}(i%2 == 0)
		}
		wg.Wait()
		close(wins)
		n := 0
		for w := range wins {
			if w {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("round %d: %d winners", round, n)
		}
	}
}
