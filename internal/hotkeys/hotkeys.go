// Package hotkeys finds the hottest keys of a cache: the top N keys by
// requests and by bytes over a sliding window, from Space-Saving sketches
// (see Sketch), at a bounded cost per request.
//
// # Window
//
// The window is cut into Slices sub-windows, each with its own pair of
// sketches (requests, bytes). Rotate, called every Window/Slices by the
// Tracker's own ticker (Start), empties the oldest sub-window and makes it
// the current one, so a report covers the last Window, give or take one
// sub-window: between Window*(Slices-1)/Slices and Window of traffic. The
// request path never reads the clock.
//
// # Cost
//
// Record takes a random sample of the requests (1 in Sample, drawn from
// the runtime's per-thread generator, no shared state); a sampled request
// takes the Tracker's mutex and updates two sketches: a map lookup and a
// few heap steps, with no allocation. Counts reported are the sampled
// counts times Sample, estimates of the true ones.
package hotkeys

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Slices is the number of sub-windows of a window.
const Slices = 4

// Config configures a Tracker.
type Config struct {
	// Top is the number of keys reported per ranking (1 to MaxTop).
	Top int
	// Window is the length of the sliding window; 0 means 60s.
	Window time.Duration
	// Sample counts 1 request in Sample; 0 or 1 counts every request.
	Sample uint32
}

// MaxTop bounds Config.Top, and with it the sketches' memory and the
// number of series on /metrics.
const MaxTop = 100

// Tracker counts requests and bytes per key and reports the top keys. Its
// methods are safe for concurrent use.
type Tracker struct {
	cfg Config

	mu   sync.Mutex
	cur  int
	reqs [Slices]*Sketch
	byts [Slices]*Sketch

	stop chan struct{}
	once sync.Once
}

// New returns a Tracker for cfg (Top is clamped to 1..MaxTop). Call Start
// to have it rotate its window, and Close to stop that.
func New(cfg Config) *Tracker {
	cfg.Top = min(max(cfg.Top, 1), MaxTop)
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	if cfg.Sample == 0 {
		cfg.Sample = 1
	}
	// Space-Saving finds every key above total/capacity; eight counters
	// per reported key keep the top ranks exact on skewed traffic (the
	// Zipf test measures it).
	capacity := max(8*cfg.Top, 64)
	t := &Tracker{cfg: cfg, stop: make(chan struct{})}
	for i := range Slices {
		t.reqs[i] = NewSketch(capacity)
		t.byts[i] = NewSketch(capacity)
	}
	return t
}

// Config returns the Tracker's configuration, with defaults applied.
func (t *Tracker) Config() Config { return t.cfg }

// Record counts one request for key that moved n bytes of value (0 for a
// miss or a command without a value). Only 1 request in Sample is counted.
func (t *Tracker) Record(key []byte, n int) {
	if t.cfg.Sample > 1 && rand.Uint32N(t.cfg.Sample) != 0 {
		return
	}
	t.mu.Lock()
	t.reqs[t.cur].Add(key, 1)
	if n > 0 {
		t.byts[t.cur].Add(key, uint64(n))
	}
	t.mu.Unlock()
}

// Rotate starts a new sub-window, forgetting the oldest.
func (t *Tracker) Rotate() {
	t.mu.Lock()
	t.cur = (t.cur + 1) % Slices
	t.reqs[t.cur].Reset()
	t.byts[t.cur].Reset()
	t.mu.Unlock()
}

// Reset forgets everything counted.
func (t *Tracker) Reset() {
	t.mu.Lock()
	for i := range Slices {
		t.reqs[i].Reset()
		t.byts[i].Reset()
	}
	t.mu.Unlock()
}

// Start rotates the window every Window/Slices until Close.
func (t *Tracker) Start() {
	go func() {
		tk := time.NewTicker(t.cfg.Window / Slices)
		defer tk.Stop()
		for {
			select {
			case <-t.stop:
				return
			case <-tk.C:
				t.Rotate()
			}
		}
	}()
}

// Close stops the rotation Start began.
func (t *Tracker) Close() { t.once.Do(func() { close(t.stop) }) }

// Entry is one ranked key.
type Entry struct {
	Key []byte
	// Count is the key's estimated requests (or bytes) in the window,
	// scaled by Sample.
	Count uint64
	// Error bounds the overestimate in Count: the key's true count is
	// at least Count-Error (both scaled by Sample, so before the
	// sampling's own error).
	Error uint64
}

// Report is the top keys of the window.
type Report struct {
	// Requests ranks keys by requests, Bytes by value bytes moved;
	// each holds at most Top entries, the largest first.
	Requests, Bytes []Entry
}

// Report returns the top keys over the window. It allocates; it is for
// the stats command and scrapes, not the request path.
func (t *Tracker) Report() Report {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Report{
		Requests: t.top(&t.reqs),
		Bytes:    t.top(&t.byts),
	}
}

// top merges the sub-windows' sketches and returns the top entries: a
// key's count and error are the sums of its counters' in the sub-windows
// that hold one. (A sub-window that dropped the key may have seen it up to
// its smallest counter's count more often: Space-Saving's usual bound.)
func (t *Tracker) top(sk *[Slices]*Sketch) []Entry {
	type acc struct {
		key        []byte
		count, err uint64
	}
	merged := map[string]*acc{}
	for _, s := range sk {
		s.Each(func(key []byte, count, err uint64) {
			a := merged[string(key)]
			if a == nil {
				a = &acc{key: slices.Clone(key)}
				merged[string(key)] = a
			}
			a.count += count
			a.err += err
		})
	}
	out := make([]Entry, 0, len(merged))
	for _, a := range merged {
		out = append(out, Entry{Key: a.key, Count: a.count * uint64(t.cfg.Sample), Error: a.err * uint64(t.cfg.Sample)})
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return slices.Compare(a.Key, b.Key)
	})
	return out[:min(len(out), t.cfg.Top)]
}
