package persistent

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/mnemo-cache/mnemo/internal/syncbuf"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// TestDamagedTable: bytes overwritten in the middle of a stored table
// (.sst) do not stop the server. Reads that reach a damaged block answer
// a miss, every other key keeps its value, the damage is counted in
// persistent_disk_corruptions and logged once per file, and Close
// returns. (Pebble's default DataCorruption handler calls Logger.Fatalf,
// which stopped the process.)
func TestDamagedTable(t *testing.T) {
	dir := t.TempDir()
	var logBuf lockedLog
	env := engine.Env{MemoryLimit: 64 << 20, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))}
	open := func() *Engine {
		t.Helper()
		e, err := New(env, "path="+dir+",durability=sync,warmup=false")
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	const n = 4000
	value := func(i int) []byte { return bytes.Repeat([]byte(strconv.Itoa(i%10)), 200) }
	e := open()
	for i := range n {
		if _, _, err := e.Update([]byte(fmt.Sprintf("key%05d", i)), storeM{engine.Item{Value: value(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	// Move everything into a table: flush the memtable.
	if err := e.kv.(*pebbleKV).db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no table written")
	}
	damaged := 0
	for _, p := range ssts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 64<<10 {
			continue // too small to hold the data blocks
		}
		// Data blocks come first in a table: damage a stretch of them,
		// far from the footer and index at the end.
		for i := len(b) / 4; i < len(b)/4+64; i++ {
			b[i] ^= 0xff
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		damaged++
	}
	if damaged == 0 {
		t.Fatal("no table large enough to damage")
	}
	e = open()
	misses := 0
	for i := range n {
		_, v, ok, err := e.Get([]byte(fmt.Sprintf("key%05d", i)), nil, 0)
		switch {
		case err != nil:
			t.Fatalf("key%05d: %v", i, err)
		case !ok:
			misses++
		case !bytes.Equal(v, value(i)):
			t.Fatalf("key%05d: a damaged value was served: %.20q", i, v)
		}
	}
	if misses == 0 || misses == n {
		t.Errorf("%d of %d keys missed after damaging one stretch of a table: want some, not all", misses, n)
	}
	var corrupt string
	e.Stats(func(name, value string) {
		if name == "persistent_disk_corruptions" {
			corrupt = value
		}
	})
	if corrupt == "" || corrupt == "0" {
		t.Errorf("persistent_disk_corruptions = %q, want more than 0", corrupt)
	}
	if err := e.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if got := strings.Count(logBuf.String(), "damaged file in the store"); got != damaged {
		t.Errorf("%d log lines about damaged files, want %d (one per file):\n%s", got, damaged, logBuf.String())
	}
}

// lockedLog is a log destination safe for concurrent use.
type lockedLog = syncbuf.Buffer

// TestBackgroundErrorsCounted: an error Pebble reports from its background
// work (a failed flush or compaction) counts in
// persistent_background_errors of the engine that stats reads (it used to
// count into a copy of the counters).
func TestBackgroundErrorsCounted(t *testing.T) {
	e, err := New(engine.Env{MemoryLimit: 64 << 20, Logger: slog.New(slog.DiscardHandler)}, "path="+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	stat := func() string {
		var v string
		e.Stats(func(name, value string) {
			if name == "persistent_background_errors" {
				v = value
			}
		})
		return v
	}
	if got := stat(); got != "0" {
		t.Fatalf("persistent_background_errors = %q at start", got)
	}
	for range 2 {
		e.kv.(*pebbleKV).events.BackgroundError(errors.New("flush failed"))
	}
	if got := stat(); got != "2" {
		t.Errorf("persistent_background_errors = %q after two background errors, want 2", got)
	}
}
