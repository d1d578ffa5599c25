package persistent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// openLogged opens a store with a cache of cache bytes that logs at info
// level (-v) into the returned buffer; the test closes it.
func openLogged(t *testing.T, cache int64) (*pebbleKV, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p, err := openPebble(t.TempDir(), cache, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, lb
}

// TestWriteStallsCounted: Pebble's write stalls (its events) are counted
// with their time and logged at info level, and a store whose background
// work fails reports no level 0, so that the queue holds no writer for
// compactions that do not come.
func TestWriteStallsCounted(t *testing.T) {
	p, lb := openLogged(t, 1<<20)
	var st counters
	p.ev.attach(&st)
	p.ev.writeStallBegin(pebble.WriteStallBeginInfo{Reason: "L0 file count limit exceeded"})
	time.Sleep(2 * time.Millisecond)
	p.ev.writeStallEnd()
	if n := st.writeStalls.Load(); n != 1 {
		t.Errorf("persistent_store_write_stalls = %d, want 1", n)
	}
	if us := st.writeStallUs.Load(); us < 2000 {
		t.Errorf("persistent_store_write_stall_us = %d, want at least the 2 ms it lasted", us)
	}
	for _, want := range []string{`write stall begins" reason="L0 file count limit exceeded"`, "write stall ends"} {
		if !strings.Contains(lb.String(), want) {
			t.Errorf("no %q in the log:\n%s", want, lb.String())
		}
	}
	if s, stop, mem := p.Level0(); stop != l0StopWrites || s < 0 || mem <= 0 {
		t.Errorf("Level0 = %d, %d, %d; want a count, the stop %d and the memtable's size", s, stop, mem, l0StopWrites)
	}
	p.ev.bgFailing.Store(true)
	if s, stop, mem := p.Level0(); s != 0 || stop != 0 || mem != 0 {
		t.Errorf("Level0 of a store whose background work fails = %d, %d, %d; want 0, 0, 0", s, stop, mem)
	}
}

// TestPebbleEventsLogged runs a flush and a manual compaction with a
// logger at info level (-v): each is logged when it begins and when it ends, with
// Pebble's reason, whether a manual compaction was in flight, the input
// levels and the bytes written; at the default level (warnings) nothing
// of it is logged.
func TestPebbleEventsLogged(t *testing.T) {
	p, lb := openLogged(t, 1<<20)
	ctx := context.Background()
	for round := range 2 {
		var ops []kvOp
		for i := range 1000 {
			ops = append(ops, kvOp{Key: fmt.Appendf(nil, "k%05d", i), Value: fmt.Appendf(nil, "value %d of round %d", i, round)})
		}
		if err := p.Commit(ops, true); err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			// The second round stays in the memtable: the manual
			// compaction flushes it, then compacts it with the first.
			if err := p.FlushSettle(ctx, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.CompactRange(ctx, []byte("k"), []byte("l")); err != nil {
		t.Fatal(err)
	}
	out := lb.String()
	for _, re := range []string{
		`msg="persistent: pebble: flush begins" job=\d+ memtables=1 memtable_bytes=[1-9]\d*`,
		`msg="persistent: pebble: flush ends" job=\d+ memtables=1 memtable_bytes=[1-9]\d* tables=1 bytes=[1-9]\d* duration=\S+ total=\S+`,
		`msg="persistent: pebble: compaction begins" job=\d+ reason=default manual=1 input="L[06]:\d/[1-9]\d*B@[\d.]+( L6:\d+/\d+B@[\d.]+)?" to=L6`,
		`msg="persistent: pebble: compaction ends" job=\d+ reason=default manual=1 input="L[06]:\d/[1-9]\d*B@[\d.]+( L6:\d+/\d+B@[\d.]+)?" to=L6 tables=1 bytes=[1-9]\d* duration=\S+ total=\S+`,
		`msg="persistent: manual compaction" lower="\\"k\\"" upper="\\"l\\"" duration=\S+ err=<nil>`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no line matches %s in the log:\n%s", re, out)
		}
	}
	if n := strings.Count(out, "flush ends"); n != 2 {
		t.Errorf("%d flushes logged, want 2:\n%s", n, out)
	}

	// At the default level none of it is logged.
	var quiet logBuf
	ev := newPebbleEvents(slog.New(slog.NewTextHandler(&quiet, &slog.HandlerOptions{Level: slog.LevelWarn})))
	p2, err := openPebble(t.TempDir(), 1<<20, ev.log, ev)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if err := p2.Commit([]kvOp{{Key: []byte("k1"), Value: []byte("v")}}, true); err != nil {
		t.Fatal(err)
	}
	if err := p2.FlushSettle(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := p2.CompactRange(ctx, []byte("k"), []byte("l")); err != nil {
		t.Fatal(err)
	}
	if s := quiet.String(); s != "" {
		t.Errorf("logged at the default level:\n%s", s)
	}
}

// TestNoReadCompactions scans a store whose level-0 table overlaps the
// table under it, as the expiry sweep scans the store, for 200 MB of
// keys and values: Pebble's read sampling would compact the level-0
// table (a "read" compaction: it did in the mass-expiry benchmark, while
// readers ran); the store's options turn it off, so no compaction runs.
func TestNoReadCompactions(t *testing.T) {
	p, lb := openLogged(t, 8<<20)
	ctx := context.Background()
	value := make([]byte, 4000)
	write := func(round byte) {
		var ops []kvOp
		for i := range 250 {
			value[0] = round
			ops = append(ops, kvOp{Key: fmt.Appendf(nil, "dk%05d", i), Value: bytes.Clone(value)})
		}
		if err := p.Commit(ops, true); err != nil {
			t.Fatal(err)
		}
	}
	// The first round goes down to L6, the second stays in L0 over it.
	write(0)
	if err := p.CompactRange(ctx, []byte("d"), []byte("e")); err != nil {
		t.Fatal(err)
	}
	write(1)
	if err := p.FlushSettle(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	before := strings.Count(lb.String(), "compaction begins")
	var read int
	for read < 200<<20 {
		if err := p.Scan([]byte("d"), []byte("e"), func(key, value []byte) bool {
			read += len(key) + len(value)
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.FlushSettle(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	out := lb.String()
	if n := strings.Count(out, "compaction begins"); n != before {
		t.Errorf("%d compactions after the scans, want none:\n%s", n-before, out)
	}
	if strings.Contains(out, "reason=read") {
		t.Errorf("a read-triggered compaction:\n%s", out)
	}
}
