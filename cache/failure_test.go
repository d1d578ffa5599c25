package cache_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/mnemo-cache/mnemo/cache"
	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/engine/enginetest"
	"github.com/mnemo-cache/mnemo/engine/memory"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want cache.Failure
	}{
		{nil, cache.FailNone},
		{engine.ErrTooLarge, cache.FailTooLarge},
		{fmt.Errorf("wrapped: %w", engine.ErrTooLarge), cache.FailTooLarge},
		{engine.ErrNoMemory, cache.FailNoMemory},
		{engine.ErrBadKey, cache.FailBadKey},
		{engine.ErrClosed, cache.FailServer},
		{errors.New("disk on fire"), cache.FailServer},
	} {
		if got := cache.Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// faultEngine fails every Update with err while err is set.
type faultEngine struct {
	engine.Engine
	err error
}

func (e *faultEngine) Update(key []byte, m engine.Mutator) (engine.Op, engine.Meta, error) {
	if e.err != nil {
		return engine.OpNone, engine.Meta{}, e.err
	}
	return e.Engine.Update(key, m)
}

func newFaultCache(t *testing.T) (*cache.Session, *faultEngine) {
	t.Helper()
	clock := enginetest.NewFakeClock(t0)
	mem, err := memory.New(engine.Env{Clock: clock}.WithDefaults(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	fe := &faultEngine{Engine: mem}
	s := cache.New(fe, clock, cache.Options{}).NewSession()
	t.Cleanup(s.Close)
	return s, fe
}

// TestFailedStoreDropsStale checks memcached's rule, once for every
// protocol: a store whose item cannot be allocated drops the key's old
// item for set (text and binary, whatever the CAS) and for every ms mode,
// and leaves it for the other commands; an append whose combined item
// does not fit is NOT_STORED.
func TestFailedStoreDropsStale(t *testing.T) {
	type op func(s *cache.Session, key []byte) (cache.Status, error)
	store := func(mode cache.StoreMode, cas bool) op {
		return func(s *cache.Session, key []byte) (cache.Status, error) {
			var c uint64
			if cas {
				m, _, _, _ := s.Get(key, nil)
				c = m.CAS
			}
			st, _, err := s.Store(mode, key, 0, 0, []byte("new"), c)
			return st, err
		}
	}
	metaSet := func(mode cache.StoreMode) op {
		return func(s *cache.Session, key []byte) (cache.Status, error) {
			st, _, _, err := s.MetaSet(key, []byte("new"), cache.MetaSetOpts{Mode: mode})
			return st, err
		}
	}
	for _, fault := range []error{engine.ErrTooLarge, engine.ErrNoMemory, errors.New("disk on fire")} {
		for _, tc := range []struct {
			name     string
			op       op
			wantSt   cache.Status
			wantErr  bool
			keepsOld bool
		}{
			{"set", store(cache.ModeSet, false), cache.StatusNone, true, false},
			{"binary set with cas", store(cache.ModeSet, true), cache.StatusNone, true, false},
			{"add", store(cache.ModeAdd, false), cache.StatusNone, true, true},
			{"replace", store(cache.ModeReplace, false), cache.StatusNone, true, true},
			{"cas", store(cache.ModeCAS, true), cache.StatusNone, true, true},
			{"append", store(cache.ModeAppend, false), cache.NotStored, false, true},
			{"prepend", store(cache.ModePrepend, false), cache.NotStored, false, true},
			{"ms set", metaSet(cache.ModeSet), cache.StatusNone, true, false},
			{"ms add", metaSet(cache.ModeAdd), cache.StatusNone, true, false},
			{"ms replace", metaSet(cache.ModeReplace), cache.StatusNone, true, false},
			{"ms append", metaSet(cache.ModeAppend), cache.NotStored, false, true},
		} {
			t.Run(fmt.Sprintf("%v/%s", fault, tc.name), func(t *testing.T) {
				s, fe := newFaultCache(t)
				key := []byte("k")
				if st, _, err := s.Store(cache.ModeSet, key, 0, 0, []byte("old"), 0); err != nil || st != cache.Stored {
					t.Fatalf("seeding: %v %v", st, err)
				}
				outOfRoom := fault == engine.ErrTooLarge || fault == engine.ErrNoMemory
				fe.err = fault
				st, err := tc.op(s, key)
				fe.err = nil
				wantErr, wantSt, keepsOld := tc.wantErr, tc.wantSt, tc.keepsOld
				if !outOfRoom {
					// Only a failed allocation has memcached's special
					// meanings: any other error is an error and changes
					// nothing.
					wantErr, wantSt, keepsOld = true, cache.StatusNone, true
				}
				if (err != nil) != wantErr || st != wantSt {
					t.Fatalf("got %v, %v; want status %v, error %v", st, err, wantSt, wantErr)
				}
				if wantErr && !errors.Is(err, fault) {
					t.Fatalf("error %v does not wrap %v", err, fault)
				}
				_, v, ok, err := s.Get(key, nil)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case keepsOld && (!ok || string(v) != "old"):
					t.Fatalf("old item: got %q, %v; want it kept", v, ok)
				case !keepsOld && ok:
					t.Fatalf("old item %q still served after a failed store", v)
				}
				var tooLarge, noMemory uint64
				s.Cache().Stats(func(name string, v uint64) {
					switch name {
					case "store_too_large":
						tooLarge = v
					case "store_no_memory":
						noMemory = v
					}
				})
				wantTL, wantNM := uint64(0), uint64(0)
				if wantErr && fault == engine.ErrTooLarge {
					wantTL = 1
				}
				if wantErr && fault == engine.ErrNoMemory {
					wantNM = 1
				}
				if tooLarge != wantTL || noMemory != wantNM {
					t.Fatalf("store_too_large %d, store_no_memory %d; want %d, %d", tooLarge, noMemory, wantTL, wantNM)
				}
			})
		}
	}
}

// TestRefuseTooLarge checks the same rule for a value the decoder refused
// before it reached the engine.
func TestRefuseTooLarge(t *testing.T) {
	for _, tc := range []struct {
		name     string
		refuse   func(s *cache.Session, key []byte)
		keepsOld bool
	}{
		{"set", func(s *cache.Session, k []byte) { s.RefuseTooLarge(k, cache.ModeSet) }, false},
		{"add", func(s *cache.Session, k []byte) { s.RefuseTooLarge(k, cache.ModeAdd) }, true},
		{"cas", func(s *cache.Session, k []byte) { s.RefuseTooLarge(k, cache.ModeCAS) }, true},
		{"append", func(s *cache.Session, k []byte) { s.RefuseTooLarge(k, cache.ModeAppend) }, true},
		{"ms", func(s *cache.Session, k []byte) { s.RefuseMetaTooLarge(k) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newFaultCache(t)
			key := []byte("k")
			if _, _, err := s.Store(cache.ModeSet, key, 0, 0, []byte("old"), 0); err != nil {
				t.Fatal(err)
			}
			tc.refuse(s, key)
			_, _, ok, err := s.Get(key, nil)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.keepsOld {
				t.Fatalf("old item served: %v, want %v", ok, tc.keepsOld)
			}
			if got := s.StoreTooLarge.Load(); got != 1 {
				t.Fatalf("store_too_large = %d, want 1", got)
			}
		})
	}
}

// TestStoreWithCASIsCas checks that a set, add or replace carrying a CAS
// (binary protocol) acts and counts as a cas command.
func TestStoreWithCASIsCas(t *testing.T) {
	for _, mode := range []cache.StoreMode{cache.ModeSet, cache.ModeAdd, cache.ModeReplace} {
		s, _ := newFaultCache(t)
		key := []byte("k")
		_, m, err := s.Store(cache.ModeSet, key, 0, 0, []byte("old"), 0)
		if err != nil {
			t.Fatal(err)
		}
		if st, _, _ := s.Store(mode, key, 0, 0, []byte("x"), m.CAS+1); st != cache.Exists {
			t.Errorf("mode %d with a wrong CAS: %v, want EXISTS", mode, st)
		}
		if st, _, _ := s.Store(mode, key, 0, 0, []byte("new"), m.CAS); st != cache.Stored {
			t.Errorf("mode %d with the right CAS: %v, want STORED", mode, st)
		}
		if st, _, _ := s.Store(mode, []byte("missing"), 0, 0, []byte("x"), 5); st != cache.NotFound {
			t.Errorf("mode %d with a CAS on a missing key: %v, want NOT_FOUND", mode, st)
		}
		if s.CasHits.Load() != 1 || s.CasBadval.Load() != 1 || s.CasMisses.Load() != 1 {
			t.Errorf("mode %d: cas_hits %d cas_badval %d cas_misses %d, want 1 1 1",
				mode, s.CasHits.Load(), s.CasBadval.Load(), s.CasMisses.Load())
		}
	}
}
