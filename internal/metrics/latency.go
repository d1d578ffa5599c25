package metrics

import (
	"math/bits"
	"strconv"
	"sync/atomic"
	"time"
)

// NumBuckets is the number of buckets of a latency histogram: upper bounds
// of 1, 2, 4, ... 2^(NumBuckets-2) microseconds (about 1 s), then +Inf.
const NumBuckets = 22

// Latency holds one latency histogram per command. Observe is the request
// path's cost: one division, a bit length and two atomic adds, without
// locks or allocation. Its methods are safe for concurrent use.
type Latency struct {
	names []string
	h     []histogram
}

type histogram struct {
	buckets [NumBuckets]atomic.Uint64
	sum     atomic.Uint64 // nanoseconds
	_       [64 - 8]byte  // keep commands off each other's cache line
}

// NewLatency returns histograms for the commands names (the label values
// of Observe's indexes).
func NewLatency(names []string) *Latency {
	return &Latency{names: names, h: make([]histogram, len(names))}
}

// epoch anchors Now: time.Since of a monotonic time reads only the
// monotonic clock.
var epoch = time.Now()

// Now returns a monotonic clock reading in nanoseconds: one clock read
// (time.Now reads two clocks).
func Now() int64 { return int64(time.Since(epoch)) }

// Observe counts one execution of command i that took ns nanoseconds.
// Out-of-range commands are ignored.
func (l *Latency) Observe(i int, ns int64) {
	if uint(i) >= uint(len(l.h)) {
		return
	}
	h := &l.h[i]
	h.buckets[bucket(ns)].Add(1)
	if ns > 0 {
		h.sum.Add(uint64(ns))
	}
}

// bucket returns the index of the smallest bucket whose upper bound,
// 2^k microseconds, is at least ns.
func bucket(ns int64) int {
	if ns <= 1000 {
		return 0
	}
	return min(bits.Len64(uint64(ns-1)/1000), NumBuckets-1)
}

// upperBound returns bucket k's bound in seconds, as a label value.
func upperBound(k int) string {
	if k == NumBuckets-1 {
		return "+Inf"
	}
	return formatFloat(float64(uint64(1)<<k) / 1e6)
}

// Count returns how many executions of command i were observed.
func (l *Latency) Count(i int) uint64 {
	var n uint64
	for k := range l.h[i].buckets {
		n += l.h[i].buckets[k].Load()
	}
	return n
}

// Reset zeroes every histogram.
func (l *Latency) Reset() {
	for i := range l.h {
		for k := range l.h[i].buckets {
			l.h[i].buckets[k].Store(0)
		}
		l.h[i].sum.Store(0)
	}
}

const latencyName = "mnemo_command_duration_seconds"

// write adds the histograms of the commands seen at least once.
func (l *Latency) write(e *exposition) {
	f := e.family(latencyName, "Time mnemo took to execute a request, from its decoding to its reply in the connection's buffer, by command (protocol name; the binary protocol's are counted with the text commands they match).", Histogram)
	for i, name := range l.names {
		h := &l.h[i]
		var total uint64
		var counts [NumBuckets]uint64
		for k := range counts {
			counts[k] = h.buckets[k].Load()
			total += counts[k]
		}
		if total == 0 {
			continue
		}
		sum := h.sum.Load()
		var cum uint64
		for k, c := range counts {
			cum += c
			f.sample(latencyName+"_bucket", strconv.FormatUint(cum, 10), "command", name, "le", upperBound(k))
		}
		f.sample(latencyName+"_sum", formatFloat(float64(sum)/1e9), "command", name)
		f.sample(latencyName+"_count", strconv.FormatUint(cum, 10), "command", name)
	}
}
