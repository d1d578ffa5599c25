// Package restart holds the end-to-end tests of the restartable memory
// engine (-e FILE): a real mnemo binary writing its arena to a file,
// killed with SIGKILL at arbitrary moments or stopped with SIGUSR1 or
// SIGTERM, and started again on the same file.
package restart

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/mnemo-cache/mnemo/internal/testbin"
	"github.com/mnemo-cache/mnemo/internal/testserver"
)

var mnemoBin string

var build = testbin.Build{Pkg: "github.com/mnemo-cache/mnemo/cmd/mnemo", Name: "mnemo"}

func TestMain(m *testing.M) {
	var err error
	if mnemoBin, err = build.Built(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		build.Remove()
		os.Exit(1)
	}
	code := m.Run()
	build.Remove()
	os.Exit(code)
}

type server struct{ *testserver.Process }

// start runs mnemo -e file with the flags.
func start(t testing.TB, file string, flags ...string) *server {
	t.Helper()
	return &server{testserver.StartProcess(t, mnemoBin, append([]string{"-v", "-e", file}, flags...)...)}
}

// killAtStart starts mnemo on file and kills it with SIGKILL within 20 ms,
// during its start (often the rebuild) or just after.
func killAtStart(t *testing.T, file string, flags ...string) {
	t.Helper()
	args := append([]string{"-U", "0", "-l", "127.0.0.1", "-p", "0", "-e", file}, testserver.AsRoot()...)
	cmd := exec.Command(mnemoBin, append(args, flags...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A random moment of the start (the delay only spreads the kills;
	// nothing waits on it to pass).
	time.Sleep(time.Duration(rand.IntN(20_000)) * time.Microsecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
}

func (s *server) kill() { s.Kill() }

// stop sends sig and waits for a clean exit.
func (s *server) stop(sig syscall.Signal) {
	s.T.Helper()
	s.Stop(sig)
}

// stats returns the server's stats (or stats settings with arg).
func (s *server) stats(arg string) map[string]string {
	s.T.Helper()
	c := testserver.Dial(s.T, s.Addr)
	defer c.Close()
	fmt.Fprintf(c, "stats %s\r\n", arg)
	out := map[string]string{}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			s.T.Fatalf("stats: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "END" {
			return out
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) == 3 {
			out[f[1]] = f[2]
		}
	}
}

// value is version ver of key's value: key, version, padding and a
// CRC-32C of the rest, so a torn or mixed value is detected.
func value(key string, ver int) []byte {
	n := 20 + (ver*131+len(key)*7)%1500
	b := fmt.Appendf(nil, "%s|%d|", key, ver)
	for len(b) < n {
		b = append(b, byte('a'+(ver+len(b))%26))
	}
	return fmt.Appendf(b, "|%08x", crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// parse returns the version in a value of key, or an error if the value
// is not a whole value of key.
func parse(key string, v []byte) (int, error) {
	i := bytes.LastIndexByte(v, '|')
	if i < 0 {
		return 0, errors.New("no checksum")
	}
	body := v[:i]
	if fmt.Sprintf("%08x", crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli))) != string(v[i+1:]) {
		return 0, errors.New("checksum mismatch (torn)")
	}
	f := strings.SplitN(string(body), "|", 3)
	if len(f) < 3 || f[0] != key {
		return 0, fmt.Errorf("value of another key %q", f[0])
	}
	return strconv.Atoi(f[1])
}

// model is the test's view of each key: its acknowledged version (0 for
// absent) and, while a request is in flight, the version that request
// writes (0 for a delete).
type model struct {
	mu       sync.Mutex
	acked    map[string]int
	inflight map[string]int
	acks     int
}

func newModel() *model {
	return &model{acked: map[string]int{}, inflight: map[string]int{}}
}

// run drives writers goroutines, each owning its own keys, until stop is
// closed or the server goes away; each does sets (new versions), touches
// (which rewrite the item with -e) and deletes.
func (m *model) run(addr string, writers, keysPer int, seed uint64, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			c := memcache.New(addr)
			c.Timeout = testserver.Patience
			c.MaxIdleConns = 1
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d-k%d", w, rng.IntN(keysPer))
				m.mu.Lock()
				next, touch := 0, false
				switch rng.IntN(6) {
				case 0: // delete
				case 1: // touch: the version stays
					next, touch = m.acked[key], true
				default:
					next = m.acked[key] + 1 + rng.IntN(3)
				}
				m.inflight[key] = next
				m.mu.Unlock()
				var err error
				switch {
				case touch:
					err = c.Touch(key, 3600)
					if errors.Is(err, memcache.ErrCacheMiss) {
						err = nil
					}
				case next == 0:
					err = c.Delete(key)
					if errors.Is(err, memcache.ErrCacheMiss) {
						err = nil
					}
				default:
					err = c.Set(&memcache.Item{Key: key, Value: value(key, next), Flags: uint32(next)})
				}
				if err != nil {
					return // the server is gone: the request stays in flight
				}
				m.mu.Lock()
				m.acked[key] = next
				delete(m.inflight, key)
				m.acks++
				m.mu.Unlock()
			}
		})
	}
	return &wg
}

func (m *model) ackCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.acks
}

// check reads every key and requires the acknowledged state or the state
// of the request in flight at the kill; evictions (mayEvict) allow a key
// to be absent, never stale. It then makes what it read the acknowledged
// state.
func (m *model) check(t *testing.T, addr string, writers, keysPer int, mayEvict bool) (present int) {
	t.Helper()
	c := memcache.New(addr)
	c.Timeout = testserver.Patience
	m.mu.Lock()
	defer m.mu.Unlock()
	lost, stale := 0, 0
	for w := range writers {
		keys := make([]string, keysPer)
		for i := range keys {
			keys[i] = fmt.Sprintf("w%d-k%d", w, i)
		}
		got, err := c.GetMulti(keys)
		if err != nil {
			t.Fatalf("get after restart: %v", err)
		}
		for _, k := range keys {
			have := 0
			if it, ok := got[k]; ok {
				v, err := parse(k, it.Value)
				if err != nil {
					t.Fatalf("%s: damaged value after restart: %v: %.60q", k, err, it.Value)
				}
				if it.Flags != uint32(v) {
					t.Fatalf("%s: flags %d with version %d", k, it.Flags, v)
				}
				have = v
				present++
			}
			want, fl := m.acked[k], -1
			if f, ok := m.inflight[k]; ok {
				fl = f
			}
			switch {
			case have == want || have == fl:
			case have == 0 && mayEvict:
			case have == 0:
				lost++
				t.Errorf("%s: lost: acknowledged version %d, in flight %d, got none", k, want, fl)
			default:
				stale++
				t.Errorf("%s: version %d back; acknowledged %d, in flight %d", k, have, want, fl)
			}
			m.acked[k] = have
		}
	}
	m.inflight = map[string]int{}
	if lost+stale > 0 {
		t.Fatalf("%d lost, %d stale or deleted keys back", lost, stale)
	}
	return present
}

// TestCrash: writers set and delete checksummed values on 8 connections;
// the server is killed with SIGKILL after a random number of
// acknowledgements, restarted on the same file, checked, and the cycle
// goes on; then flush_all and SIGKILL bring nothing back.
func TestCrash(t *testing.T) {
	for _, tc := range []struct {
		name     string
		flags    []string
		keysPer  int
		mayEvict bool
	}{
		{"fits", []string{"-m", "64"}, 400, false},
		{"evicting", []string{"-m", "4"}, 1500, true},
		{"noevict-I2m", []string{"-m", "64", "-M", "-I", "2m"}, 400, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "arena")
			const writers = 8
			m := newModel()
			rng := rand.New(rand.NewPCG(42, uint64(len(tc.name))))
			s := start(t, file, tc.flags...)
			evictions := 0
			for round := range 5 {
				stop := make(chan struct{})
				wg := m.run(s.Addr, writers, tc.keysPer, uint64(round), stop)
				target := m.ackCount() + 2000 + rng.IntN(8000)
				testserver.Eventually(t, "acknowledgements", func() bool { return m.ackCount() >= target })
				ev, _ := strconv.Atoi(s.stats("")["evictions"])
				evictions += ev
				s.kill()
				close(stop)
				wg.Wait()
				if round%2 == 1 {
					// Killed again at once, at whatever point of its start
					// (often the rebuild) it has reached.
					killAtStart(t, file, tc.flags...)
				}
				s = start(t, file, tc.flags...)
				n := m.check(t, s.Addr, writers, tc.keysPer, tc.mayEvict)
				st := s.stats("")
				if st["memory_restart"] != "crash" {
					t.Fatalf("round %d: memory_restart %q, want crash", round, st["memory_restart"])
				}
				t.Logf("round %d: %d acknowledgements, %d keys present after SIGKILL, restored %s in %ss",
					round, m.ackCount(), n, st["memory_restart_items"], st["memory_restart_seconds"])
				if !tc.mayEvict && n == 0 {
					t.Fatal("nothing present after the restart")
				}
			}
			if tc.mayEvict != (evictions > 0) {
				t.Fatalf("%d evictions in a run meant to evict: %v", evictions, tc.mayEvict)
			}
			// flush_all, then SIGKILL: nothing flushed comes back.
			c := testserver.Dial(t, s.Addr)
			fmt.Fprintf(c, "flush_all\r\n")
			if line, _ := bufio.NewReader(c).ReadString('\n'); line != "OK\r\n" {
				t.Fatalf("flush_all: %q", line)
			}
			s.kill()
			s = start(t, file, tc.flags...)
			for k := range m.acked {
				m.acked[k] = 0
			}
			if n := m.check(t, s.Addr, writers, tc.keysPer, false); n != 0 {
				t.Fatalf("%d keys back after flush_all and SIGKILL", n)
			}
		})
	}
}

// TestGraceful: SIGUSR1 and SIGTERM stops keep every item, and the next
// start says it was clean; stats settings shows the file.
func TestGraceful(t *testing.T) {
	file := filepath.Join(t.TempDir(), "arena")
	const writers, keysPer = 4, 500
	m := newModel()
	s := start(t, file)
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGTERM} {
		stop := make(chan struct{})
		wg := m.run(s.Addr, writers, keysPer, uint64(sig), stop)
		target := m.ackCount() + 3000
		testserver.Eventually(t, "acknowledgements", func() bool { return m.ackCount() >= target })
		close(stop)
		wg.Wait()
		s.stop(sig)
		s = start(t, file)
		if n := m.check(t, s.Addr, writers, keysPer, false); n == 0 {
			t.Fatal("nothing back")
		}
		st := s.stats("")
		if st["memory_restart"] != "clean" {
			t.Fatalf("after %v: memory_restart %q, want clean", sig, st["memory_restart"])
		}
		if got := s.stats("settings")["memory_file"]; got != file {
			t.Fatalf("stats settings memory_file %q, want %q", got, file)
		}
	}
}

// TestSettingsChange: a start with another -m starts empty and says why
// in one log line.
func TestSettingsChange(t *testing.T) {
	file := filepath.Join(t.TempDir(), "arena")
	s := start(t, file, "-m", "8")
	c := memcache.New(s.Addr)
	if err := c.Set(&memcache.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	s.stop(syscall.SIGTERM)
	s = start(t, file, "-m", "16")
	if _, err := memcache.New(s.Addr).Get("k"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("get after -m change: %v, want a miss", err)
	}
	if st := s.stats(""); st["memory_restart"] != "empty" {
		t.Fatalf("memory_restart %q, want empty", st["memory_restart"])
	}
	if n := strings.Count(s.Out.String(), "starts empty"); n != 1 {
		t.Fatalf("%d log lines saying the file starts empty, want 1:\n%s", n, s.Out.String())
	}
}
