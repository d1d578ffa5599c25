package daemon

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/config"
	"github.com/mnemo-cache/mnemo/protocol/binary"
)

// startMetrics starts a daemon on loopback ports with extra flags and
// returns it and a connection to it.
func startMetrics(t *testing.T, args ...string) (*Daemon, *textClient) {
	t.Helper()
	cfg, err := config.Parse(append([]string{"-l", "127.0.0.1:0", "-U", "0"}, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Start(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	nc, err := net.Dial("tcp", d.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(hangBound))
	return d, &textClient{t: t, c: nc, r: bufio.NewReader(nc)}
}

type textClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// do sends req and reads the reply up to and including a line that
// starts with one of ends.
func (c *textClient) do(req string, ends ...string) string {
	c.t.Helper()
	if _, err := c.c.Write([]byte(req)); err != nil {
		c.t.Fatal(err)
	}
	var b strings.Builder
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("%q: %v after %q", req, err, b.String())
		}
		b.WriteString(line)
		for _, e := range ends {
			if strings.HasPrefix(line, e) {
				return b.String()
			}
		}
	}
}

// scrape reads /metrics and returns the body and its samples, keyed by
// the series as written (name{labels}).
func scrape(t *testing.T, d *Daemon) ([]byte, map[string]float64) {
	t.Helper()
	cl := &http.Client{Timeout: hangBound}
	resp, err := cl.Get("http://" + d.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("status %d, content type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	samples := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		samples[line[:i]] = v
	}
	return body, samples
}

// promtool runs "promtool check metrics" on body. promtool comes with
// Debian's prometheus package, which scripts/test.sh installs: the test
// fails without it.
func promtool(t *testing.T, body []byte) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install Debian's prometheus package (scripts/test.sh does)")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestMetricsScrape sends known traffic and checks what /metrics reports
// for it: the memcached_exporter's command counters and gauges, the
// latency histograms, the engine's figures and the hot keys, and that
// promtool accepts the scrape.
func TestMetricsScrape(t *testing.T) {
	d, c := startMetrics(t, "--metrics-listen", "127.0.0.1:0", "--hotkeys", "3", "--hotkeys-sample", "1")
	value := strings.Repeat("v", 100)
	for range 20 {
		c.do("set a 0 0 100\r\n"+value+"\r\n", "STORED")
	}
	for range 30 {
		c.do("get a\r\n", "END")
	}
	for i := range 7 {
		c.do("get miss"+strconv.Itoa(i)+"\r\n", "END")
	}
	c.do("set n 0 0 1\r\n1\r\n", "STORED")
	for i := range 3 {
		c.do("incr n 5\r\n", strconv.Itoa(6+5*i)+"\r\n")
	}
	c.do("incr nothere 1\r\n", "NOT_FOUND")
	for range 4 {
		c.do("touch a 100\r\n", "TOUCHED")
	}
	c.do("delete n\r\n", "DELETED")
	c.do("delete n\r\n", "NOT_FOUND")
	for range 5 {
		c.do("ms b 2\r\nhi\r\n", "HD")
	}

	body, got := scrape(t, d)
	promtool(t, body)
	want := map[string]float64{
		`memcached_up`:                                                   1,
		`memcached_version{version="1.6.18"}`:                            1,
		`memcached_commands_total{command="get",status="hit"}`:           30,
		`memcached_commands_total{command="get",status="miss"}`:          7,
		`memcached_commands_total{command="set",status="hit"}`:           26,
		`memcached_commands_total{command="incr",status="hit"}`:          3,
		`memcached_commands_total{command="incr",status="miss"}`:         1,
		`memcached_commands_total{command="delete",status="hit"}`:        1,
		`memcached_commands_total{command="delete",status="miss"}`:       1,
		`memcached_commands_total{command="touch",status="hit"}`:         4,
		`memcached_current_items`:                                        2,
		`memcached_current_connections`:                                  1,
		`memcached_limit_bytes`:                                          64 << 20,
		`memcached_max_connections`:                                      1024,
		`memcached_slab_current_items{slab="1"}`:                         2,
		`mnemo_command_duration_seconds_count{command="get"}`:            37,
		`mnemo_command_duration_seconds_count{command="set"}`:            21,
		`mnemo_command_duration_seconds_count{command="incr"}`:           4,
		`mnemo_command_duration_seconds_count{command="touch"}`:          4,
		`mnemo_command_duration_seconds_count{command="delete"}`:         2,
		`mnemo_command_duration_seconds_count{command="ms"}`:             5,
		`mnemo_command_duration_seconds_bucket{command="get",le="+Inf"}`: 37,
		`mnemo_hotkey_requests{rank="1",key="a"}`:                        20 + 30 + 4,
		`mnemo_hotkey_requests{rank="2",key="n"}`:                        1 + 3 + 2,
		`mnemo_hotkey_requests{rank="3",key="b"}`:                        5,
		`mnemo_hotkey_bytes{rank="1",key="a"}`:                           50 * 100,
		`mnemo_hotkey_bytes{rank="2",key="b"}`:                           5 * 2,
	}
	for series, v := range want {
		if g, ok := got[series]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", series, g, ok, v)
		}
	}
	for _, series := range []string{"memcached_connections_total", "memcached_read_bytes_total", "memcached_written_bytes_total", "mnemo_memory_arena_bytes"} {
		if got[series] <= 0 {
			t.Errorf("%s = %v, want > 0", series, got[series])
		}
	}
	// The histogram's buckets are cumulative and end at the count.
	prev := 0.0
	for k := range 21 {
		le := strconv.FormatFloat(float64(uint64(1)<<k)/1e6, 'g', -1, 64)
		v, ok := got[`mnemo_command_duration_seconds_bucket{command="get",le="`+le+`"}`]
		if !ok || v < prev {
			t.Fatalf("get bucket le=%s: %v (present %v), previous %v", le, v, ok, prev)
		}
		prev = v
	}
	if s := got[`mnemo_command_duration_seconds_sum{command="get"}`]; s <= 0 || s > 37*hangBound.Seconds() {
		t.Errorf("get latency sum %v s", s)
	}
	// Commands never sent have no histogram.
	if _, ok := got[`mnemo_command_duration_seconds_count{command="gat"}`]; ok {
		t.Error("a histogram for gat, which was never sent")
	}
	// Every memcached_* family is the exporter's, with its type but for
	// the six promtool rejects (internal/metrics/testdata has the
	// exporter's scrape of memcached 1.6.18).
	exp, err := os.ReadFile("../metrics/testdata/memcached_exporter-0.14.3.prom")
	if err != nil {
		t.Fatal(err)
	}
	expTypes := map[string]string{}
	for _, line := range strings.Split(string(exp), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" {
			expTypes[f[2]] = f[3]
		}
	}
	for name, typ := range map[string]string{
		"memcached_uptime_seconds": "gauge", "memcached_slab_items_evicted_time_seconds": "gauge",
		"memcached_slab_mem_requested_bytes": "gauge", "memcached_slab_items_moves_to_cold": "untyped",
		"memcached_slab_items_moves_to_warm": "untyped", "memcached_slab_items_moves_within_lru": "untyped",
	} {
		expTypes[name] = typ
	}
	families := 0
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" && strings.HasPrefix(f[2], "memcached_") {
			families++
			if expTypes[f[2]] != f[3] {
				t.Errorf("%s %s: the exporter has %q", f[2], f[3], expTypes[f[2]])
			}
		}
	}
	if families < 30 {
		t.Errorf("only %d memcached_* families", families)
	}
	// A scrape is not a connection.
	_, again := scrape(t, d)
	if again["memcached_connections_total"] != got["memcached_connections_total"] {
		t.Errorf("scraping counted as a connection: %v then %v", got["memcached_connections_total"], again["memcached_connections_total"])
	}
}

// TestMetricsPersistentEngine checks that the persistent engine's figures
// reach /metrics as mnemo_persistent_* and pass promtool.
func TestMetricsPersistentEngine(t *testing.T) {
	d, c := startMetrics(t, "--metrics-listen", "127.0.0.1:0", "--engine", "persistent", "--engine-config", "path="+t.TempDir())
	c.do("set k 0 0 1\r\nv\r\n", "STORED")
	body, got := scrape(t, d)
	promtool(t, body)
	for _, series := range []string{
		`mnemo_persistent_queue_writes_total`,
		`mnemo_persistent_queue_lag_seconds`,
		`mnemo_persistent_durability_info{value="async"}`,
		`memcached_commands_total{command="set",status="hit"}`,
	} {
		if _, ok := got[series]; !ok {
			t.Errorf("%s missing", series)
		}
	}
}

// TestMetricsOff checks that without --metrics-listen nothing listens and
// stats settings says so, and that stats hotkeys says how to turn it on.
func TestMetricsOff(t *testing.T) {
	d, c := startMetrics(t)
	if d.MetricsAddr() != nil {
		t.Fatal("a metrics listener without --metrics-listen")
	}
	if s := c.do("stats settings\r\n", "END"); !strings.Contains(s, "STAT metrics_listen no\r\n") || !strings.Contains(s, "STAT hotkeys 0\r\n") {
		t.Errorf("stats settings: %s", s)
	}
	if s := c.do("stats hotkeys\r\n", "CLIENT_ERROR", "END"); s != "CLIENT_ERROR hot keys are not tracked: start mnemo with --hotkeys N\r\n" {
		t.Errorf("stats hotkeys without --hotkeys: %q", s)
	}
}

// TestHotKeysSkewedLoad sends gets drawn from a Zipf distribution and
// checks that stats hotkeys and /metrics rank the hottest keys first.
func TestHotKeysSkewedLoad(t *testing.T) {
	d, c := startMetrics(t, "--metrics-listen", "127.0.0.1:0", "--hotkeys", "5", "--hotkeys-sample", "4")
	const keys = 2000
	for i := range keys {
		c.do(fmt.Sprintf("set k%d 0 0 %d\r\n%s\r\n", i, 10+i%50, strings.Repeat("x", 10+i%50)), "STORED")
	}
	z := rand.NewZipf(rand.New(rand.NewSource(3)), 1.3, 1, keys-1)
	counts := map[string]int{}
	var batch strings.Builder
	for n := range 40000 {
		k := "k" + strconv.FormatUint(z.Uint64(), 10)
		counts[k]++
		batch.WriteString("get " + k + "\r\n")
		if n%100 == 99 { // pipelined, 100 at a time
			c.c.Write([]byte(batch.String()))
			for range 100 {
				for {
					line, err := c.r.ReadString('\n')
					if err != nil {
						t.Fatal(err)
					}
					if line == "END\r\n" {
						break
					}
				}
			}
			batch.Reset()
		}
	}
	// The exact top 2 (Zipf 1.3: k0 and k1, far ahead of the rest).
	s := c.do("stats hotkeys\r\n", "END")
	for rank, key := range []string{"k0", "k1"} {
		if !strings.Contains(s, fmt.Sprintf("STAT requests:%d:key %s\r\n", rank+1, key)) {
			t.Errorf("rank %d by requests is not %s (counts k0 %d, k1 %d):\n%s", rank+1, key, counts["k0"], counts["k1"], s)
		}
	}
	for _, line := range []string{"STAT hotkeys_top 5\r\n", "STAT hotkeys_window_seconds 60\r\n", "STAT hotkeys_sample 4\r\n", "STAT bytes:1:key k0\r\n"} {
		if !strings.Contains(s, line) {
			t.Errorf("stats hotkeys lacks %q:\n%s", line, s)
		}
	}
	_, got := scrape(t, d)
	v := got[`mnemo_hotkey_requests{rank="1",key="k0"}`]
	if want := float64(counts["k0"] + 1); v < 0.9*want || v > 1.1*want {
		t.Errorf("mnemo_hotkey_requests for k0: %v, true %v", v, want)
	}
	n := 0
	for series := range got {
		if strings.HasPrefix(series, "mnemo_hotkey_requests{") {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d hot-key series by requests, want the top 5", n)
	}
}

// TestMetricsBinaryProtocol checks that binary requests are timed under
// the text commands they match and feed the hot keys.
func TestMetricsBinaryProtocol(t *testing.T) {
	d, c := startMetrics(t, "--metrics-listen", "127.0.0.1:0", "--hotkeys", "2", "--hotkeys-sample", "1")
	value := bytes.Repeat([]byte("b"), 40)
	var req []byte
	extras := make([]byte, 8) // flags, exptime
	for range 3 {
		req = binary.AppendRequest(req, binary.OpSetQ, 0, 0, extras, []byte("bk"), value)
	}
	for range 4 {
		req = binary.AppendRequest(req, binary.OpGetK, 0, 0, nil, []byte("bk"), nil)
	}
	req = binary.AppendRequest(req, binary.OpNoop, 0, 0, nil, nil, nil)
	if _, err := c.c.Write(req); err != nil {
		t.Fatal(err)
	}
	// Four GETK responses and the NOOP's.
	want := 4*(binary.HeaderLen+4+2+len(value)) + binary.HeaderLen
	if _, err := io.ReadFull(c.r, make([]byte, want)); err != nil {
		t.Fatal(err)
	}
	_, got := scrape(t, d)
	for series, v := range map[string]float64{
		`mnemo_command_duration_seconds_count{command="set"}`:   3,
		`mnemo_command_duration_seconds_count{command="get"}`:   4,
		`mnemo_command_duration_seconds_count{command="other"}`: 1,
		`mnemo_hotkey_requests{rank="1",key="bk"}`:              7,
		`mnemo_hotkey_bytes{rank="1",key="bk"}`:                 7 * 40,
	} {
		if got[series] != v {
			t.Errorf("%s = %v, want %v", series, got[series], v)
		}
	}

	// STAT hotkeys: the text protocol's report, one packet per line.
	if _, err := c.c.Write(binary.AppendRequest(nil, binary.OpStat, 9, 0, nil, []byte("hotkeys"), nil)); err != nil {
		t.Fatal(err)
	}
	stats := map[string]string{}
	for {
		var h [binary.HeaderLen]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			t.Fatal(err)
		}
		keyLen, bodyLen := int(h[2])<<8|int(h[3]), int(h[8])<<24|int(h[9])<<16|int(h[10])<<8|int(h[11])
		body := make([]byte, bodyLen)
		if _, err := io.ReadFull(c.r, body); err != nil {
			t.Fatal(err)
		}
		if h[1] != byte(binary.OpStat) || h[6] != 0 || h[7] != 0 {
			t.Fatalf("STAT hotkeys: response header % x", h)
		}
		if bodyLen == 0 {
			break
		}
		stats[string(body[:keyLen])] = string(body[keyLen:])
	}
	for name, want := range map[string]string{"hotkeys_top": "2", "hotkeys_sample": "1", "requests:1:key": "bk", "requests:1:count": "7"} {
		if stats[name] != want {
			t.Errorf("STAT hotkeys %s = %q, want %q (all: %v)", name, stats[name], want, stats)
		}
	}
}

// TestMetricsScrapeUnderLoad scrapes while clients send requests (for the
// race detector: stats groups run in-process beside the sessions), and
// checks that the counters only grow.
func TestMetricsScrapeUnderLoad(t *testing.T) {
	d, c := startMetrics(t, "--metrics-listen", "127.0.0.1:0", "--hotkeys", "5", "--hotkeys-sample", "2")
	c.do("set k 0 0 1\r\nv\r\n", "STORED")
	done := make(chan struct{})
	loaded := make(chan error, 2)
	for range 2 {
		nc, err := net.Dial("tcp", d.Addrs()[0].String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(hangBound))
		go func() {
			r := bufio.NewReader(nc)
			for i := 0; ; i++ {
				select {
				case <-done:
					loaded <- nil
					return
				default:
				}
				if _, err := nc.Write([]byte("get k\r\nset k" + strconv.Itoa(i%7) + " 0 0 1\r\nv\r\n")); err != nil {
					loaded <- err
					return
				}
				for _, want := range []string{"VALUE", "v", "END", "STORED"} {
					line, err := r.ReadString('\n')
					if err != nil || !strings.HasPrefix(line, want) {
						loaded <- fmt.Errorf("%q, %v, want %s", line, err, want)
						return
					}
				}
			}
		}()
	}
	prev := 0.0
	for range 20 {
		_, got := scrape(t, d)
		v := got[`memcached_commands_total{command="get",status="hit"}`]
		if v < prev {
			t.Fatalf("get hits went from %v to %v", prev, v)
		}
		prev = v
	}
	close(done)
	for range 2 {
		if err := <-loaded; err != nil {
			t.Fatal(err)
		}
	}
}
