package enginetest

import (
	"bytes"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// testGet covers Get: misses, hits, appending to dst, GetNoValue and
// GetTouch.
func testGet(t *testing.T, s *suite) {
	allFlags := []engine.GetFlags{0, engine.GetTouch, engine.GetNoValue, engine.GetTouch | engine.GetNoValue}

	t.Run("Miss", func(t *testing.T) {
		f := s.engine(t)
		check := func() {
			t.Helper()
			for _, flags := range allFlags {
				_, _, found, err := f.e.Get([]byte("absent"), []byte("dst"), flags)
				if err != nil || found {
					t.Fatalf("Get(absent, flags %d) = found %v, err %v; want not found, nil", flags, found, err)
				}
			}
		}
		check()
		f.set("other", "v")
		f.set("absent2", "v")
		f.set("absen", "v")
		check()
	})

	t.Run("Hit", func(t *testing.T) {
		f := s.engine(t)
		now := f.now()
		for _, tc := range []struct {
			name    string
			key     string
			value   string
			flags   uint32
			exptime int64
		}{
			{"plain", "k", "hello", 0, 0},
			{"flags", "flagged", "v", 0xdeadbeef, 0},
			{"max flags", "maxflags", "v", 0xffffffff, 0},
			{"exptime", "expiring", "v", 1, now + 3600},
			{"binary", "bin", "\x00\r\n\xff", 2, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				stored := f.store(tc.key, []byte(tc.value), tc.flags, tc.exptime)
				for _, flags := range []engine.GetFlags{0, engine.GetNoValue} {
					meta, _, found, err := f.e.Get([]byte(tc.key), nil, flags)
					if err != nil || !found {
						t.Fatalf("Get(%s, flags %d) = found %v, err %v", q(tc.key), flags, found, err)
					}
					if meta != stored {
						t.Errorf("Get(%s, flags %d) meta = %+v, want the stored %+v", q(tc.key), flags, meta, stored)
					}
				}
				it := f.mustHave(tc.key, tc.value)
				if it.Flags != tc.flags || it.Exptime != tc.exptime {
					t.Errorf("Get(%s): flags %d exptime %d, want %d %d", q(tc.key), it.Flags, it.Exptime, tc.flags, tc.exptime)
				}
			})
		}
	})

	t.Run("AppendsToDst", func(t *testing.T) {
		f := s.engine(t)
		const value = "hello, world"
		f.set("k", value)
		junk := bytes.Repeat([]byte{'#'}, 64)
		for _, tc := range []struct {
			name string
			dst  []byte
		}{
			{"nil", nil},
			{"empty", []byte{}},
			{"empty with capacity", make([]byte, 0, 100)},
			{"prefix", []byte("prefix:")},
			{"prefix with spare capacity", append(append(make([]byte, 0, 128), "VALUE k 0 12\r\n"...), junk...)[:14]},
		} {
			for _, flags := range []engine.GetFlags{0, engine.GetTouch} {
				orig := bytes.Clone(tc.dst)
				_, out, found, err := f.e.Get([]byte("k"), tc.dst, flags)
				if err != nil || !found {
					t.Fatalf("%s: Get = found %v, err %v", tc.name, found, err)
				}
				want := string(orig) + value
				if string(out) != want {
					t.Errorf("%s (flags %d): Get returned %q, want %q (value appended to dst)", tc.name, flags, out, want)
				}
			}
		}
	})

	t.Run("ValueIsACopy", func(t *testing.T) {
		f := s.engine(t)
		f.set("k", "original")
		_, out, found, err := f.e.Get([]byte("k"), nil, 0)
		if err != nil || !found {
			t.Fatalf("Get = found %v, err %v", found, err)
		}
		for i := range out {
			out[i] = 'X'
		}
		f.mustHave("k", "original")
	})

	t.Run("NoValue", func(t *testing.T) {
		f := s.engine(t)
		stored := f.store("k", []byte("some value"), 5, 0)
		for _, dst := range [][]byte{nil, []byte("abc"), append(make([]byte, 0, 64), "abc"...)} {
			for _, flags := range []engine.GetFlags{engine.GetNoValue, engine.GetNoValue | engine.GetTouch} {
				meta, out, found, err := f.e.Get([]byte("k"), dst, flags)
				if err != nil || !found {
					t.Fatalf("Get(GetNoValue) = found %v, err %v", found, err)
				}
				if !bytes.Equal(out, dst) || len(out) != len(dst) {
					t.Errorf("Get(flags %d, dst %q) returned %q, want dst unchanged", flags, dst, out)
				}
				if meta.CAS != stored.CAS || meta.Flags != 5 {
					t.Errorf("Get(GetNoValue) meta = %+v, want %+v", meta, stored)
				}
			}
		}
	})

	t.Run("Touch", func(t *testing.T) {
		f := s.engine(t)
		t0 := f.now()
		stored := f.store("k", []byte("v"), 9, t0+1000)
		if stored.Atime != t0 || stored.Bits&engine.BitFetched != 0 {
			t.Fatalf("fresh item: meta %+v, want Atime %d and no BitFetched", stored, t0)
		}
		f.clock.Advance(7)
		// Plain Gets do not touch.
		for range 2 {
			if it := f.mustGet("k"); it.Meta != stored {
				t.Fatalf("plain Get changed the item: meta %+v, want %+v", it.Meta, stored)
			}
		}
		// GetTouch returns the metadata from before the access...
		it, ok := f.getFlags("k", engine.GetTouch)
		if !ok {
			t.Fatal("Get(GetTouch): not found")
		}
		if it.Meta != stored {
			t.Errorf("Get(GetTouch) meta = %+v, want the pre-access %+v", it.Meta, stored)
		}
		if string(it.Value) != "v" {
			t.Errorf("Get(GetTouch) value = %q", it.Value)
		}
		// ...and the access shows on the next Get.
		want := stored
		want.Atime = t0 + 7
		want.Bits |= engine.BitFetched
		if it := f.mustGet("k"); it.Meta != want {
			t.Errorf("Get after GetTouch: meta %+v, want %+v (Atime now, BitFetched, CAS unchanged)", it.Meta, want)
		}
		if cur, _ := f.observe("k"); cur.Meta != want {
			t.Errorf("Mutator after GetTouch saw %+v, want %+v", cur.Meta, want)
		}
		f.clock.Advance(2)
		if it, _ := f.getFlags("k", engine.GetTouch|engine.GetNoValue); it.Meta != want {
			t.Errorf("second Get(GetTouch) meta = %+v, want %+v", it.Meta, want)
		}
		want.Atime = t0 + 9
		if it := f.mustGet("k"); it.Meta != want {
			t.Errorf("Get after second GetTouch: meta %+v, want %+v", it.Meta, want)
		}
	})
}

// testUpdate covers Update with each Op and the Mutator contract.
func testUpdate(t *testing.T, s *suite) {
	t.Run("OpNone", func(t *testing.T) {
		f := s.engine(t)
		op, _, err := f.e.Update([]byte("absent"), &recordM{op: engine.OpNone})
		if err != nil || op != engine.OpNone {
			t.Fatalf("Update(absent, OpNone) = %d, %v", op, err)
		}
		f.mustMiss("absent")

		f.store("k", []byte("v"), 3, f.now()+100)
		f.getFlags("k", engine.GetTouch)
		f.clock.Advance(5)
		before := f.mustGet("k")
		op, _, err = f.e.Update([]byte("k"), &recordM{op: engine.OpNone})
		if err != nil || op != engine.OpNone {
			t.Fatalf("Update(k, OpNone) = %d, %v", op, err)
		}
		after := f.mustGet("k")
		if after.Meta != before.Meta || !bytes.Equal(after.Value, before.Value) {
			t.Errorf("OpNone changed the item: %+v %q -> %+v %q", before.Meta, before.Value, after.Meta, after.Value)
		}
	})

	t.Run("OpStore", func(t *testing.T) {
		f := s.engine(t)
		now := f.now()
		for _, tc := range []struct {
			name    string
			value   string
			flags   uint32
			exptime int64
		}{
			{"plain", "value", 0, 0},
			{"flags", "value", 0xffffffff, 0},
			{"exptime", "value", 12, now + 60},
			{"empty value", "", 1, 0},
			{"binary value", "\x00\x01\r\n\xfe\xff", 0, now + 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for i, key := range []string{"new-" + tc.name, "old"} { // a new key, then an overwrite
					if i == 1 {
						f.store(key, []byte("previous value, longer than the new ones"), 77, now+5)
						f.getFlags(key, engine.GetTouch)
					}
					meta := f.store(key, []byte(tc.value), tc.flags, tc.exptime)
					want := engine.Meta{Flags: tc.flags, Exptime: tc.exptime, CAS: meta.CAS, Atime: now}
					if meta != want || meta.CAS == 0 {
						t.Errorf("%s: OpStore returned %+v, want %+v with a non-zero CAS", q(key), meta, want)
					}
					it := f.mustHave(key, tc.value)
					if it.Meta != meta {
						t.Errorf("%s: Get meta %+v, want the meta Update returned %+v", q(key), it.Meta, meta)
					}
				}
			})
		}
	})

	t.Run("FreshCAS", func(t *testing.T) {
		f := s.engine(t)
		seen := map[uint64]string{}
		note := func(what string, cas uint64) {
			t.Helper()
			if cas == 0 {
				t.Fatalf("%s: CAS 0", what)
			}
			if prev, dup := seen[cas]; dup {
				t.Fatalf("%s: CAS %d already given to %s", what, cas, prev)
			}
			seen[cas] = what
		}
		var last uint64
		for i := range 10 {
			meta := f.set("same", "v")
			if meta.CAS <= last {
				t.Errorf("store %d of the same key: CAS %d, not above the previous %d", i, meta.CAS, last)
			}
			last = meta.CAS
			note("same", meta.CAS)
			key := string(rune('a' + i))
			note(key, f.set(key, "v").CAS)
			f.clock.Advance(int64(i % 2))
		}
	})

	t.Run("GivenCAS", func(t *testing.T) {
		f := s.engine(t)
		const cas = 1<<40 + 12345
		for _, key := range []string{"new", "old"} {
			if key == "old" {
				f.set(key, "before")
			}
			m := storeM{next: engine.Item{Meta: engine.Meta{Flags: 4, CAS: cas}, Value: []byte("v")}}
			op, meta, err := f.e.Update([]byte(key), m)
			if err != nil || op != engine.OpStore {
				t.Fatalf("Update(%s) = %d, %v", key, op, err)
			}
			if meta.CAS != cas {
				t.Errorf("%s: OpStore with next.CAS %d stored CAS %d", key, cas, meta.CAS)
			}
			if it := f.mustHave(key, "v"); it.CAS != cas {
				t.Errorf("%s: Get CAS %d, want %d", key, it.CAS, cas)
			}
		}
		if meta := f.set("other", "v"); meta.CAS == 0 || meta.CAS == cas {
			t.Errorf("a store without a CAS after one with CAS %d got CAS %d", uint64(cas), meta.CAS)
		}
	})

	t.Run("StoreResetsFetched", func(t *testing.T) {
		f := s.engine(t)
		f.set("k", "v1")
		f.getFlags("k", engine.GetTouch)
		if it := f.mustGet("k"); it.Bits&engine.BitFetched == 0 {
			t.Fatalf("GetTouch did not set BitFetched: %+v", it.Meta)
		}
		meta := f.set("k", "v2")
		if meta.Bits != 0 {
			t.Errorf("OpStore with no bits over a fetched item returned bits %#x, want 0", meta.Bits)
		}
		if it := f.mustHave("k", "v2"); it.Bits != 0 {
			t.Errorf("Get after re-store: bits %#x, want 0", it.Bits)
		}
	})

	t.Run("OpMeta", func(t *testing.T) {
		f := s.engine(t)
		now := f.now()
		for _, tc := range []struct {
			name string
			m    metaM
		}{
			{"touch keeps CAS", metaM{flags: 7, exptime: now + 500, keepCAS: true}},
			{"touch fresh CAS", metaM{flags: 7, exptime: now + 500}},
			{"new flags", metaM{flags: 0xffffffff, exptime: now + 50, keepCAS: true}},
			{"stale bits", metaM{flags: 7, exptime: now + 50, bits: engine.BitStale | engine.BitWinSent, keepCAS: true}},
			{"stale bits fresh CAS", metaM{flags: 7, exptime: now + 50, bits: engine.BitStale}},
			{"never expire", metaM{flags: 7, exptime: 0}},
			{"clear bits", metaM{flags: 7, exptime: now + 50, bits: 0, keepCAS: true}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				key := "k-" + tc.name
				old := f.store(key, []byte("payload"), 7, now+50)
				f.getFlags(key, engine.GetTouch)
				op, meta, err := f.e.Update([]byte(key), tc.m)
				if err != nil || op != engine.OpMeta {
					t.Fatalf("Update(OpMeta) = %d, %v", op, err)
				}
				if meta.Flags != tc.m.flags || meta.Exptime != tc.m.exptime || meta.Bits != tc.m.bits {
					t.Errorf("OpMeta returned %+v, want flags %d exptime %d bits %#x", meta, tc.m.flags, tc.m.exptime, tc.m.bits)
				}
				switch {
				case tc.m.keepCAS && meta.CAS != old.CAS:
					t.Errorf("OpMeta with next.CAS = cur.CAS changed CAS %d -> %d", old.CAS, meta.CAS)
				case !tc.m.keepCAS && (meta.CAS == 0 || meta.CAS <= old.CAS):
					t.Errorf("OpMeta with next.CAS = 0: CAS %d -> %d, want a fresh (greater) CAS", old.CAS, meta.CAS)
				}
				it := f.mustHave(key, "payload")
				if it.Meta != meta {
					t.Errorf("Get meta %+v, want the meta Update returned %+v", it.Meta, meta)
				}
			})
		}
		t.Run("given CAS", func(t *testing.T) {
			f.set("g", "payload")
			const cas = 1<<50 + 1
			r := &recordM{op: engine.OpMeta, next: engine.Item{Meta: engine.Meta{Flags: 1, CAS: cas}, Value: []byte("ignored")}}
			op, meta, err := f.e.Update([]byte("g"), r)
			if err != nil || op != engine.OpMeta {
				t.Fatalf("Update(OpMeta) = %d, %v", op, err)
			}
			if meta.CAS != cas || meta.Flags != 1 {
				t.Errorf("OpMeta with next.CAS %d returned %+v", uint64(cas), meta)
			}
			if it := f.mustHave("g", "payload"); it.Meta != meta {
				t.Errorf("Get meta %+v, want %+v (next.Value must be ignored)", it.Meta, meta)
			}
		})
	})

	t.Run("OpDelete", func(t *testing.T) {
		f := s.engine(t)
		f.set("k", "v")
		op, _, err := f.e.Update([]byte("k"), &recordM{op: engine.OpDelete})
		if err != nil || op != engine.OpDelete {
			t.Fatalf("Update(OpDelete) = %d, %v", op, err)
		}
		f.mustMiss("k")
		if _, found := f.observe("k"); found {
			t.Error("Mutator saw a deleted key as found")
		}
		if ok, err := f.e.Delete([]byte("k")); ok || err != nil {
			t.Errorf("Delete after OpDelete = %v, %v; want false, nil", ok, err)
		}
		if _, _, err := f.e.Update([]byte("absent"), &recordM{op: engine.OpDelete}); err != nil {
			t.Errorf("Update(absent, OpDelete): %v", err)
		}
		f.mustMiss("absent")
	})

	t.Run("MutatorSeesCurrent", func(t *testing.T) {
		f := s.engine(t)
		now := f.now()
		absent := func(name, key string) {
			t.Helper()
			if cur, found := f.observe(key); found {
				t.Errorf("%s: Mutator saw found=true, cur %+v %q", name, cur.Meta, cur.Value)
			}
		}
		present := func(name, key string) {
			t.Helper()
			want := f.mustGet(key)
			cur, found := f.observe(key)
			if !found {
				t.Fatalf("%s: Mutator saw found=false", name)
			}
			if cur.Meta != want.Meta || !bytes.Equal(cur.Value, want.Value) {
				t.Errorf("%s: Mutator saw %+v %q, want %+v %q", name, cur.Meta, cur.Value, want.Meta, want.Value)
			}
		}
		absent("never stored", "k")
		f.store("k", []byte("first"), 1, now+10)
		present("stored", "k")
		f.clock.Advance(3)
		f.getFlags("k", engine.GetTouch)
		present("touched", "k")
		f.store("k", []byte("second, longer"), 2, now+10)
		present("overwritten", "k")
		f.clock.Set(now + 10)
		absent("expired", "k")
		f.set("k", "third")
		present("stored again", "k")
		if err := f.e.Flush(f.now()); err != nil {
			t.Fatal(err)
		}
		absent("flushed", "k")
		f.set("k", "fourth")
		if _, err := f.e.Delete([]byte("k")); err != nil {
			t.Fatal(err)
		}
		absent("deleted", "k")
		f.set("empty", "")
		present("empty value", "empty")
	})

	t.Run("DecidesOnCurrent", func(t *testing.T) {
		// An add-like Mutator: store only when absent.
		f := s.engine(t)
		add := func(v string) engine.Op {
			t.Helper()
			op, _, err := f.e.Update([]byte("k"), addM{value: []byte(v)})
			if err != nil {
				t.Fatal(err)
			}
			return op
		}
		if op := add("one"); op != engine.OpStore {
			t.Errorf("add to absent key returned op %d", op)
		}
		if op := add("two"); op != engine.OpNone {
			t.Errorf("add to present key returned op %d", op)
		}
		f.mustHave("k", "one")
	})

	t.Run("CopiesKeyAndValue", func(t *testing.T) {
		f := s.engine(t)
		key := []byte("key")
		val := []byte("value")
		if _, _, err := f.e.Update(key, storeM{next: engine.Item{Value: val}}); err != nil {
			t.Fatal(err)
		}
		copy(key, "XXX")
		copy(val, "YYYYY")
		f.mustHave("key", "value")
		f.mustMiss("XXX")
		var keys []string
		if err := f.e.Iterate(func(k []byte, it *engine.Item) bool {
			keys = append(keys, string(k))
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0] != "key" {
			t.Errorf("Iterate saw keys %q, want [key]", keys)
		}
	})
}

// addM stores value only when the key is absent.
type addM struct{ value []byte }

func (m addM) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	if found {
		return engine.OpNone
	}
	next.Value = m.value
	return engine.OpStore
}

// testDelete covers Delete's result for live, absent, expired and flushed
// keys.
func testDelete(t *testing.T, s *suite) {
	for _, tc := range []struct {
		name  string
		setup func(f *fixture)
		want  bool
	}{
		{"absent", func(f *fixture) { f.set("other", "v") }, false},
		{"live", func(f *fixture) { f.set("k", "v") }, true},
		{"live empty", func(f *fixture) { f.set("k", "") }, true},
		{"expiring later", func(f *fixture) { f.store("k", []byte("v"), 0, f.now()+1) }, true},
		{"expired", func(f *fixture) { f.store("k", []byte("v"), 0, f.now()+1); f.clock.Advance(1) }, false},
		{"flushed", func(f *fixture) {
			f.set("k", "v")
			if err := f.e.Flush(f.now()); err != nil {
				f.t.Fatal(err)
			}
		}, false},
		{"deleted", func(f *fixture) {
			f.set("k", "v")
			if ok, err := f.e.Delete([]byte("k")); !ok || err != nil {
				f.t.Fatalf("first Delete = %v, %v", ok, err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := s.engine(t)
			tc.setup(f)
			f.set("neighbour", "n")
			ok, err := f.e.Delete([]byte("k"))
			if err != nil || ok != tc.want {
				t.Fatalf("Delete = %v, %v; want %v, nil", ok, err, tc.want)
			}
			f.mustMiss("k")
			if ok, err := f.e.Delete([]byte("k")); ok || err != nil {
				t.Errorf("second Delete = %v, %v; want false, nil", ok, err)
			}
			f.mustHave("neighbour", "n")
		})
	}
}
