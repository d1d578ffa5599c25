package metrics

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/mnemo-cache/mnemo/internal/hotkeys"
)

// fakeStats serves stats groups from text in memcached's "STAT name
// value" lines, one group per key.
func fakeStats(groups map[string]string) Stats {
	return func(group string, fn func(name, value string)) error {
		text, ok := groups[group]
		if !ok {
			return errors.New("no such group")
		}
		for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
			name, value, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "STAT "), " ")
			fn(name, value)
		}
		return nil
	}
}

// memcachedGroups is a cut of memcached 1.6.18's stats after some
// traffic: the exporter's inputs.
var memcachedGroups = map[string]string{
	"": `STAT pid 1
STAT uptime 42
STAT time 1700000000
STAT version 1.6.18
STAT rusage_user 1.500000
STAT rusage_system 0.250000
STAT curr_connections 2
STAT total_connections 9
STAT rejected_connections 0
STAT connection_structures 3
STAT cmd_get 10
STAT cmd_set 12
STAT cmd_flush 1
STAT get_hits 7
STAT get_misses 3
STAT delete_misses 0
STAT delete_hits 2
STAT incr_misses 0
STAT incr_hits 1
STAT decr_misses 0
STAT decr_hits 0
STAT cas_misses 1
STAT cas_hits 2
STAT cas_badval 3
STAT touch_hits 0
STAT touch_misses 0
STAT store_too_large 4
STAT store_no_memory 0
STAT bytes_read 1000
STAT bytes_written 2000
STAT limit_maxbytes 67108864
STAT accepting_conns 1
STAT listen_disabled_num 0
STAT conn_yields 0
STAT bytes 300
STAT curr_items 3
STAT total_items 12
STAT evictions 0
STAT reclaimed 0
STAT moves_to_cold 5
STAT memory_segments_total 64
STAT memory_reinserted 2
STAT persistent_queue_lag_us 1500
STAT persistent_store_write_stall_us 2500000
STAT persistent_durability sync`,
	"slabs": `STAT 1:chunk_size 96
STAT 1:chunks_per_page 10922
STAT 1:total_pages 1
STAT 1:get_hits 7
STAT 1:cmd_set 12
STAT 1:cas_hits 2
STAT 1:cas_badval 3
STAT 1:mem_requested 300
STAT active_slabs 1
STAT total_malloced 1048576`,
	"items": `STAT items:1:number 3
STAT items:1:age 40
STAT items:1:evicted 0
STAT items:1:moves_to_cold 5
STAT items:1:hits_to_hot 4
STAT items:1:evicted_time 0
STAT items:1:mem_requested 300`,
	"settings": `STAT maxconns 1024
STAT lru_crawler yes
STAT lru_crawler_sleep 100
STAT lru_maintainer_thread yes
STAT hot_lru_pct 20`,
}

func gather(t *testing.T, src Source) (string, map[string]string) {
	t.Helper()
	out, err := Gather(src)
	if err != nil {
		t.Fatal(err)
	}
	samples := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		samples[line[:i]] = line[i+1:]
	}
	return string(out), samples
}

func TestMemcachedExporterSeries(t *testing.T) {
	out, got := gather(t, Source{Stats: fakeStats(memcachedGroups)})
	want := map[string]string{
		`memcached_up`:                                            "1",
		`memcached_version{version="1.6.18"}`:                     "1",
		`memcached_uptime_seconds`:                                "42",
		`memcached_process_user_cpu_seconds_total`:                "1.5",
		`memcached_process_system_cpu_seconds_total`:              "0.25",
		`memcached_commands_total{command="get",status="hit"}`:    "7",
		`memcached_commands_total{command="get",status="miss"}`:   "3",
		`memcached_commands_total{command="cas",status="badval"}`: "3",
		`memcached_commands_total{command="flush",status="hit"}`:  "1",
		// cmd_set less the cas commands, as the exporter does.
		`memcached_commands_total{command="set",status="hit"}`:                  "6",
		`memcached_item_too_large_total`:                                        "4",
		`memcached_current_connections`:                                         "2",
		`memcached_connections_total`:                                           "9",
		`memcached_lru_crawler_moves_to_cold_total`:                             "5",
		`memcached_malloced_bytes`:                                              "1048576",
		`memcached_max_connections`:                                             "1024",
		`memcached_lru_crawler_enabled`:                                         "1",
		`memcached_lru_crawler_maintainer_thread`:                               "1",
		`memcached_lru_crawler_hot_percent`:                                     "20",
		`memcached_slab_current_items{slab="1"}`:                                "3",
		`memcached_slab_items_age_seconds{slab="1"}`:                            "40",
		`memcached_slab_items_moves_to_cold{slab="1"}`:                          "5",
		`memcached_slab_lru_hits_total{slab="1",lru="hot"}`:                     "4",
		`memcached_slab_items_evicted_time_seconds{slab="1"}`:                   "0",
		`memcached_slab_commands_total{slab="1",command="get",status="hit"}`:    "7",
		`memcached_slab_commands_total{slab="1",command="cas",status="badval"}`: "3",
		`memcached_slab_commands_total{slab="1",command="set",status="hit"}`:    "7",
		`memcached_slab_chunk_size_bytes{slab="1"}`:                             "96",
		`memcached_slab_mem_requested_bytes{slab="1"}`:                          "300",
		`mnemo_memory_segments`:                                                 "64",
		`mnemo_memory_reinserted_total`:                                         "2",
		`mnemo_persistent_queue_lag_seconds`:                                    "0.0015",
		`mnemo_persistent_store_write_stall_seconds_total`:                      "2.5",
		`mnemo_persistent_durability_info{value="sync"}`:                        "1",
	}
	for series, v := range want {
		if got[series] != v {
			t.Errorf("%s = %q, want %q", series, got[series], v)
		}
	}
	if n := strings.Count(out, "\nmemcached_slab_mem_requested_bytes{"); n != 1 {
		t.Errorf("mem_requested, in stats items and stats slabs, gives %d series, want 1", n)
	}
	for _, absent := range []string{"memcached_extstore_bytes_limit", "memcached_slab_hot_items", "mnemo_command_duration_seconds"} {
		if strings.Contains(out, absent) {
			t.Errorf("%s present, but its stat is not", absent)
		}
	}
	for _, meta := range []string{
		"# TYPE memcached_commands_total counter\n",
		"# TYPE memcached_slab_items_moves_to_cold untyped\n",
		"# TYPE memcached_uptime_seconds gauge\n",
		"# HELP memcached_up Could the memcached server be reached.\n",
	} {
		if !strings.Contains(out, meta) {
			t.Errorf("lacks %q", meta)
		}
	}
	checkPromtool(t, out)
}

// TestSeriesFollowStats: without lru_crawler the crawler's settings are
// not shown, and a failing stats group fails the scrape.
func TestSeriesFollowStats(t *testing.T) {
	g := map[string]string{"": "STAT version 1.6.18", "slabs": "STAT active_slabs 0", "items": "", "settings": "STAT lru_crawler no\nSTAT hot_lru_pct 20"}
	out, _ := gather(t, Source{Stats: fakeStats(g)})
	if strings.Contains(out, "lru_crawler") {
		t.Errorf("crawler series with lru_crawler no:\n%s", out)
	}
	delete(g, "items")
	if _, err := Gather(Source{Stats: fakeStats(g)}); err == nil {
		t.Error("a scrape whose stats group fails succeeded")
	}
}

func TestLatencyBuckets(t *testing.T) {
	for _, tc := range []struct {
		ns   int64
		want int
	}{
		{-5, 0}, {0, 0}, {1000, 0}, {1001, 1}, {2000, 1}, {2001, 2}, {4000, 2}, {4001, 3},
		{1 << 20 * 1000, 20}, {1<<20*1000 + 1, NumBuckets - 1}, {1 << 62, NumBuckets - 1},
	} {
		if got := bucket(tc.ns); got != tc.want {
			t.Errorf("bucket(%d) = %d, want %d", tc.ns, got, tc.want)
		}
	}
	l := NewLatency([]string{"get", "set"})
	l.Observe(0, 1500) // le 2e-06
	l.Observe(0, 3000) // le 4e-06
	l.Observe(0, 5e9)  // +Inf
	l.Observe(7, 1)    // ignored
	l.Observe(-1, 1)   // ignored
	out, got := gather(t, Source{Stats: fakeStats(map[string]string{"": "", "slabs": "", "items": "", "settings": ""}), Latency: l})
	for series, v := range map[string]string{
		`mnemo_command_duration_seconds_bucket{command="get",le="1e-06"}`:    "0",
		`mnemo_command_duration_seconds_bucket{command="get",le="2e-06"}`:    "1",
		`mnemo_command_duration_seconds_bucket{command="get",le="4e-06"}`:    "2",
		`mnemo_command_duration_seconds_bucket{command="get",le="1.048576"}`: "2",
		`mnemo_command_duration_seconds_bucket{command="get",le="+Inf"}`:     "3",
		`mnemo_command_duration_seconds_count{command="get"}`:                "3",
		`mnemo_command_duration_seconds_sum{command="get"}`:                  "5.0000045",
	} {
		if got[series] != v {
			t.Errorf("%s = %q, want %q", series, got[series], v)
		}
	}
	if strings.Contains(out, `command="set"`) {
		t.Error("a histogram for set, never observed")
	}
	checkPromtool(t, out)
	if n := testing.AllocsPerRun(1000, func() { l.Observe(1, 12345) }); n != 0 {
		t.Errorf("Observe allocates %v times", n)
	}
}

func TestHotKeySeries(t *testing.T) {
	tr := hotkeys.New(hotkeys.Config{Top: 2})
	for range 3 {
		tr.Record([]byte("a\"b\\c"), 10)
	}
	tr.Record([]byte{0xff, 0x00}, 1)
	out, got := gather(t, Source{Stats: fakeStats(map[string]string{"": "", "slabs": "", "items": "", "settings": ""}), HotKeys: tr})
	for series, v := range map[string]string{
		`mnemo_hotkey_requests{rank="1",key="a\"b\\c"}`:     "3",
		`mnemo_hotkey_requests{rank="2",key="base64:/wA="}`: "1",
		`mnemo_hotkey_bytes{rank="1",key="a\"b\\c"}`:        "30",
	} {
		if got[series] != v {
			t.Errorf("%s = %q, want %q\n%s", series, got[series], v, out)
		}
	}
	checkPromtool(t, out)
}

func TestKeyLabel(t *testing.T) {
	for key, want := range map[string]string{
		"user:42":            "user:42",
		"é":                  "é",
		"has space":          "base64:aGFzIHNwYWNl",
		"base64:x":           "base64:YmFzZTY0Ong=",
		"\x7f":               "base64:fw==",
		string([]byte{0xc3}): "base64:ww==",
	} {
		if got := KeyLabel([]byte(key)); got != want {
			t.Errorf("KeyLabel(%q) = %q, want %q", key, got, want)
		}
	}
}

// checkPromtool runs promtool check metrics on out (Debian's prometheus
// package, installed by scripts/test.sh; the test fails without it).
func checkPromtool(t *testing.T, out string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install Debian's prometheus package (scripts/test.sh does)")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader([]byte(out))
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n%s", err, msg, out)
	}
}

// BenchmarkObserve is the latency histogram's cost per request: the clock
// read that ends a request and the observation, from parallel goroutines
// on one command (the worst case: one shared histogram).
func BenchmarkObserve(b *testing.B) {
	l := NewLatency([]string{"get"})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		t := Now()
		for pb.Next() {
			now := Now()
			l.Observe(0, now-t)
			t = now
		}
	})
}
