package memory

import (
	"container/list"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// zipfGen draws ranks in [0, n) with P(rank k) ∝ 1/(k+1)^theta, for any
// theta in (0, 1) (math/rand/v2's Zipf needs s > 1). It is the generator
// of Gray et al., "Quickly generating billion-record synthetic databases",
// as used by YCSB.
type zipfGen struct {
	r                        *rand.Rand
	n                        int
	theta, alpha, zetan, eta float64
	half                     float64
}

func newZipf(r *rand.Rand, n int, theta float64) *zipfGen {
	zeta := func(n int) float64 {
		s := 0.0
		for i := 1; i <= n; i++ {
			s += 1 / math.Pow(float64(i), theta)
		}
		return s
	}
	z := &zipfGen{r: r, n: n, theta: theta, alpha: 1 / (1 - theta), zetan: zeta(n)}
	z.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta(2)/z.zetan)
	z.half = 1 + math.Pow(0.5, theta)
	return z
}

func (z *zipfGen) next() int {
	u := z.r.Float64()
	uz := u * z.zetan
	switch {
	case uz < 1:
		return 0
	case uz < z.half:
		return 1
	}
	k := int(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(k, z.n-1)
}

// lruSim is an exact LRU cache with a byte budget.
type lruSim struct {
	budget, used int64
	ll           *list.List
	m            map[int]*list.Element
}

type lruEnt struct {
	key  int
	size int64
}

func (c *lruSim) get(k int) bool {
	if el, ok := c.m[k]; ok {
		c.ll.MoveToFront(el)
		return true
	}
	return false
}

func (c *lruSim) set(k int, size int64) {
	c.m[k] = c.ll.PushFront(lruEnt{k, size})
	c.used += size
	for c.used > c.budget {
		el := c.ll.Back()
		ent := el.Value.(lruEnt)
		c.ll.Remove(el)
		delete(c.m, ent.key)
		c.used -= ent.size
	}
}

// hitRatios runs a read-through Zipf(theta) workload (get; on a miss, set)
// over keys distinct keys of valueSize-byte values against the engine and
// an exact LRU with the same byte budget, counting hits after a warm-up.
func hitRatios(t *testing.T, keys, valueSize int, budget int64, warm, ops int) (engineHR, lruHR float64) {
	e, _ := testEngine(t, engine.Env{MemoryLimit: budget}, "sweep_interval=0")
	lru := &lruSim{budget: budget, ll: list.New(), m: map[int]*list.Element{}}
	z := newZipf(rand.New(rand.NewPCG(1, 2)), keys, 0.99)
	val := make([]byte, valueSize)
	m := &setM{value: val}
	var key, dst []byte
	var eh, lh int
	for i := range warm + ops {
		k := z.next()
		key = strconv.AppendInt(append(key[:0], "key:"...), int64(k), 10)
		_, dst2, ok, err := e.Get(key, dst[:0], engine.GetTouch)
		if err != nil {
			t.Fatal(err)
		}
		dst = dst2
		if !ok {
			if _, _, err := e.Update(key, m); err != nil {
				t.Fatal(err)
			}
		} else if i >= warm {
			eh++
		}
		if lru.get(k) {
			if i >= warm {
				lh++
			}
		} else {
			lru.set(k, recSize(len(key), valueSize))
		}
	}
	return float64(eh) / float64(ops), float64(lh) / float64(ops)
}

// TestHitRatioZipf checks the eviction policy against an exact LRU of the
// same byte budget on a Zipf(0.99) workload with room for about 10% of the
// key space. The measured numbers are in the package documentation.
func TestHitRatioZipf(t *testing.T) {
	const keys, valueSize = 100_000, 1000
	budget := int64(10 << 20) // ~10% of 100k × 1.05 KB records
	warm, ops := 200_000, 400_000
	if testing.Short() {
		warm, ops = 100_000, 100_000
	}
	ours, lru := hitRatios(t, keys, valueSize, budget, warm, ops)
	t.Logf("Zipf(0.99), %d keys, %d-byte values, %d MiB: engine %.4f, exact LRU %.4f (ratio %.3f)",
		keys, valueSize, budget>>20, ours, lru, ours/lru)
	if ours < 0.97*lru {
		t.Errorf("hit ratio %.4f is below 0.97 × LRU's %.4f", ours, lru)
	}
}
