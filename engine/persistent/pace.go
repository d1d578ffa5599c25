package persistent

import (
	"math"
	"runtime"
	"time"
)

// The sweep's pace (items looked at per second) adapts to what it finds
// and to the write-behind queue:
//
//   - base is the configured pace, SweepBatch per SweepInterval (10,000
//     items/s by default); the pace never stays below it unless the
//     queue is behind.
//   - TTL'd writes are counted as they are queued (ttlWrites); in a
//     steady state they expire at the rate they are written, so the pace
//     is kept at least ttlFactor times their rate (an EWMA over about
//     ttlWindow): a pass then takes at most 1/ttlFactor of the time in
//     which the written items' count equals the data set.
//   - A step that finds at least 1/4 of its items dead doubles the pace
//     (up to maxFactor times base); while steps find fewer than 1/32 dead
//     it halves each decayHalfLife (down to the floor above; at first it
//     halved at each step, and a mass expiry's sweep fell to the base
//     pace while it crossed the live keys between two runs of dead ones). So a mass expiry is swept at many
//     times the base pace, and a store with little dead costs the base.
//   - Pressure: when the queue holds more than a quarter of its bound or
//     its oldest write is older than twice Interval (foreground writes
//     wait for the disk), the sweep queues nothing until the next commit,
//     and halves its pace (down to base/4). Its deletions therefore
//     never push a writer into the queue's back-pressure.
//   - A step looks at no more items than fit a quarter of the queue as
//     deletions, and the sweep waits at least dutyGap times as long as a
//     step took before the next one: it takes at most a quarter of one
//     core. (At maxFactor 100 and half a core, a mass expiry of 2M items
//     left the disk in 8 s but readers of a single-core server waited up
//     to 0.9 s.)
//
// No item is skipped: a step resumes at the key after the last one it
// looked at, whatever its size.
const (
	ttlFactor  = 4
	ttlWindow  = 5 * time.Second
	maxFactor  = 20
	stepsPerIv = 10 // steps per SweepInterval at the base pace
	minStep    = 256
	maxStep    = 65536
	// decayHalfLife is how fast the pace falls back while steps find
	// little dead.
	decayHalfLife = time.Second
	dutyGap       = 3
)

// pacer sets the size of the next sweep step and the wait before it. It
// is driven by the sweep goroutine only (or a test, with virtual time).
type pacer struct {
	base, floor, rate float64 // items/s
	ttlRate           float64 // TTL'd writes per second (EWMA)
	period            time.Duration
	maxStep           int
}

func newPacer(cfg *Config) *pacer {
	base := float64(cfg.SweepBatch) / cfg.SweepInterval.Seconds()
	return &pacer{
		base:    base,
		floor:   base,
		rate:    base,
		period:  max(cfg.SweepInterval/stepsPerIv, 10*time.Millisecond),
		maxStep: int(min(max(cfg.Queue/4/(entryOverhead+32), minStep), maxStep)),
	}
}

// step returns how many items the next step looks at.
func (p *pacer) step() int {
	return int(min(max(p.rate*p.period.Seconds(), 1), float64(p.maxStep)))
}

// wait returns the time from the start of a step of n items to the
// start of the next, at the current pace.
func (p *pacer) wait(n int) time.Duration {
	return time.Duration(float64(n) / p.rate * float64(time.Second))
}

// observe adapts the pace after a step that looked at seen items and
// found dead of them dead, elapsed after the previous step, while
// ttlWrites TTL'd writes were queued; pressure says the queue is behind.
func (p *pacer) observe(seen, dead int, elapsed time.Duration, ttlWrites uint64, pressure bool) {
	if elapsed > 0 {
		a := 1 - math.Exp(-elapsed.Seconds()/ttlWindow.Seconds())
		p.ttlRate += a * (float64(ttlWrites)/elapsed.Seconds() - p.ttlRate)
	}
	top := p.base * maxFactor
	p.floor = min(max(p.base, ttlFactor*p.ttlRate), top)
	switch {
	case pressure:
		p.rate = max(p.rate/2, p.base/4)
		return
	case seen > 0 && dead*4 >= seen:
		p.rate = min(p.rate*2, top)
	case dead*32 < seen:
		// Halve per second of such steps, not per step: a run of live
		// keys between dead ones (another prefix) is crossed at speed.
		p.rate *= math.Exp2(-elapsed.Seconds() / decayHalfLife.Seconds())
	}
	p.rate = max(p.rate, p.floor)
}

// yieldEvery is how many items the sweep reads or deletes between two
// yields of its processor (runtime.Gosched), about 50-100 µs of work. The
// server often runs with one P (-t 1, or a one-core affinity mask): a
// reader woken by the network then waits for the goroutine that holds
// the P, and a sweep step that ran for tens of milliseconds without
// blocking kept it until the scheduler preempted it (10 ms slices) or
// the step ended. Yielding this often lets woken readers run promptly.
const yieldEvery = 64

// sweepYield yields the processor after every yieldEvery-th item (n
// counts them).
func (e *Engine) sweepYield(n int) {
	if n%yieldEvery != 0 {
		return
	}
	if e.yieldHook != nil {
		e.yieldHook()
		return
	}
	runtime.Gosched()
}
