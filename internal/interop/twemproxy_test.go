package interop

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/internal/testserver"
)

// Scale-out as users do it: three servers behind twemproxy (Debian's
// nutcracker) with ketama distribution and auto_eject_hosts. The same run
// goes against three mnemo binaries and against three Debian memcacheds,
// the reference; both must spread the keys the same way.

const (
	// proxyKeys is how many keys the test spreads.
	proxyKeys = 3000
	// proxyFailureLimit and proxyRetry are twemproxy's
	// server_failure_limit and server_retry_timeout: a backend is ejected
	// after that many consecutive failed requests and retried after that
	// long.
	proxyFailureLimit = 2
	proxyRetry        = time.Second
)

// TestTwemproxy: the keys spread over all three backends (counted with
// each backend's stats curr_items); a backend killed (SIGKILL) under load
// is ejected, after which clients get answers for every key from the two
// others; restarted on the same port, it rejoins and gets its own keys
// back. mnemo spreads the keys exactly as memcached does (ketama hashes
// the server names and keys, not the servers).
func TestTwemproxy(t *testing.T) {
	nutcracker := testserver.LookPath(t, "nutcracker", "nutcracker")
	spread := map[string][]int{}
	for _, b := range []struct {
		name string
		cmd  func(t *testing.T) string
	}{
		{"mnemo", mnemoBinary},
		{"memcached", func(t *testing.T) string { return testserver.LookPath(t, "memcached", "memcached") }},
	} {
		t.Run(b.name, func(t *testing.T) {
			spread[b.name] = twemproxyRun(t, nutcracker, b.cmd(t))
		})
	}
	if m, ok := spread["mnemo"]; ok && spread["memcached"] != nil && !reflect.DeepEqual(m, spread["memcached"]) {
		t.Errorf("keys per backend: mnemo %v, memcached %v", m, spread["memcached"])
	}
}

// backend is a server process on a port of the test's.
type backend struct {
	bin  string
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	logs *testserver.LockedBuffer
}

func (b *backend) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

// start runs the server on b.port and waits until it listens; the test
// kills it.
func (b *backend) start(t *testing.T) {
	t.Helper()
	if err := b.run(t); err != nil {
		t.Fatal(err)
	}
}

// startFree starts the server on a free port, trying another when the
// port was taken meanwhile.
func (b *backend) startFree(t *testing.T) {
	t.Helper()
	var err error
	for range 5 {
		b.port = testserver.FreePort(t)
		if err = b.run(t); err == nil {
			return
		}
	}
	t.Fatal(err)
}

// run starts the server on b.port and waits until it listens, or returns
// why it did not.
func (b *backend) run(t *testing.T) error {
	t.Helper()
	args := append([]string{"-l", "127.0.0.1", "-p", strconv.Itoa(b.port), "-U", "0", "-m", "64"}, testserver.AsRoot()...)
	b.cmd = exec.Command(b.bin, args...)
	b.logs = &testserver.LockedBuffer{}
	b.cmd.Stdout, b.cmd.Stderr = b.logs, b.logs
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited, done := make(chan error, 1), make(chan struct{})
	b.done = done
	go func() { exited <- b.cmd.Wait(); close(done) }()
	cmd, logs := b.cmd, b.logs
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("%s on %d:\n%s", b.bin, b.port, logs.String())
		}
	})
	if err := waitOwnsPort(cmd.Process.Pid, b.port, exited); err != nil {
		cmd.Process.Kill()
		return fmt.Errorf("%s on %d: %v\n%s", b.bin, b.port, err, logs.String())
	}
	return nil
}

// waitOwnsPort waits until the process pid listens on the loopback TCP
// port, or fails when it exits first. A connection would not tell: the
// port may be another process's.
func waitOwnsPort(pid, port int, exited <-chan error) error {
	return testserver.Wait(exited, func() (bool, error) {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			return false, nil // exiting: Wait sees it
		}
		mine := map[string]bool{}
		for _, fd := range fds {
			l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if inode, ok := strings.CutPrefix(l, "socket:["); err == nil && ok {
				mine[strings.TrimSuffix(inode, "]")] = true
			}
		}
		tcp, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
		if err != nil {
			return false, nil
		}
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		local := fmt.Sprintf("0100007F:%04X", port)
		for _, line := range strings.Split(string(tcp), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) >= 10 && f[1] == local && f[3] == "0A" && mine[f[9]] {
				return true, nil
			}
		}
		return false, nil
	})
}

// kill ends the server with SIGKILL and waits until it is gone.
func (b *backend) kill(t *testing.T) {
	t.Helper()
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-b.done
}

// keysOn returns which of keys the server at addr holds, asking it
// directly with multi-gets.
func keysOn(t *testing.T, addr string, keys []string) map[string]bool {
	t.Helper()
	c := dial(t, addr)
	defer c.conn.Close()
	have := map[string]bool{}
	for i := 0; i < len(keys); i += 200 {
		c.send("get " + strings.Join(keys[i:min(i+200, len(keys))], " ") + "\r\n")
		for {
			l := c.line()
			if l == "END" {
				break
			}
			f := strings.Fields(l)
			if len(f) != 4 || f[0] != "VALUE" {
				t.Fatalf("get from %s: unexpected %q", addr, l)
			}
			c.line() // the value
			have[f[1]] = true
		}
	}
	return have
}

func currItems(t *testing.T, addr string) int {
	t.Helper()
	c := dial(t, addr)
	defer c.conn.Close()
	_, v := c.stats("")
	n, err := strconv.Atoi(v["curr_items"])
	if err != nil {
		t.Fatalf("stats of %s: curr_items %q", addr, v["curr_items"])
	}
	return n
}

// proxyClient talks to twemproxy, reconnecting after an error: twemproxy
// answers a request to a failed backend with SERVER_ERROR or closes.
type proxyClient struct {
	addr string
	conn net.Conn
	r    *bufio.Reader
}

// set stores key through the proxy and returns the reply line, or the
// error that closed the connection.
func (p *proxyClient) set(key string) (string, error) {
	if p.conn == nil {
		c, err := net.DialTimeout("tcp", p.addr, testserver.Patience)
		if err != nil {
			return "", err
		}
		p.conn = testserver.Patient(c)
		p.r = bufio.NewReader(p.conn)
	}
	_, err := io.WriteString(p.conn, "set "+key+" 0 0 5\r\nvalue\r\n")
	var l string
	if err == nil {
		l, err = p.r.ReadString('\n')
	}
	if err != nil {
		p.close()
		return "", err
	}
	return strings.TrimSuffix(l, "\r\n"), nil
}

func (p *proxyClient) close() {
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
}

// storeAll sets every key through the proxy and returns how many were
// not STORED.
func (p *proxyClient) storeAll(keys []string) (failed int) {
	for _, k := range keys {
		if l, err := p.set(k); err != nil || l != "STORED" {
			failed++
		}
	}
	return failed
}

// twemproxyRun runs the scenario against three servers of bin and returns
// how many keys each held.
func twemproxyRun(t *testing.T, nutcracker, bin string) []int {
	dir := t.TempDir()
	backends := make([]*backend, 3)
	for i := range backends {
		backends[i] = &backend{bin: bin}
		backends[i].startFree(t)
	}
	proxyAddr := startNutcracker(t, nutcracker, dir, backends)

	// The spread: every key on exactly one backend, every backend holding
	// a fair share.
	keys := make([]string, proxyKeys)
	for i := range keys {
		keys[i] = "key:" + strconv.Itoa(i)
	}
	pc := &proxyClient{addr: proxyAddr}
	defer pc.close()
	if failed := pc.storeAll(keys); failed != 0 {
		t.Fatalf("%d of %d sets through the proxy failed", failed, len(keys))
	}
	owner := map[string]int{}
	owned := make([][]string, 3)
	counts := make([]int, 3)
	for i, b := range backends {
		for k := range keysOn(t, b.addr(), keys) {
			if o, dup := owner[k]; dup {
				t.Fatalf("%s is on backends %d and %d", k, o, i)
			}
			owner[k] = i
			owned[i] = append(owned[i], k)
		}
		counts[i] = currItems(t, b.addr())
		if counts[i] != len(owned[i]) {
			t.Errorf("backend %d: curr_items %d, holds %d of the keys", i, counts[i], len(owned[i]))
		}
		if counts[i] < proxyKeys/6 {
			t.Errorf("backend %d holds %d of %d keys: ketama over 3 equal servers gives each about a third", i, counts[i], proxyKeys)
		}
	}
	if len(owner) != proxyKeys {
		t.Fatalf("%d of %d keys found on the backends", len(owner), proxyKeys)
	}
	t.Logf("keys per backend: %v", counts)

	// Load through the proxy, then kill backend 1 in the middle of it.
	var loadOK, loadFailed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		lc := &proxyClient{addr: proxyAddr}
		defer lc.close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if l, err := lc.set(keys[i%len(keys)]); err == nil && l == "STORED" {
				loadOK.Add(1)
			} else {
				loadFailed.Add(1)
			}
		}
	}()
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	testserver.Eventually(t, "load through the proxy", func() bool { return loadOK.Load() >= 200 })
	dead := backends[1]
	dead.kill(t)

	// Ejected: a key of the dead backend gets STORED again (from one of
	// the two others) once the failure limit is reached.
	victims := owned[1]
	var probeFailed int
	testserver.Eventually(t, "the killed backend ejected", func() bool {
		l, err := pc.set(victims[0])
		if err == nil && l == "STORED" {
			return true
		}
		probeFailed++
		return false
	})
	stopLoad()
	t.Logf("before ejection: %d probe and %d load requests failed; %d load requests answered", probeFailed, loadFailed.Load(), loadOK.Load())
	if loadFailed.Load()+int64(probeFailed) == 0 {
		t.Error("no request failed when a backend was killed under load: was it in the pool?")
	}
	if have := keysOn(t, backends[0].addr(), victims[:1]); !have[victims[0]] {
		if have := keysOn(t, backends[2].addr(), victims[:1]); !have[victims[0]] {
			t.Fatalf("%s was STORED but is on neither live backend", victims[0])
		}
	}
	// While it is out: the keys of the live backends are always answered;
	// those of the dead one too, but for the failure limit's worth of
	// requests each time twemproxy retries it (every proxyRetry).
	if failed := pc.storeAll(append(append([]string{}, owned[0]...), owned[2]...)); failed != 0 {
		t.Errorf("with one backend out, %d sets of keys of the live ones failed", failed)
	}
	begin := time.Now()
	failed := pc.storeAll(victims)
	retries := int(time.Since(begin)/proxyRetry) + 1
	if failed > proxyFailureLimit*retries {
		t.Errorf("with the backend ejected, %d of %d sets of its keys failed in %v; twemproxy's retries allow %d",
			failed, len(victims), time.Since(begin), proxyFailureLimit*retries)
	}

	// Rejoined: restarted on the same port, empty, it gets its own keys
	// back once twemproxy retries it.
	dead.start(t)
	testserver.Eventually(t, "the restarted backend rejoined", func() bool {
		pc.set(victims[0])
		return keysOn(t, dead.addr(), victims[:1])[victims[0]]
	})
	if failed := pc.storeAll(keys); failed != 0 {
		t.Errorf("after the rejoin, %d of %d sets failed", failed, len(keys))
	}
	if have := keysOn(t, dead.addr(), keys); len(have) != len(victims) {
		t.Errorf("after the rejoin, the backend holds %d keys, want its own %d", len(have), len(victims))
	} else {
		for _, k := range victims {
			if !have[k] {
				t.Errorf("after the rejoin, %s is not on its backend", k)
				break
			}
		}
	}
	if n := currItems(t, dead.addr()); n != len(victims) {
		t.Errorf("after the rejoin, curr_items %d, want %d", n, len(victims))
	}
	return counts
}

// startNutcracker runs twemproxy over the backends on free ports (trying
// others when one was taken meanwhile) and returns its address; the test
// kills it.
func startNutcracker(t *testing.T, nutcracker, dir string, backends []*backend) string {
	t.Helper()
	var err error
	for attempt := range 5 {
		var addr string
		if addr, err = runNutcracker(t, nutcracker, filepath.Join(dir, strconv.Itoa(attempt)), backends); err == nil {
			return addr
		}
	}
	t.Fatal(err)
	return ""
}

func runNutcracker(t *testing.T, nutcracker, dir string, backends []*backend) (string, error) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	proxyPort, statsPort := testserver.FreePort(t), testserver.FreePort(t)
	conf := fmt.Sprintf(`pool:
  listen: 127.0.0.1:%d
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: true
  server_failure_limit: %d
  server_retry_timeout: %d
  servers:
   - 127.0.0.1:%d:1 s1
   - 127.0.0.1:%d:1 s2
   - 127.0.0.1:%d:1 s3
`, proxyPort, proxyFailureLimit, proxyRetry.Milliseconds(), backends[0].port, backends[1].port, backends[2].port)
	confFile := filepath.Join(dir, "nutcracker.yml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	proxyLog := filepath.Join(dir, "nutcracker.log")
	proxy := exec.Command(nutcracker, "-c", confFile, "-s", strconv.Itoa(statsPort), "-a", "127.0.0.1",
		"-o", proxyLog, "-p", filepath.Join(dir, "nutcracker.pid"))
	out := &testserver.LockedBuffer{}
	proxy.Stdout, proxy.Stderr = out, out
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	proxyExited, done := make(chan error, 1), make(chan struct{})
	go func() { proxyExited <- proxy.Wait(); close(done) }()
	t.Cleanup(func() {
		proxy.Process.Kill()
		<-done
		if t.Failed() {
			log, _ := os.ReadFile(proxyLog)
			t.Logf("nutcracker:\n%s%s", out.String(), log)
		}
	})
	proxyAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(proxyPort))
	if err := waitOwnsPort(proxy.Process.Pid, proxyPort, proxyExited); err != nil {
		proxy.Process.Kill()
		log, _ := os.ReadFile(proxyLog)
		return "", fmt.Errorf("nutcracker: %v\n%s%s", err, out.String(), log)
	}
	return proxyAddr, nil
}
