package enginetest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"maps"
	"strconv"
	"strings"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// pattern returns n bytes of a pattern that depends on seed and covers
// every byte value.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) + seed + byte(i>>8)
	}
	return b
}

// iterKeys returns the keys Iterate visits, with their values.
func (f *fixture) iterKeys() map[string]string {
	f.t.Helper()
	m := map[string]string{}
	if err := f.e.Iterate(func(k []byte, it *engine.Item) bool {
		if _, dup := m[string(k)]; dup {
			f.t.Errorf("Iterate visited %s twice", qb(k))
		}
		m[string(k)] = string(it.Value)
		return true
	}); err != nil {
		f.t.Fatalf("Iterate: %v", err)
	}
	return m
}

// testKeys covers key lengths, invalid keys and binary keys.
func testKeys(t *testing.T, s *suite) {
	t.Run("Lengths", func(t *testing.T) {
		f := s.engine(t)
		want := map[string]string{}
		for _, n := range []int{1, 2, 8, 16, 100, 249, engine.KeyMax} {
			key := string(bytes.Repeat([]byte{byte('a' + n%26)}, n))
			val := strings.Repeat("v", n%7)
			f.set(key, val)
			want[key] = val
		}
		for key, val := range want {
			f.mustHave(key, val)
			if _, found := f.observe(key); !found {
				t.Errorf("Mutator did not see %s", q(key))
			}
		}
		if got := f.iterKeys(); !maps.Equal(got, want) {
			t.Errorf("Iterate saw %d keys, want %d", len(got), len(want))
		}
		for key := range want {
			if ok, err := f.e.Delete([]byte(key)); !ok || err != nil {
				t.Errorf("Delete(%s) = %v, %v", q(key), ok, err)
			}
			f.mustMiss(key)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		f := s.engine(t)
		for _, tc := range []struct {
			name string
			key  []byte
		}{
			{"nil", nil},
			{"empty", []byte{}},
			{"KeyMax+1", bytes.Repeat([]byte("k"), engine.KeyMax+1)},
			{"1000", bytes.Repeat([]byte("k"), 1000)},
			{"64KiB", bytes.Repeat([]byte("k"), 64<<10)},
		} {
			if _, _, _, err := f.e.Get(tc.key, nil, 0); !errors.Is(err, engine.ErrBadKey) {
				t.Errorf("%s: Get err = %v, want ErrBadKey", tc.name, err)
			}
			if _, _, _, err := f.e.Get(tc.key, nil, engine.GetTouch|engine.GetNoValue); !errors.Is(err, engine.ErrBadKey) {
				t.Errorf("%s: Get(GetTouch|GetNoValue) err = %v, want ErrBadKey", tc.name, err)
			}
			if _, _, err := f.e.Update(tc.key, storeM{next: engine.Item{Value: []byte("v")}}); !errors.Is(err, engine.ErrBadKey) {
				t.Errorf("%s: Update err = %v, want ErrBadKey", tc.name, err)
			}
			if ok, err := f.e.Delete(tc.key); !errors.Is(err, engine.ErrBadKey) || ok {
				t.Errorf("%s: Delete = %v, %v, want false, ErrBadKey", tc.name, ok, err)
			}
		}
		if got := f.iterKeys(); len(got) != 0 {
			t.Errorf("invalid keys were stored: Iterate saw %d keys", len(got))
		}
		f.set("k", "v")
		f.mustHave("k", "v")
	})

	t.Run("Binary", func(t *testing.T) {
		f := s.engine(t)
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		keys := []string{
			"\x00", "\x00\x00", "a", "a\x00", "\x00a", "a\x00b", "ab",
			"\xff", "\xff\xfe\xfd", "\x80", " ", "a b", "\r\n", "\n", "key\r\n",
			"\t", "get a", "\xc3\x28", // invalid UTF-8
			string(all[:128]), string(all[128:]), string(all[6:]),
		}
		want := map[string]string{}
		for i, k := range keys {
			v := hex.EncodeToString([]byte(k))
			f.store(k, []byte(v), uint32(i), 0)
			want[k] = v
		}
		for i, k := range keys {
			if it := f.mustHave(k, want[k]); it.Flags != uint32(i) {
				t.Errorf("%s: flags %d, want %d", q(k), it.Flags, i)
			}
		}
		if got := f.iterKeys(); !maps.Equal(got, want) {
			t.Errorf("Iterate saw %q, want %q", got, want)
		}
		for i, k := range keys {
			if i%2 == 0 {
				if ok, err := f.e.Delete([]byte(k)); !ok || err != nil {
					t.Fatalf("Delete(%s) = %v, %v", q(k), ok, err)
				}
				delete(want, k)
			}
		}
		for i, k := range keys {
			if i%2 == 0 {
				f.mustMiss(k)
			} else {
				f.mustHave(k, want[k])
			}
		}
	})

	t.Run("Similar", func(t *testing.T) {
		// Long keys that differ in one byte only.
		f := s.engine(t)
		base := bytes.Repeat([]byte("x"), engine.KeyMax)
		want := map[string]string{string(base): "base"}
		f.set(string(base), "base")
		for _, pos := range []int{0, 1, 7, 8, 63, 64, 125, 248, 249} {
			k := bytes.Clone(base)
			k[pos] = 'y'
			v := hex.EncodeToString([]byte{byte(pos)})
			f.set(string(k), v)
			want[string(k)] = v
		}
		for k, v := range want {
			f.mustHave(k, v)
		}
		f.mustMiss(string(base[:engine.KeyMax-1]))
		if got := f.iterKeys(); !maps.Equal(got, want) {
			t.Errorf("Iterate saw %d keys, want %d", len(got), len(want))
		}
	})
}

// testValues covers empty, binary, varied and too-large values.
func testValues(t *testing.T, s *suite) {
	t.Run("Empty", func(t *testing.T) {
		f := s.engine(t)
		f.store("k", nil, 3, 0)
		f.store("k2", []byte{}, 0, 0)
		for _, key := range []string{"k", "k2"} {
			_, out, found, err := f.e.Get([]byte(key), []byte("x"), 0)
			if err != nil || !found || string(out) != "x" {
				t.Errorf("Get(%s) of an empty value = %q, %v, %v; want \"x\", true, nil", key, out, found, err)
			}
		}
		if it := f.mustHave("k", ""); it.Flags != 3 {
			t.Errorf("flags %d, want 3", it.Flags)
		}
	})

	t.Run("Binary", func(t *testing.T) {
		f := s.engine(t)
		for i, v := range []string{
			string(pattern(256, 0)), string(pattern(1000, 7)), "\r\n", "END\r\n", "\x00", "\x00\x00\x00",
			"VALUE k 0 1\r\nx\r\n", strings.Repeat("\xff", 300),
		} {
			key := "k" + hex.EncodeToString([]byte{byte(i)})
			f.set(key, v)
			f.mustHave(key, v)
		}
	})

	t.Run("Sizes", func(t *testing.T) {
		// One key overwritten with growing, then shrinking values, and a
		// key per size.
		f := s.engine(t)
		sizes := []int{0, 1, 2, 7, 8, 9, 63, 64, 65, 100, 1000, 4095, 4096, 4097, 16 << 10, 65536, 200 << 10}
		for i, n := range sizes {
			v := pattern(n, byte(i))
			f.store("grow", v, uint32(n), 0)
			f.store("size"+hex.EncodeToString([]byte{byte(i)}), v, uint32(n), 0)
			if it := f.mustHave("grow", string(v)); it.Flags != uint32(n) {
				t.Fatalf("size %d: flags %d", n, it.Flags)
			}
		}
		for i := len(sizes) - 1; i >= 0; i-- {
			v := pattern(sizes[i], byte(i)+100)
			f.store("grow", v, 0, 0)
			f.mustHave("grow", string(v))
		}
		for i, n := range sizes {
			f.mustHave("size"+hex.EncodeToString([]byte{byte(i)}), string(pattern(n, byte(i))))
		}
	})

	for _, max := range []int{engine.DefaultItemSizeMax, 128 << 10} {
		t.Run("Large/ItemSizeMax="+strconv.Itoa(max), func(t *testing.T) {
			f := s.engineWith(t, engine.Env{ItemSizeMax: max})
			big := pattern(max-300, 1)
			f.store("big", big, 1, 0)
			f.mustHave("big", string(big))

			old := f.store("old", []byte("old value"), 2, 0)
			for _, n := range []int{max + 1, max + 300, 2 * max} {
				huge := pattern(n, 2)
				for _, key := range []string{"old", "absent", "big"} {
					op, _, err := f.e.Update([]byte(key), storeM{next: engine.Item{Value: huge}})
					if !errors.Is(err, engine.ErrTooLarge) {
						t.Errorf("storing %d bytes (ItemSizeMax %d) under %s: op %d, err %v; want ErrTooLarge", n, max, key, op, err)
					}
				}
				if it := f.mustHave("old", "old value"); it.Meta != old {
					t.Errorf("ErrTooLarge changed the old item's meta: %+v, want %+v", it.Meta, old)
				}
				f.mustMiss("absent")
				f.mustHave("big", string(big))
			}
			// The engine still works after the failures.
			big2 := pattern(max-300, 3)
			f.store("big", big2, 0, 0)
			f.mustHave("big", string(big2))
		})
	}
}
