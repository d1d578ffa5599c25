package memory

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// overwriteChurn stores n keys of vlen-byte values, then overwrites rounds×n
// random keys (a fixed seed), and checks every key holds its last value.
func overwriteChurn(t *testing.T, e *Engine, n, vlen, rounds int) {
	t.Helper()
	last := make([]int, n)
	val := make([]byte, vlen)
	put := func(i, gen int) {
		k := "k" + strconv.Itoa(i)
		copy(val, strconv.Itoa(gen)+"/"+k+"/")
		if _, _, err := e.Update([]byte(k), &setM{value: val}); err != nil {
			t.Fatalf("store %s: %v", k, err)
		}
		last[i] = gen
	}
	for i := range n {
		put(i, 0)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for g := 1; g <= rounds*n; g++ {
		put(rng.IntN(n), g)
	}
	for i := range n {
		k := "k" + strconv.Itoa(i)
		v, ok := get(t, e, k)
		want := strconv.Itoa(last[i]) + "/" + k + "/"
		if !ok || len(v) != vlen || v[:len(want)] != want {
			t.Fatalf("%s: got %q... (found %v), want %q...", k, v[:min(len(v), 20)], ok, want)
		}
	}
}

// TestChurnResidentTracksLive: under overwrite churn with a memory limit
// far above the live data, compaction keeps the arena's resident
// segments within 1.2x of the live bytes (plus the few segments kept
// warm, the spare and the write head), where the arena without it
// (compact=0) grows to hold every record ever written.
func TestChurnResidentTracksLive(t *testing.T) {
	const n, vlen, rounds = 1000, 16 << 10, 6
	for _, tc := range []struct {
		name, config string
		file         bool
	}{
		{"compact", "sweep_interval=0", false},
		{"compact-file", "sweep_interval=0", true},
		{"off", "sweep_interval=0,compact=0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config := tc.config
			if tc.file {
				config += ",file=" + filepath.Join(t.TempDir(), "arena")
			}
			e, _ := testEngine(t, engine.Env{MemoryLimit: 256 << 20}, config)
			overwriteChurn(t, e, n, vlen, rounds)
			verify(t, e)
			live := statInt(t, e, "bytes")
			resident := statInt(t, e, "memory_arena_resident_bytes")
			slack := int64(e.keepWarm+2) * e.segSize
			t.Logf("live %d, resident %d (%.3fx), compactions %s, records compacted %s, evictions %s",
				live, resident, float64(resident)/float64(live), stat(e, "memory_compactions"), stat(e, "memory_compacted"), stat(e, "evictions"))
			if ev := statInt(t, e, "evictions"); ev != 0 {
				t.Errorf("%d evictions with the live data at an eighth of the limit", ev)
			}
			if tc.config == "sweep_interval=0,compact=0" {
				if written := int64(n*(rounds+1)) * recSize(5, vlen); resident < written*9/10 {
					t.Errorf("without compaction: resident %d, want about every byte written (%d)", resident, written)
				}
				return
			}
			if resident > live*6/5+slack {
				t.Errorf("resident %d over 1.2x the live %d plus %d", resident, live, slack)
			}
		})
	}
}

// TestChurnReleasesPages: when most items are deleted, their emptied
// segments give their pages back (the resident count falls) without a
// store needing room, through the background sweep's pass; and the
// engine keeps working on the released segments.
func TestChurnReleasesPages(t *testing.T) {
	e, _ := testEngine(t, engine.Env{MemoryLimit: 128 << 20}, "sweep_interval=0")
	const n, vlen = 2000, 16 << 10
	overwriteChurn(t, e, n, vlen, 1)
	before := statInt(t, e, "memory_arena_resident_bytes")
	for i := range n - 10 {
		if _, err := e.Delete([]byte("k" + strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	e.amu.Lock()
	e.freeDeadLocked()
	e.amu.Unlock()
	verify(t, e)
	after := statInt(t, e, "memory_arena_resident_bytes")
	t.Logf("resident %d before the deletes, %d after; released %s", before, after, stat(e, "memory_segments_released"))
	if limit := int64(e.keepWarm+2+10) * e.segSize; after > limit {
		t.Errorf("resident %d after deleting all but 10 items, want at most %d", after, limit)
	}
	// The released segments are written again (zeroed pages).
	overwriteChurn(t, e, n, vlen, 1)
	verify(t, e)
}

// TestChurnFileRestart: a restartable arena compacted under churn comes
// back with every key's last value, and so does one whose released
// segments were punched out of the file.
func TestChurnFileRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "arena")
	env := engine.Env{MemoryLimit: 64 << 20}
	e, _ := testEngine(t, env, "sweep_interval=0,file="+path)
	const n, vlen = 500, 16 << 10
	overwriteChurn(t, e, n, vlen, 4)
	for i := range n / 2 {
		if _, err := e.Delete([]byte("k" + strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	e.amu.Lock()
	e.freeDeadLocked()
	e.amu.Unlock()
	want := map[string]string{}
	for i := range n {
		k := "k" + strconv.Itoa(i)
		if v, ok := get(t, e, k); ok {
			want[k] = v
		}
	}
	if compactions := statInt(t, e, "memory_compactions"); compactions == 0 {
		t.Fatal("no compaction ran")
	}
	// A crash: the file is left as it is (no Close), and opened again.
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	path2 := filepath.Join(t.TempDir(), "arena")
	if err := os.WriteFile(path2, img, 0o600); err != nil {
		t.Fatal(err)
	}
	e2, _ := testEngine(t, env, "sweep_interval=0,file="+path2)
	if got := statInt(t, e2, "curr_items"); got != int64(len(want)) {
		t.Errorf("%d items after the restart, want %d", got, len(want))
	}
	for k, v := range want {
		if got, ok := get(t, e2, k); !ok || got != v {
			t.Fatalf("%s after the restart: found %v, value differs %v", k, ok, got != v)
		}
	}
	for i := range n / 2 {
		if _, ok := get(t, e2, "k"+strconv.Itoa(i)); ok {
			t.Fatalf("deleted k%d came back", i)
		}
	}
	overwriteChurn(t, e2, n, vlen, 2)
	verify(t, e2)
}
