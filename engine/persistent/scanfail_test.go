package persistent

import (
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/internal/faultfs"
)

// openBlocked reopens a store of many table blocks on a file system
// whose table reads by the engine's calls block once BlockReads is set
// (see faultfs.FS; the test ends by releasing them), for a scan or a
// Last caught inside Pebble when the store fails.
func openBlocked(t *testing.T) (*fx, *logBuf, *faultfs.FS, *pebbleKV) {
	lb := &logBuf{}
	dir := t.TempDir()
	x := &fx{t: t, dir: dir, cfg: "durability=sync,warmup=false,sweep_interval=0"}
	x.e, x.f = openAt(t, dir, engine.Env{}, x.cfg)
	for i := range 10 {
		x.set("disk"+strconv.Itoa(i), "d"+strconv.Itoa(i))
	}
	// Enough data for many blocks, so that the block read blocked is not
	// one that Pebble read for itself at open (table statistics).
	pad := strings.Repeat("p", 1000)
	for i := range 2000 {
		x.set("pad"+strconv.Itoa(i), pad)
	}
	if err := x.f.kv.(*pebbleKV).db.Flush(); err != nil { // into a table
		t.Fatal(err)
	}
	if err := x.e.Close(); err != nil {
		t.Fatal(err)
	}
	x.env = engine.Env{Logger: slog.New(slog.NewTextHandler(lb, nil))}.WithDefaults()
	fs := faultfs.New(vfs.Default)
	t.Cleanup(fs.Release)
	x.e, x.f = openAtFS(t, dir, x.env, x.cfg, fs)
	x.set("mem", "1")
	return x, lb, fs, x.f.kv.(*pebbleKV)
}

// TestFatalDuringScan: a scan inside Pebble when the store fails (a
// client's metadump here) ends with the store's failure instead of
// waiting forever, and the scan's goroutine ends once Pebble lets it go.
func TestFatalDuringScan(t *testing.T) {
	x, lb, fs, p := openBlocked(t)
	fs.BlockReads.Store(true)
	got := make(chan error, 1)
	go func() {
		got <- x.e.Iterate(func(key []byte, it *engine.Item) bool { return true })
	}()
	<-fs.Entered // the scan is inside Pebble, reading a table
	l := pebbleLogger{log: x.e.log, f: p.dead.Load()}
	go l.Fatalf("injected: failed during a scan %d", 1) // parks
	select {
	case err := <-got:
		if !errors.Is(err, ErrRead) || !strings.Contains(err.Error(), ErrStoreFailed.Error()) {
			t.Fatalf("the scan in flight at the failure: %v, want ErrRead for the store's failure", err)
		}
	case <-time.After(time.Minute): // a hang, not a slow machine
		t.Fatal("the scan in flight when the store failed did not return within a minute")
	}
	checkFailed(x, lb, "injected: failed during a scan", map[string]string{"mem": "1", "disk0": "d0", "disk3": "d3"})
	fs.Release()
}

// TestFatalDuringLast: the same for Last (the disk budget's passes).
func TestFatalDuringLast(t *testing.T) {
	x, _, fs, p := openBlocked(t)
	fs.BlockReads.Store(true)
	got := make(chan error, 1)
	go func() {
		_, _, err := p.Last(dataLower, dataUpper)
		got <- err
	}()
	<-fs.Entered
	l := pebbleLogger{log: x.e.log, f: p.dead.Load()}
	go l.Fatalf("injected: failed during a Last %d", 1) // parks
	select {
	case err := <-got:
		if !errors.Is(err, ErrStoreFailed) {
			t.Fatalf("Last in flight at the failure: %v, want ErrStoreFailed", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Last in flight when the store failed did not return within a minute")
	}
	fs.Release()
}

// TestScanBatches: a scan hands every entry over, in order, across
// batches (large values, more entries than a batch), stops when fn says
// so, and passes copies that stay what they were during each call.
func TestScanBatches(t *testing.T) {
	dir := t.TempDir()
	e, f := openAt(t, dir, engine.Env{}, "durability=sync,warmup=false,sweep_interval=0")
	defer e.Close()
	p := f.kv.(*pebbleKV)
	big := strings.Repeat("b", 3*scanBatchBytes/2)
	var ops []kvOp
	const n = 3*scanBatchEntries + 7
	for i := range n {
		v := "v" + strconv.Itoa(i)
		if i%500 == 3 {
			v = big
		}
		ops = append(ops, kvOp{Key: []byte("s" + strconv.Itoa(100000+i)), Value: []byte(v)})
	}
	if err := p.Commit(ops, true); err != nil {
		t.Fatal(err)
	}
	i := 0
	err := p.Scan([]byte("s"), []byte("t"), func(k, v []byte) bool {
		if string(k) != string(ops[i].Key) || string(v) != string(ops[i].Value) {
			t.Fatalf("entry %d: %q (%d bytes), want %q (%d bytes)", i, k, len(v), ops[i].Key, len(ops[i].Value))
		}
		i++
		return true
	})
	if err != nil || i != n {
		t.Fatalf("Scan: %v after %d entries, want nil after %d", err, i, n)
	}
	i = 0
	err = p.Scan([]byte("s"), []byte("t"), func(k, v []byte) bool {
		i++
		return i < scanBatchEntries+2
	})
	if err != nil || i != scanBatchEntries+2 {
		t.Fatalf("a scan stopped by fn: %v after %d entries, want nil after %d", err, i, scanBatchEntries+2)
	}
}
