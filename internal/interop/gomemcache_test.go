package interop

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/mnemo-cache/mnemo/internal/testserver"
)

// TestGomemcache drives mnemo with github.com/bradfitz/gomemcache, the
// usual Go client, and memcached to show that the expectations are
// memcached's.
func TestGomemcache(t *testing.T) {
	t.Run("mnemo", func(t *testing.T) {
		t.Parallel()
		runGomemcache(t, startMnemo(t))
	})
	t.Run("memcached", func(t *testing.T) {
		t.Parallel()
		runGomemcache(t, startMemcached(t))
	})
}

func runGomemcache(t *testing.T, addr string) {
	mc := memcache.New(addr)
	mc.Timeout = patience // a hang, not a slow machine
	t.Cleanup(func() { mc.Close() })

	t.Run("SetGet", func(t *testing.T) {
		mustNil(t, "Set", mc.Set(&memcache.Item{Key: "sg", Value: []byte("hello\r\nworld\x00"), Flags: 42}))
		it := get(t, mc, "sg")
		if string(it.Value) != "hello\r\nworld\x00" || it.Flags != 42 {
			t.Errorf("Get = %q flags %d", it.Value, it.Flags)
		}
		_, err := mc.Get("sg-missing")
		wantErr(t, "Get missing", err, memcache.ErrCacheMiss)
		mustNil(t, "Set empty", mc.Set(&memcache.Item{Key: "empty", Value: []byte{}}))
		if it := get(t, mc, "empty"); len(it.Value) != 0 {
			t.Errorf("Get empty = %q", it.Value)
		}
	})

	t.Run("GetMulti", func(t *testing.T) {
		keys := make([]string, 100)
		for i := range keys {
			keys[i] = fmt.Sprintf("multi:%03d", i)
			if i%10 == 9 {
				continue // every tenth key is a miss
			}
			mustNil(t, "Set", mc.Set(&memcache.Item{Key: keys[i], Value: []byte("v" + keys[i]), Flags: uint32(i)}))
		}
		got, err := mc.GetMulti(keys)
		mustNil(t, "GetMulti", err)
		if len(got) != 90 {
			t.Errorf("GetMulti returned %d items, want 90", len(got))
		}
		for i, k := range keys {
			it, ok := got[k]
			if i%10 == 9 {
				if ok {
					t.Errorf("GetMulti returned missing key %s", k)
				}
				continue
			}
			if !ok || string(it.Value) != "v"+k || it.Flags != uint32(i) {
				t.Errorf("GetMulti[%s] = %+v", k, it)
			}
		}
	})

	t.Run("CompareAndSwap", func(t *testing.T) {
		mustNil(t, "Set", mc.Set(&memcache.Item{Key: "cas", Value: []byte("1")}))
		it := get(t, mc, "cas")
		stale := get(t, mc, "cas")
		it.Value = []byte("2")
		mustNil(t, "CompareAndSwap", mc.CompareAndSwap(it))
		if got := get(t, mc, "cas"); string(got.Value) != "2" {
			t.Errorf("after CompareAndSwap: %q", got.Value)
		}
		stale.Value = []byte("3")
		wantErr(t, "stale CompareAndSwap", mc.CompareAndSwap(stale), memcache.ErrCASConflict)
		if got := get(t, mc, "cas"); string(got.Value) != "2" {
			t.Errorf("after conflicting CompareAndSwap: %q", got.Value)
		}
		mustNil(t, "Delete", mc.Delete("cas"))
		wantErr(t, "CompareAndSwap on deleted", mc.CompareAndSwap(it), memcache.ErrCacheMiss)
	})

	t.Run("IncrementDecrement", func(t *testing.T) {
		mustNil(t, "Set", mc.Set(&memcache.Item{Key: "n", Value: []byte("10")}))
		v, err := mc.Increment("n", 5)
		mustNil(t, "Increment", err)
		if v != 15 {
			t.Errorf("Increment = %d, want 15", v)
		}
		v, err = mc.Decrement("n", 20)
		mustNil(t, "Decrement", err)
		if v != 0 {
			t.Errorf("Decrement below 0 = %d, want 0", v)
		}
		mustNil(t, "Set", mc.Set(&memcache.Item{Key: "n", Value: []byte("18446744073709551615")}))
		v, err = mc.Increment("n", 2)
		mustNil(t, "Increment wrap", err)
		if v != 1 {
			t.Errorf("Increment past 2^64-1 = %d, want 1", v)
		}
		_, err = mc.Increment("n-missing", 1)
		wantErr(t, "Increment missing", err, memcache.ErrCacheMiss)
		mustNil(t, "Set", mc.Set(&memcache.Item{Key: "s", Value: []byte("abc")}))
		if _, err := mc.Increment("s", 1); err == nil {
			t.Error("Increment of a non-numeric value succeeded")
		}
	})

	t.Run("AddReplace", func(t *testing.T) {
		mustNil(t, "Add", mc.Add(&memcache.Item{Key: "ar", Value: []byte("a")}))
		wantErr(t, "Add existing", mc.Add(&memcache.Item{Key: "ar", Value: []byte("b")}), memcache.ErrNotStored)
		mustNil(t, "Replace", mc.Replace(&memcache.Item{Key: "ar", Value: []byte("c")}))
		wantErr(t, "Replace missing", mc.Replace(&memcache.Item{Key: "ar-missing", Value: []byte("d")}), memcache.ErrNotStored)
		if got := get(t, mc, "ar"); string(got.Value) != "c" {
			t.Errorf("after Replace: %q", got.Value)
		}
		mustNil(t, "Append", mc.Append(&memcache.Item{Key: "ar", Value: []byte(">")}))
		mustNil(t, "Prepend", mc.Prepend(&memcache.Item{Key: "ar", Value: []byte("<")}))
		if got := get(t, mc, "ar"); string(got.Value) != "<c>" {
			t.Errorf("after Append/Prepend: %q", got.Value)
		}
		wantErr(t, "Append missing", mc.Append(&memcache.Item{Key: "ar-missing", Value: []byte("x")}), memcache.ErrNotStored)
	})

	t.Run("Delete", func(t *testing.T) {
		mustNil(t, "Set", mc.Set(&memcache.Item{Key: "d", Value: []byte("x")}))
		mustNil(t, "Delete", mc.Delete("d"))
		wantErr(t, "Delete again", mc.Delete("d"), memcache.ErrCacheMiss)
		_, err := mc.Get("d")
		wantErr(t, "Get deleted", err, memcache.ErrCacheMiss)
	})

	t.Run("Touch", func(t *testing.T) {
		mustNil(t, "Set", mc.Set(&memcache.Item{Key: "t", Value: []byte("x"), Expiration: 100}))
		mustNil(t, "Touch", mc.Touch("t", 1000))
		wantErr(t, "Touch missing", mc.Touch("t-missing", 10), memcache.ErrCacheMiss)
		it, err := mc.GetAndTouch("t", 500)
		mustNil(t, "GetAndTouch", err)
		if string(it.Value) != "x" {
			t.Errorf("GetAndTouch = %q", it.Value)
		}
		// A negative time expires the item at once.
		mustNil(t, "Touch -1", mc.Touch("t", -1))
		_, err = mc.Get("t")
		wantErr(t, "Get after Touch -1", err, memcache.ErrCacheMiss)
	})

	t.Run("Errors", func(t *testing.T) {
		if err := mc.Set(&memcache.Item{Key: "bad key", Value: []byte("x")}); !errors.Is(err, memcache.ErrMalformedKey) {
			t.Errorf("Set with a space in the key: %v", err)
		}
		// gomemcache refuses values over 1 MB only on the server's word.
		big := make([]byte, 1<<20+1)
		if err := mc.Set(&memcache.Item{Key: "big", Value: big}); err == nil {
			t.Error("Set of a value over -I succeeded")
		}
		mustNil(t, "Set after an error", mc.Set(&memcache.Item{Key: "after", Value: []byte("ok")}))
		if got := get(t, mc, "after"); string(got.Value) != "ok" {
			t.Errorf("Get after an error: %q", got.Value)
		}
	})

	// Expiry and FlushAll last: they touch every key.
	t.Run("Expiry", func(t *testing.T) {
		// The servers' clocks tick in whole seconds: an exptime of 2
		// lives at least one second (one of 1 may end at once).
		start := time.Now()
		mustNil(t, "Set", mc.Set(&memcache.Item{Key: "exp", Value: []byte("x"), Expiration: 2}))
		_, err := mc.Get("exp")
		if time.Since(start) < time.Second {
			mustNil(t, "Get before expiry", err)
		}
		mustNil(t, "Set", mc.Set(&memcache.Item{Key: "keep", Value: []byte("y"), Expiration: 100}))
		testserver.Eventually(t, "exp to expire", func() bool {
			_, err := mc.Get("exp")
			if err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
				t.Fatalf("Get exp: %v", err)
			}
			return err != nil
		})
		get(t, mc, "keep")
	})

	t.Run("FlushAll", func(t *testing.T) {
		mustNil(t, "Set", mc.Set(&memcache.Item{Key: "f", Value: []byte("x")}))
		mustNil(t, "FlushAll", mc.FlushAll())
		_, err := mc.Get("f")
		wantErr(t, "Get after FlushAll", err, memcache.ErrCacheMiss)
		got, err := mc.GetMulti([]string{"sg", "multi:000", "ar"})
		mustNil(t, "GetMulti after FlushAll", err)
		if len(got) != 0 {
			t.Errorf("GetMulti after FlushAll returned %d items", len(got))
		}
		mustNil(t, "Set after FlushAll", mc.Set(&memcache.Item{Key: "f", Value: []byte("y")}))
		get(t, mc, "f")
		mustNil(t, "Ping", mc.Ping())
	})
}

func mustNil(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

func get(t *testing.T, mc *memcache.Client, key string) *memcache.Item {
	t.Helper()
	it, err := mc.Get(key)
	mustNil(t, "Get "+key, err)
	return it
}
