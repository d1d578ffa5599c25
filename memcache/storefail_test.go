package memcache_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mnemo-cache/mnemo/cache"
	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/engine/persistent"
	"github.com/mnemo-cache/mnemo/internal/faultfs"
	"github.com/mnemo-cache/mnemo/internal/syncbuf"
	"github.com/mnemo-cache/mnemo/internal/testhook"
	"github.com/mnemo-cache/mnemo/memcache"
	"github.com/mnemo-cache/mnemo/server"
)

// patience bounds the waits of the store-failure tests that end early
// unless something hangs (a reply, the store's failure). It is never
// what a test passes on: long enough for a loaded 2-core machine under
// the race detector, short enough to fail with a message well before
// "go test -timeout".
const patience = 2 * time.Minute

// persistentServer is mnemo's memcache handler served on a loopback port
// over a persistent engine.
type persistentServer struct {
	addr string
	logs *syncbuf.Buffer // the engine's and the handler's log
	stop func()          // stops the server and closes the engine (once)
}

// servePersistent opens a persistent engine on dir with config (after
// path=dir) and its store on fs (nil: the operating system's), and
// serves it as the daemon does. With failing set, the engine's Close
// must report the store's failure. The test stops it, or it stops when
// the test ends.
func servePersistent(t *testing.T, dir, config string, fs vfs.FS, failing bool) *persistentServer {
	t.Helper()
	if fs == nil {
		fs = vfs.Default
	}
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	eng, err := testhook.OpenPersistent(engine.Env{Logger: log}, "path="+dir+","+config, fs)
	if err != nil {
		t.Fatalf("open the persistent engine: %v", err)
	}
	h := memcache.NewHandler(memcache.Config{
		Cache:       cache.New(eng, engine.SystemClock{}, cache.Options{}),
		ItemSizeMax: 1 << 20,
		Threads:     4,
		Logger:      log,
	})
	srv := server.New(h, server.Config{MaxRequestSize: h.MaxRequestSize(), Logger: log})
	l := listen(t)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			if err := <-served; err != nil {
				t.Errorf("Serve: %v", err)
			}
			err := eng.Close()
			if failing && !errors.Is(err, persistent.ErrStoreFailed) {
				t.Errorf("engine Close: %v, want the store's failure", err)
			} else if !failing && err != nil {
				t.Errorf("engine Close: %v", err)
			}
			if t.Failed() {
				t.Logf("log:\n%s", logs.String())
			}
		})
	}
	t.Cleanup(stop)
	return &persistentServer{addr: l.Addr().String(), logs: logs, stop: stop}
}

// patientRead reads from c until the server closes the connection, for
// at most patience, and fails the test, naming what was awaited, on a
// hang.
func patientRead(t *testing.T, c *conn, what string) string {
	t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(patience))
	b, err := io.ReadAll(c.nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: no end within %v; got %s", what, patience, show(b))
	}
	if err != nil && !isReset(err) {
		t.Fatalf("%s: %v; got %s", what, err, show(b))
	}
	return string(b)
}

// checkDumpFailed checks the reply to a metadump whose store failed: no
// END (the dump is not complete), and a SERVER_ERROR line naming the
// store's failure as the last thing before the server closed the
// connection.
func checkDumpFailed(t *testing.T, what, reply string) {
	t.Helper()
	lines := strings.SplitAfter(reply, "\n")
	last := lines[len(lines)-1]
	if last == "" && len(lines) > 1 {
		last = lines[len(lines)-2]
	}
	if strings.Contains(reply, "END\r\n") || !strings.HasPrefix(last, "SERVER_ERROR ") ||
		!strings.HasSuffix(last, "\r\n") || !strings.Contains(last, "disk store failed") {
		t.Fatalf("%s: %q, want the dump's lines (if any) then SERVER_ERROR naming the store's failure, and the connection closed", what, reply)
	}
	for _, l := range lines[:len(lines)-1] {
		if l != last && !strings.HasPrefix(l, "key=") {
			t.Fatalf("%s: line %q in %q", what, l, reply)
		}
	}
}

// TestMetadumpStoreFails: a client's "lru_crawler metadump all" whose
// scan of the persistent engine's store is inside Pebble, reading a
// table, when the store fails for good (a write-ahead log write fails
// as another client's set rotates the log, a fatal error) ends: the
// client gets SERVER_ERROR naming the failure and the connection is
// closed, instead of waiting forever. The failure is logged and
// counted (stats), the dump's end is logged, and the server goes on
// serving: other clients' gets answer from memory, writes answer
// SERVER_ERROR at once (as documented for a failed store), and a second
// metadump ends the same way.
func TestMetadumpStoreFails(t *testing.T) {
	skipOnOracle(t, "a fault injected into mnemo's persistent engine")
	// disk_size=4m: 256 KiB memtables, so that a 200 KiB set rotates
	// the write-ahead log (see the persistent engine's TestWALRotationFails).
	const config = "warmup=false,sweep_interval=0,disk_size=4m"
	dir := t.TempDir()

	// A store of many table blocks, closed, so that its items are only on
	// disk and no block of them is in Pebble's cache when it reopens.
	s := servePersistent(t, dir, config+",durability=async", nil, false)
	c := dial(t, s.addr)
	var req strings.Builder
	pad := strings.Repeat("p", 1000)
	const pads = 800
	for i := range pads {
		req.WriteString("set pad" + strconv.Itoa(i) + " 0 0 1000\r\n" + pad + "\r\n")
	}
	c.send(req.String())
	c.expect("the pads' sets", strings.Repeat("STORED\r\n", pads))
	s.stop()

	fs := faultfs.New(vfs.Default)
	s = servePersistent(t, dir, config+",durability=sync", fs, true)
	t.Cleanup(fs.Release) // first (cleanups run last in, first out): let the blocked read go
	other := dial(t, s.addr)
	other.send("set mem 0 0 1\r\n1\r\n")
	other.expect("set mem", "STORED\r\n")

	fs.BlockReads.Store(true)
	dump := dial(t, s.addr)
	dump.send("lru_crawler metadump all\r\n")
	select {
	case <-fs.Entered: // the dump's scan is inside Pebble, reading a table
	case <-time.After(patience):
		t.Fatal("the metadump did not read a table of the store")
	}

	// The store fails: a set that rotates the log, whose write fails.
	fs.FailLogWrites.Store(true)
	other.send("set big 0 0 204800\r\n" + strings.Repeat("b", 204800) + "\r\n")
	if got := string(other.readUntil("\r\n")); !strings.HasPrefix(got, "SERVER_ERROR ") {
		t.Fatalf("the set that failed the store: %q, want SERVER_ERROR", got)
	}

	reply := patientRead(t, dump, "the metadump in flight when the store failed")
	t.Logf("the metadump in flight: %q", reply)
	checkDumpFailed(t, "the metadump in flight", reply)

	// Logged and counted.
	log := s.logs.String()
	if n := strings.Count(log, "THE DISK STORE FAILED"); n != 1 {
		t.Errorf("the store's failure was logged %d times, want once:\n%s", n, log)
	}
	if !strings.Contains(log, "lru_crawler dump ended early") {
		t.Errorf("the dump's early end is not logged:\n%s", log)
	}
	stats := statsOf(t, dial(t, s.addr))
	if stats["persistent_store_failed"] != "1" {
		t.Errorf("stats: persistent_store_failed %q, want 1", stats["persistent_store_failed"])
	}
	if n, _ := strconv.Atoi(stats["persistent_fatal_errors"]); n < 1 {
		t.Errorf("stats: persistent_fatal_errors %q, want at least 1", stats["persistent_fatal_errors"])
	}

	// The server goes on serving, as documented for a failed store:
	// items in memory are served, items only on disk are misses, writes
	// fail at once.
	other.send("get mem\r\n")
	other.expect("get mem after the failure", "VALUE mem 0 1\r\n1\r\nEND\r\n")
	other.send("get pad7\r\n")
	other.expect("get of an item only on disk after the failure", "END\r\n")
	other.send("set after 0 0 1\r\nx\r\n")
	if got := string(other.readUntil("\r\n")); !strings.HasPrefix(got, "SERVER_ERROR ") {
		t.Errorf("a set after the failure: %q, want SERVER_ERROR", got)
	}
	again := dial(t, s.addr)
	again.send("lru_crawler metadump all\r\n")
	reply = patientRead(t, again, "a metadump after the store failed")
	checkDumpFailed(t, "a metadump after the failure", reply)
	other.send("version\r\n")
	if got := string(other.readUntil("\r\n")); !strings.HasPrefix(got, "VERSION ") {
		t.Errorf("version after the dumps: %q", got)
	}
}

// statsOf sends "stats" on c and returns its values by name.
func statsOf(t *testing.T, c *conn) map[string]string {
	t.Helper()
	c.send("stats\r\n")
	m := map[string]string{}
	for _, l := range strings.Split(string(c.readUntil("END\r\n")), "\r\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "STAT" {
			m[f[1]] = f[2]
		}
	}
	return m
}
