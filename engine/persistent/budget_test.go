package persistent

import (
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// dirSize returns the bytes of the files under dir.
func dirSize(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file removed while walking
		}
		if !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// randomValue is an incompressible value of n bytes.
func randomValue(r *rand.Rand, n int) []byte {
	v := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		u := r.Uint64()
		for j := 0; j < 8; j++ {
			v[i+j] = byte(u >> (8 * j))
		}
	}
	return v
}

// budgetSlack is the documented room above disk_size (README, doc.go):
// a compaction of the store writes its new files before it removes the
// old ones (up to the budget again), plus Pebble's logs and manifest.
func budgetSlack(budget int64) int64 { return budget + 8<<20 }

// TestBudget writes 10x the budget and checks that the directory stays
// within the budget plus the slack all along, and that the newest items
// are served from disk after a restart while the oldest were evicted.
func TestBudget(t *testing.T) {
	const budget = 8 << 20
	x := newFx(t, engine.Env{MemoryLimit: 4 << 20}, "disk_size=8m,warmup=false")
	r := rand.New(rand.NewPCG(1, 2))
	const n = 20000 // 4 KiB each: 80 MiB, 10x the budget
	var peak int64
	for i := 0; i < n; i++ {
		x.store("k"+strconv.Itoa(i), randomValue(r, 4096), 0, 0)
		if i%100 == 0 {
			peak = max(peak, dirSize(t, x.dir))
		}
	}
	x.flushQueue()
	peak = max(peak, dirSize(t, x.dir))
	t.Logf("peak directory size %d bytes (%.2f x the budget), evictions %s, compactions %s", peak, float64(peak)/budget,
		x.stat("persistent_disk_evictions"), x.stat("persistent_disk_compactions"))
	if peak > budget+budgetSlack(budget) {
		t.Errorf("the directory reached %d bytes; budget %d + slack %d", peak, budget, budgetSlack(budget))
	}
	if x.statInt("persistent_disk_evictions") == 0 || x.statInt("persistent_disk_limit_bytes") != budget {
		t.Errorf("evictions %s, limit %s", x.stat("persistent_disk_evictions"), x.stat("persistent_disk_limit_bytes"))
	}
	// A restart empties memory: what is served now comes from disk.
	x.reopen()
	if got := dirSize(t, x.dir); got > budget+budgetSlack(budget) {
		t.Errorf("the directory holds %d bytes after the restart", got)
	}
	// The newest items, 1/4 of the budget, are all there.
	r = rand.New(rand.NewPCG(1, 2))
	want := make([][]byte, n)
	for i := range want {
		want[i] = randomValue(r, 4096)
	}
	for i := n - budget/4/4096; i < n; i++ {
		x.mustHave("k"+strconv.Itoa(i), string(want[i]))
	}
	// The oldest are gone, and the items on disk are about what fits.
	for i := 0; i < 100; i++ {
		x.mustMiss("k" + strconv.Itoa(i))
	}
	held := 0
	for i := 0; i < n; i++ {
		if _, _, ok := x.get("k" + strconv.Itoa(i)); ok {
			held++
		}
	}
	t.Logf("%d items (%d bytes) held after writing %d", held, held*4096, n)
	if held*4096 > budget || held*4096 < budget/4 {
		t.Errorf("%d items of 4 KiB held on a budget of %d", held, budget)
	}
}
