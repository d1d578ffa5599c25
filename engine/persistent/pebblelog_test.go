package persistent

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPebbleEventsLogged runs a flush and a manual compaction with a
// logger at info level (-v): each is logged when it begins and when it ends, with
// Pebble's reason, whether a manual compaction was in flight, the input
// levels and the bytes written; at the default level (warnings) nothing
// of it is logged.
func TestPebbleEventsLogged(t *testing.T) {
	var lb logBuf
	log := slog.New(slog.NewTextHandler(&lb, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p, err := openPebble(t.TempDir(), 1<<20, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
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
