package persistent

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// coverFx stores dead items k0000 ... k2999 and live ones l0000 ...
// l0099 after them, and records the range deletions committed.
func coverFx(t *testing.T) (*fx, *[]kvOp) {
	x := newFx(t, engine.Env{}, "warmup=false,sweep_interval=0,interval=1h")
	now := x.clock.Now()
	for i := range 3000 {
		x.store(fmt.Sprintf("k%04d", i), []byte("v"), 0, now+10)
	}
	for i := range 100 {
		x.store(fmt.Sprintf("l%04d", i), []byte("live"), 0, 0)
	}
	x.flushQueue()
	x.clock.Advance(10)
	var ranges []kvOp
	x.f.mu.Lock()
	x.f.onCommit = func(ops []kvOp) {
		for _, op := range ops {
			if op.End != nil {
				ranges = append(ranges, kvOp{Key: bytes.Clone(op.Key), End: bytes.Clone(op.End), Delete: true})
			}
		}
	}
	x.f.mu.Unlock()
	return x, &ranges
}

// sweepPass runs sweep steps of n items, each committed, until a pass
// ends.
func (x *fx) sweepPass(n int) {
	passes := x.statInt("persistent_sweep_passes")
	for x.statInt("persistent_sweep_passes") == passes {
		x.e.sweepStep(n)
		x.flushQueue()
	}
	x.flushQueue() // what the pass's end queued
}

func (x *fx) committedRanges(r *[]kvOp) []kvOp {
	x.f.mu.Lock()
	defer x.f.mu.Unlock()
	return append([]kvOp(nil), *r...)
}

// TestSweepCovers: a run of dead keys deleted with abutting ranges over
// several steps gets one more range deletion at the end of the pass,
// over the whole run, so that Pebble can drop the tables under it
// without reading them; it deletes nothing else.
func TestSweepCovers(t *testing.T) {
	x, ranges := coverFx(t)
	x.sweepPass(1000)
	got := x.committedRanges(ranges)
	// Three steps' ranges: [k0000, k1000), [k1000, k2000), [k2000,
	// l0000), then the cover [k0000, l0000).
	key := func(k string) []byte { return append([]byte{prefixData}, k...) }
	want := []kvOp{
		{Key: key("k0000"), End: key("k1000")},
		{Key: key("k1000"), End: key("k2000")},
		{Key: key("k2000"), End: key("l0000")},
		{Key: key("k0000"), End: key("l0000")},
	}
	if len(got) != len(want) {
		t.Fatalf("committed ranges %v, want %v", got, want)
	}
	for i := range want {
		if !bytes.Equal(got[i].Key, want[i].Key) || !bytes.Equal(got[i].End, want[i].End) {
			t.Errorf("range %d: [%q, %q), want [%q, %q)", i, got[i].Key, got[i].End, want[i].Key, want[i].End)
		}
	}
	if n := x.statInt("persistent_sweep_covers"); n != 1 {
		t.Errorf("persistent_sweep_covers = %d, want 1", n)
	}
	if n := x.statInt("persistent_sweep_range_checks"); n != 0 {
		t.Errorf("persistent_sweep_range_checks = %d with nothing written meanwhile", n)
	}
	// A pass with nothing dead queues no cover.
	x.sweepPass(1000)
	if n := x.statInt("persistent_sweep_covers"); n != 1 {
		t.Errorf("persistent_sweep_covers = %d after a pass that found nothing dead", n)
	}
	x.reopen()
	if n := x.diskRecords(); n != 100 {
		t.Errorf("%d records on disk, want the 100 live ones", n)
	}
	x.mustHave("l0000", "live")
	x.mustHave("l0099", "live")
}

// TestSweepCoverRacingWrites: an item written into the span of a run's
// first range after that range was committed, before the pass ends,
// survives the cover: the cover carries the counter of the run's first
// scan, so the flusher reads its span again and leaves the new item out.
// (With the counter of the run's last scan it would be erased.)
func TestSweepCoverRacingWrites(t *testing.T) {
	x, _ := coverFx(t)
	x.e.sweepStep(1000) // [k0000, k1000)
	x.flushQueue()
	x.set("k0500x", "new")
	x.set("k1500", "overwritten") // in the next step's span, before its scan
	x.flushQueue()
	x.sweepPass(1000)
	// k1500 splits the run: [k0000, k1500) and [k1501, l0000), two
	// ranges each, two covers; only the first one's is read again.
	if n := x.statInt("persistent_sweep_covers"); n != 2 {
		t.Errorf("persistent_sweep_covers = %d, want 2", n)
	}
	if n := x.statInt("persistent_sweep_range_checks"); n != 1 {
		t.Errorf("persistent_sweep_range_checks = %d, want 1 (the first cover)", n)
	}
	x.reopen()
	x.mustHave("k0500x", "new")
	x.mustHave("k1500", "overwritten")
	x.mustMiss("k0499")
	x.mustMiss("k1499")
	if n := x.diskRecords(); n != 102 {
		t.Errorf("%d records on disk, want the 100 live ones and the 2 written", n)
	}
}

// TestPassDeadChains: abutting ranges join one chain, which keeps the
// counter of its first; a chain of one range is replaced by the next
// one, so a pass over many short runs keeps one chain, not one each.
func TestPassDeadChains(t *testing.T) {
	k := func(s string) []byte { return append([]byte{prefixData}, s...) }
	var d passDead
	for i, r := range []sweptRange{
		{lo: k("a"), hi: k("b"), n: 40, gen: 2},
		{lo: k("b"), hi: k("c"), n: 40, gen: 4}, // abuts: one chain
		{lo: k("d"), hi: k("e"), n: 40, gen: 6},
		{lo: k("f"), hi: k("g"), n: 40, gen: 8}, // replaces [d, e)
		{lo: k("g"), hi: k("h"), n: 40, gen: 10},
		{lo: k("j"), hi: k("k"), n: 40, gen: 12}, // the last, alone
	} {
		d.noteRange(r)
		if len(d.chains) > 3 {
			t.Fatalf("after range %d: %d chains", i, len(d.chains))
		}
	}
	want := []rangeChain{
		{sweptRange{lo: k("a"), hi: k("c"), n: 80, gen: 2}, 2},
		{sweptRange{lo: k("f"), hi: k("h"), n: 80, gen: 8}, 2},
		{sweptRange{lo: k("j"), hi: k("k"), n: 40, gen: 12}, 1},
	}
	if len(d.chains) != len(want) {
		t.Fatalf("chains %v, want %v", d.chains, want)
	}
	for i, w := range want {
		c := d.chains[i]
		if !bytes.Equal(c.r.lo, w.r.lo) || !bytes.Equal(c.r.hi, w.r.hi) || c.r.n != w.r.n || c.r.gen != w.r.gen || c.parts != w.parts {
			t.Errorf("chain %d: %+v, want %+v", i, c, w)
		}
	}
	if d.n != 240 || string(d.first) != string(k("a")) || string(d.last) != string(k("k")) {
		t.Errorf("n %d, span [%q, %q]; want 240, [a, k]", d.n, d.first, d.last)
	}
}

// TestSweepReclaimDefers: a pass that removed much but read items live
// that have expired since (a mass expiry that began during the pass)
// leaves its compaction to the end of the next pass, which removes them
// and compacts both passes' spans; the disk then holds the live items
// only. A pass that read no such item compacts at once
// (TestSweepReclaims).
func TestSweepReclaimDefers(t *testing.T) {
	x := newFx(t, engine.Env{MemoryLimit: 64 << 20}, "warmup=false,sweep_interval=0,interval=1h")
	now := x.clock.Now()
	// a...: expire at now+10, read live by the first pass; b...: expire
	// at now+5, dead when the first pass reads them; z...: no exptime.
	for i := range 15000 {
		x.store(fmt.Sprintf("a%05d", i), value(i, 200), 0, now+10)
		x.store(fmt.Sprintf("b%05d", i), value(i, 200), 0, now+5)
	}
	for i := range 1000 {
		x.store(fmt.Sprintf("z%05d", i), value(i, 200), 0, 0)
	}
	x.flushQueue()
	x.f.kv.(*pebbleKV).db.Flush()
	full := x.tableBytes()
	x.clock.Advance(5)
	x.e.sweep(15000) // the a... items, live
	x.clock.Advance(5)
	x.sweepPass(100000) // the b... items, dead, and the z... ones: the pass ends
	if n := x.statInt("persistent_sweep_removed"); n != 15000 {
		t.Fatalf("the first pass removed %d items, want the 15,000 b...", n)
	}
	if n, d := x.statInt("persistent_sweep_compactions"), x.statInt("persistent_sweep_deferrals"); n != 0 || d != 1 {
		t.Fatalf("after the first pass: %d compactions, %d deferrals; want 0 and 1", n, d)
	}
	// The span of the b... items is kept for the next pass's compaction.
	if d := &x.e.sweepDead; !d.carried || string(d.first) != "db00000" || string(d.last) != "dz00000" {
		t.Fatalf("after the first pass: carried %v, span [%q, %q]; want the b... items' span to the next key read", d.carried, d.first, d.last)
	}
	x.sweepPass(100000) // the a... items, dead now
	if d := &x.e.sweepDead; d.carried || len(d.first) != 0 {
		t.Errorf("after the second pass: carried %v, span from %q; want none", d.carried, d.first)
	}
	if n, d := x.statInt("persistent_sweep_compactions"), x.statInt("persistent_sweep_deferrals"); n != 1 || d != 1 {
		t.Fatalf("after the second pass: %d compactions, %d deferrals; want 1 and 1", n, d)
	}
	if all, dead := x.diskCount(); all != 1000 || dead != 0 {
		t.Errorf("%d items on disk (%d dead), want the 1000 live ones", all, dead)
	}
	if after := x.tableBytes(); after > full/10 {
		t.Errorf("tables hold %d bytes after both passes, %d before: not reclaimed", after, full)
	}
	// A third pass removes nothing and compacts nothing.
	x.sweepPass(100000)
	if n := x.statInt("persistent_sweep_compactions"); n != 1 {
		t.Errorf("%d compactions after a pass that removed nothing", n)
	}
}
