package memcache_test

// The harness of the memcache tests: it serves a memcache.Handler over a
// real server.Server on a loopback port the kernel picks, with the memory
// engine and a fake clock, and plays transcripts (request bytes in, exact
// reply bytes out) against it. It reaches the package only through its
// exported entry points (Config, NewHandler, MaxRequestSize, Credentials
// and the server.Handler it implements), as the daemon does, so that the
// tests outlast refactors of the package's internals.
//
// Every transcript case is written from memcached 1.6.18's replies. With
// MEMCACHE_ORACLE=1 the same cases run against Debian's memcached instead
// (started with the memcached flags the case's options stand for), so the
// expected bytes can be checked against the reference:
//
//	MEMCACHE_ORACLE=1 go test -count=1 -tags pebblegozstd ./memcache/
//
// Cases marked with a bug are skipped on mnemo; MEMCACHE_BUGS=1 runs them.
// Cases that move the fake clock, or check what only mnemo has (its
// version string, the callbacks of Config), are skipped in that mode.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/cache"
	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/engine/enginetest"
	"github.com/mnemo-cache/mnemo/engine/memory"
	"github.com/mnemo-cache/mnemo/memcache"
	"github.com/mnemo-cache/mnemo/server"
)

// epoch is the fake clock's start: a fixed unix time, so that exptimes
// and "stats" times do not depend on the wall clock.
const epoch = 1_700_000_000

// ioTimeout bounds every read and write of a test connection. It is a
// safety net that turns a missing reply into a failure, never a pause:
// a test that passes never waits for it.
const ioTimeout = 10 * time.Second

// opts are the server settings of a case, named after the memcached flags
// they stand for.
type opts struct {
	itemSizeMax int    // -I in bytes; 0: 1 MiB
	memoryMB    int    // -m; 0: 64
	noEvict     bool   // -M
	noCAS       bool   // -C
	noFlush     bool   // -F
	shutdown    bool   // -A
	protocol    string // -B ascii|binary|auto
	sasl        bool   // -S
	saslPWDB    string // the SASL password database's content (MEMCACHED_SASL_PWDB)
	authFile    string // -Y: the ascii authentication file's content
	detail      bool   // -D ':' (stats detail on from the start)
	noDumping   bool   // -X
	noWatch     bool   // -W
	watcherKB   int    // -o watcher_logbuf_size (KB); 0: 256
	idleTimeout int    // -o idle_timeout (seconds); 0: none

	// mnemo only (a case that sets them does not run on the oracle):
	settings          func(add func(name, value string))
	listenerProtocols map[string]string // keyed by "listener" and "second"
	secondListener    bool
	verboseOut        io.Writer // Config.VerboseOut (memcached writes -vv lines to stderr)
}

// mnemoOnly reports whether o uses settings memcached has no flag for.
func (o opts) mnemoOnly() bool {
	return o.settings != nil || o.listenerProtocols != nil || o.secondListener || o.verboseOut != nil
}

// flags returns the memcached command line flags o stands for.
func (o opts) flags(dir string) (args, env []string) {
	if o.itemSizeMax != 0 {
		args = append(args, "-I", strconv.Itoa(o.itemSizeMax))
	}
	if o.memoryMB != 0 {
		args = append(args, "-m", strconv.Itoa(o.memoryMB))
	}
	if o.noEvict {
		args = append(args, "-M")
	}
	if o.noCAS {
		args = append(args, "-C")
	}
	if o.noFlush {
		args = append(args, "-F")
	}
	if o.shutdown {
		args = append(args, "-A")
	}
	if o.protocol != "" {
		args = append(args, "-B", o.protocol)
	}
	if o.sasl {
		args = append(args, "-S")
		// Debian's memcached is built without MEMCACHED_SASL_PWDB support:
		// it refuses every login, so only failures can be compared.
		env = append(env, "MEMCACHED_SASL_PWDB="+writeFile(dir, "pwdb", o.saslPWDB),
			"SASL_CONF_PATH="+filepath.Dir(writeFile(dir, "memcached.conf", "mech_list: plain\n")))
	}
	if o.authFile != "" {
		args = append(args, "-Y", writeFile(dir, "auth", o.authFile))
	}
	if o.detail {
		args = append(args, "-D", ":")
	}
	if o.noDumping {
		args = append(args, "-X")
	}
	if o.noWatch {
		args = append(args, "-W")
	}
	if o.watcherKB != 0 {
		args = append(args, "-o", "watcher_logbuf_size="+strconv.Itoa(o.watcherKB))
	}
	if o.idleTimeout != 0 {
		args = append(args, "-o", "idle_timeout="+strconv.Itoa(o.idleTimeout))
	}
	return args, env
}

// testServer is a server a test talks to: mnemo in-process, or memcached
// in oracle mode.
type testServer struct {
	addr   string
	second string // the second listener's address (opts.secondListener)
	clock  *enginetest.FakeClock
	oracle bool
	// saslPWDB is the path of mnemo's SASL password database.
	saslPWDB string

	// handler, verbosity and shutdowns are mnemo's.
	handler   *memcache.Handler
	mu        sync.Mutex
	verbosity []int
	shutdowns chan bool
}

// oracleMode reports whether the tests run against memcached.
func oracleMode() bool { return os.Getenv("MEMCACHE_ORACLE") != "" }

// skipOnOracle skips a test that needs mnemo's fake clock or checks what
// only mnemo has.
func skipOnOracle(t *testing.T, why string) {
	t.Helper()
	if oracleMode() {
		t.Skip("mnemo only: " + why)
	}
}

// start starts a server with o for the test, and stops it when the test
// ends.
func start(t *testing.T, o opts) *testServer {
	t.Helper()
	if oracleMode() {
		if o.mnemoOnly() {
			t.Skip("mnemo only: uses a Config setting memcached has no flag for")
		}
		return startMemcached(t, o)
	}
	return startMnemo(t, o)
}

func writeFile(dir, name, content string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		panic(err)
	}
	return p
}

// startMnemo builds what the daemon builds, with the memory engine on a
// fake clock, and serves it on 127.0.0.1 port 0.
func startMnemo(t testing.TB, o opts) *testServer {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	clock := enginetest.NewFakeClock(epoch)
	itemMax := o.itemSizeMax
	if itemMax == 0 {
		itemMax = 1 << 20
	}
	mem := int64(64)
	if o.memoryMB != 0 {
		mem = int64(o.memoryMB)
	}
	eng, err := memory.New(engine.Env{
		MemoryLimit: mem << 20,
		ItemSizeMax: itemMax,
		NoEvict:     o.noEvict,
		Clock:       clock,
		Logger:      log,
	}, "")
	if err != nil {
		t.Fatalf("memory.New: %v", err)
	}
	ts := &testServer{clock: clock, shutdowns: make(chan bool, 8)}
	cfg := memcache.Config{
		Cache:          cache.New(eng, clock, cache.Options{DisableCAS: o.noCAS, DisableFlush: o.noFlush}),
		ItemSizeMax:    itemMax,
		EnableShutdown: o.shutdown,
		Shutdown:       func(graceful bool) { ts.shutdowns <- graceful },
		Threads:        4,
		DetailEnabled:  o.detail,
		Settings:       o.settings,
		DisableDumping: o.noDumping,
		DisableWatch:   o.noWatch,
		WatcherBufSize: o.watcherKB << 10,
		VerboseOut:     o.verboseOut,
		SetVerbosity: func(level int) {
			ts.mu.Lock()
			ts.verbosity = append(ts.verbosity, level)
			ts.mu.Unlock()
		},
		Logger:   log,
		Protocol: o.protocol,
		SASL:     o.sasl,
	}
	if o.sasl {
		cfg.SASLPasswordFile = writeFile(dir, "pwdb", o.saslPWDB)
		ts.saslPWDB = cfg.SASLPasswordFile
	}
	if o.authFile != "" {
		creds, err := memcache.LoadCredentials(writeFile(dir, "auth", o.authFile))
		if err != nil {
			t.Fatalf("LoadCredentials: %v", err)
		}
		cfg.AuthCredentials = creds
	}
	lns := []net.Listener{listen(t)}
	if o.secondListener {
		lns = append(lns, listen(t))
	}
	if o.listenerProtocols != nil {
		cfg.ListenerProtocols = map[string]string{}
		for name, p := range o.listenerProtocols {
			i := map[string]int{"listener": 0, "second": 1}[name]
			cfg.ListenerProtocols[lns[i].Addr().String()] = p
		}
	}
	ts.handler = memcache.NewHandler(cfg)
	srv := server.New(ts.handler, server.Config{MaxRequestSize: ts.handler.MaxRequestSize(), Logger: log,
		IdleTimeout: time.Duration(o.idleTimeout) * time.Second})
	var wg sync.WaitGroup
	for _, l := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(l); err != nil {
				t.Errorf("Serve: %v", err)
			}
		}()
	}
	ts.addr = lns[0].Addr().String()
	if len(lns) > 1 {
		ts.second = lns[1].Addr().String()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		wg.Wait()
		if err := eng.Close(); err != nil {
			t.Errorf("engine Close: %v", err)
		}
	})
	return ts
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := server.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return l
}

// startMemcached starts Debian's memcached with the flags o stands for on
// a free loopback port (oracle mode only).
func startMemcached(t *testing.T, o opts) *testServer {
	t.Helper()
	path, err := exec.LookPath("memcached")
	if err != nil {
		t.Fatal("MEMCACHE_ORACLE is set but memcached is not installed (Debian package memcached)")
	}
	flags, env := o.flags(t.TempDir())
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		_, port, _ := net.SplitHostPort(addr)
		args := []string{"-U", "0", "-l", "127.0.0.1", "-p", port}
		if os.Geteuid() == 0 {
			args = append(args, "-u", "root")
		}
		args = append(args, flags...)
		cmd := exec.Command(path, args...)
		cmd.Env = append(os.Environ(), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("memcached %q: %v", args, err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		// memcached cannot report its port: poll until it listens.
		up := false
		for deadline := time.Now().Add(5 * time.Second); !up && time.Now().Before(deadline); {
			select {
			case <-exited:
				t.Fatalf("memcached %q exited: %s", args, out.String())
			default:
			}
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				up = true
			} else {
				time.Sleep(10 * time.Millisecond)
			}
		}
		if !up {
			cmd.Process.Kill()
			<-exited
			continue
		}
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		return &testServer{addr: addr, oracle: true}
	}
	t.Fatal("could not start memcached")
	return nil
}

// advance moves the fake clock by secs seconds.
func (s *testServer) advance(t *testing.T, secs int64) {
	t.Helper()
	if s.clock == nil {
		t.Fatal("advance: no fake clock (oracle mode)")
	}
	s.clock.Advance(secs)
}

// verbosityCalls returns the levels Config.SetVerbosity was called with.
func (s *testServer) verbosityCalls() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.verbosity...)
}

// conn is a raw client connection.
type conn struct {
	t  testing.TB
	nc *net.TCPConn
}

// dial opens a connection to addr that the test closes.
func dial(t testing.TB, addr string) *conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &conn{t: t, nc: nc.(*net.TCPConn)}
}

// send writes b.
func (c *conn) send(b string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c.nc, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read reads exactly n bytes.
func (c *conn) read(n int) []byte {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(ioTimeout))
	b := make([]byte, n)
	got, err := io.ReadFull(c.nc, b)
	if err != nil {
		c.t.Fatalf("read %d bytes: %v; got %d: %s", n, err, got, show(b[:got]))
	}
	return b
}

// readUntil reads until the bytes read end with suffix.
func (c *conn) readUntil(suffix string) []byte {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(ioTimeout))
	var b []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(b, []byte(suffix)) {
		if _, err := c.nc.Read(one); err != nil {
			c.t.Fatalf("read until %q: %v; got %s", suffix, err, show(b))
		}
		b = append(b, one[0])
	}
	return b
}

// expect reads len(want) bytes and checks that they are want.
func (c *conn) expect(what, want string) {
	c.t.Helper()
	if got := c.read(len(want)); string(got) != want {
		c.t.Fatalf("%s:\n got %s\nwant %s", what, show(got), show([]byte(want)))
	}
}

// rest reads until the server closes the connection; with hangUp it first
// closes the client's side for writing, so that a server that would keep
// the connection open sees the end of its input.
func (c *conn) rest(hangUp bool) []byte {
	c.t.Helper()
	if hangUp {
		c.nc.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(ioTimeout))
	b, err := io.ReadAll(c.nc)
	if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		c.t.Fatalf("read to the end: %v; got %s", err, show(b))
	}
	return b
}

// isReset reports a connection reset: a server that closes a connection
// with unread input makes the kernel send RST.
func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// show formats bytes for a failure message: quoted, and cut short when
// long.
func show(b []byte) string {
	if len(b) > 600 {
		return fmt.Sprintf("%q ... (%d bytes) ... %q", b[:300], len(b), b[len(b)-200:])
	}
	return fmt.Sprintf("%q", b)
}

// step is one exchange of a transcript.
type step struct {
	send string // request bytes
	want string // the exact reply bytes
	// advance moves the fake clock by this many seconds before send.
	advance int64
}

// transcript is one table case: a fresh server with opts, one connection,
// its steps in order. After the last step the client stops sending and
// reads to the end: nothing more may come. With closes, the server must
// close the connection itself after the last step (quit, a fatal error).
type transcript struct {
	name   string
	opts   opts
	steps  []step
	closes bool
	// bug, when set, says how mnemo differs from memcached here: the case
	// is skipped on mnemo until the bug is fixed (and still runs on the
	// oracle).
	bug string
	// mnemoOnly, when set, says why the case does not run on the oracle.
	mnemoOnly string
}

// run plays the transcripts, each as a parallel subtest on its own
// server. A transcript of at most bytewiseMax request bytes that does not
// end in a close is played a second time ("name/bytewise") with every byte
// written on its own, so that the sessions' own parsing (protocol
// detection, ascii authentication, values swallowed after an error) is
// checked at every split: the replies must not change.
func run(t *testing.T, cases []transcript) {
	t.Helper()
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("two cases named %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			skipBug(t, tc.bug)
			if tc.mnemoOnly != "" {
				skipOnOracle(t, tc.mnemoOnly)
			}
			for _, s := range tc.steps {
				if s.advance != 0 {
					skipOnOracle(t, "moves the fake clock")
				}
			}
			play(t, tc, false)
			size := 0
			for _, s := range tc.steps {
				size += len(s.send)
			}
			if !oracleMode() && !tc.closes && size <= bytewiseMax {
				t.Run("bytewise", func(t *testing.T) { play(t, tc, true) })
			}
		})
	}
}

// bytewiseMax bounds the transcripts played byte by byte.
const bytewiseMax = 4096

// play runs one transcript on a fresh server.
func play(t *testing.T, tc transcript, bytewise bool) {
	t.Helper()
	srv := start(t, tc.opts)
	c := dial(t, srv.addr)
	for i, s := range tc.steps {
		if s.advance != 0 {
			srv.advance(t, s.advance)
		}
		if bytewise {
			for j := range len(s.send) {
				c.send(s.send[j : j+1])
			}
		} else {
			c.send(s.send)
		}
		c.expect(fmt.Sprintf("step %d: reply to %s", i, show([]byte(s.send))), s.want)
	}
	if extra := c.rest(!tc.closes); len(extra) > 0 {
		t.Fatalf("unexpected bytes after the last step: %s", show(extra))
	}
}

// skipBug skips a test of a known mnemo bug, except on the oracle or
// with MEMCACHE_BUGS=1 (to see whether it still fails).
func skipBug(t *testing.T, bug string) {
	t.Helper()
	if bug != "" && !oracleMode() && os.Getenv("MEMCACHE_BUGS") == "" {
		t.Skip("BUG: " + bug)
	}
}

// one is a transcript of a single step.
func one(name, send, want string) transcript {
	return transcript{name: name, steps: []step{{send: send, want: want}}}
}

// version is the version string the server under test reports: mnemo's
// memcache.Version, or the oracle's.
func version() string {
	if oracleMode() {
		return "1.6.18"
	}
	return memcache.Version
}
