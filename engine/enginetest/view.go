package enginetest

import (
	"bytes"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// testView covers View: it finds what Get finds, calls fn exactly once
// with Get's metadata and the whole value, and touches as Get does.
func testView(t *testing.T, s *suite) {
	type call struct {
		meta  engine.Meta
		value []byte
		isNil bool
	}
	view := func(t *testing.T, f *fixture, key string, flags engine.GetFlags) (engine.Meta, bool, []call) {
		t.Helper()
		var calls []call
		m, found, err := f.e.View([]byte(key), flags, func(m engine.Meta, v []byte) {
			calls = append(calls, call{m, bytes.Clone(v), v == nil})
		})
		if err != nil {
			t.Fatalf("View(%s, flags %d): %v", q(key), flags, err)
		}
		return m, found, calls
	}

	t.Run("Miss", func(t *testing.T) {
		f := s.engine(t)
		f.set("other", "v")
		for _, flags := range []engine.GetFlags{0, engine.GetTouch, engine.GetNoValue} {
			if _, found, calls := view(t, f, "absent", flags); found || len(calls) != 0 {
				t.Errorf("View(absent, flags %d) = found %v with %d calls of fn, want not found and none", flags, found, len(calls))
			}
		}
		f.store("dying", []byte("v"), 0, f.now()+2)
		f.clock.Advance(3)
		if _, found, calls := view(t, f, "dying", 0); found || len(calls) != 0 {
			t.Errorf("View(expired) = found %v with %d calls of fn, want not found and none", found, len(calls))
		}
		if _, _, err := f.e.View(nil, 0, func(engine.Meta, []byte) { t.Error("fn called for an empty key") }); err == nil {
			t.Error("View(empty key) returned no error")
		}
	})

	t.Run("Hit", func(t *testing.T) {
		f := s.engine(t)
		for _, tc := range []struct {
			name, key, value string
			flags            uint32
		}{
			{"plain", "k", "hello", 0},
			{"flags", "f", "v", 0xdeadbeef},
			{"binary", "bin", "\x00\r\n\xff", 2},
			{"empty", "e", "", 1},
			{"large", "big", string(bytes.Repeat([]byte("0123456789abcdef"), 16<<10)), 3},
		} {
			t.Run(tc.name, func(t *testing.T) {
				stored := f.store(tc.key, []byte(tc.value), tc.flags, 0)
				m, found, calls := view(t, f, tc.key, 0)
				if !found || len(calls) != 1 {
					t.Fatalf("View(%s) = found %v with %d calls of fn, want found and one call", q(tc.key), found, len(calls))
				}
				if m != stored || calls[0].meta != stored {
					t.Errorf("View(%s) meta %+v, fn's meta %+v, want the stored %+v", q(tc.key), m, calls[0].meta, stored)
				}
				if string(calls[0].value) != tc.value {
					t.Errorf("View(%s) gave fn a value of %d bytes, want %d (%s)", q(tc.key), len(calls[0].value), len(tc.value), qb(calls[0].value[:min(len(calls[0].value), 32)]))
				}
				m, found, calls = view(t, f, tc.key, engine.GetNoValue)
				if !found || len(calls) != 1 || !calls[0].isNil || calls[0].meta != stored || m != stored {
					t.Errorf("View(%s, GetNoValue) = found %v, calls %+v; want one call with the stored meta and a nil value", q(tc.key), found, calls)
				}
			})
		}
	})

	t.Run("Touch", func(t *testing.T) {
		f := s.engine(t)
		t0 := f.now()
		stored := f.store("k", []byte("v"), 9, 0)
		f.clock.Advance(5)
		if m, _, calls := view(t, f, "k", 0); m != stored || len(calls) != 1 {
			t.Fatalf("View = meta %+v (%d calls), want %+v", m, len(calls), stored)
		}
		if it := f.mustGet("k"); it.Meta != stored {
			t.Fatalf("a View without GetTouch changed the item: %+v, want %+v", it.Meta, stored)
		}
		m, _, calls := view(t, f, "k", engine.GetTouch)
		if m != stored || len(calls) != 1 || calls[0].meta != stored {
			t.Errorf("View(GetTouch) = meta %+v, calls %+v; want the pre-access %+v", m, calls, stored)
		}
		want := stored
		want.Atime = t0 + 5
		want.Bits |= engine.BitFetched
		if it := f.mustGet("k"); it.Meta != want {
			t.Errorf("Get after View(GetTouch): meta %+v, want %+v", it.Meta, want)
		}
	})

	t.Run("AfterOverwrite", func(t *testing.T) {
		f := s.engine(t)
		f.set("k", "first value")
		f.set("k", "2nd")
		if _, _, calls := view(t, f, "k", 0); len(calls) != 1 || string(calls[0].value) != "2nd" {
			t.Errorf("View after an overwrite: calls %+v, want one with %q", calls, "2nd")
		}
		if _, err := f.e.Delete([]byte("k")); err != nil {
			t.Fatal(err)
		}
		if _, found, calls := view(t, f, "k", 0); found || len(calls) != 0 {
			t.Errorf("View after Delete = found %v, %d calls", found, len(calls))
		}
	})
}
