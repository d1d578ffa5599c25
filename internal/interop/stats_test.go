package interop

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mnemo-cache/mnemo/internal/testserver"
)

// The stats families are not compared byte for byte (pids, times, memory
// and memcached's slab internals differ by nature). These tests compare
// their names: mnemo prints every name memcached prints (slab class and
// connection numbers normalised to N), in memcached's order, and may add
// its own. After the same commands, the command counters must have the
// same values.

// statsWorkload is run on both servers before the stats are compared.
const statsWorkload = "set a 0 0 1\r\n1\r\nset b 0 0 1\r\nx\r\nget a b c\r\ngets a\r\n" +
	"add a 0 0 1\r\n2\r\nreplace nokey 0 0 1\r\n3\r\nappend a 0 0 1\r\n4\r\n" +
	"incr a 1\r\nincr nokey 1\r\ndecr a 1\r\ndecr nokey 1\r\nincr b 1\r\n" +
	"cas a 0 0 1 999\r\n5\r\ncas nokey 0 0 1 1\r\n6\r\n" +
	"touch a 0\r\ntouch nokey 0\r\ngat 0 a nokey\r\ndelete b\r\ndelete b\r\n" +
	"set c 0 -1 1\r\nc\r\nget c\r\nmn\r\nversion\r\n"

// equalCounters are general stats whose values must be the same on both
// servers after statsWorkload.
var equalCounters = []string{
	"cmd_get", "cmd_set", "cmd_flush", "cmd_touch",
	"get_hits", "get_misses", "get_expired", "get_flushed",
	"delete_misses", "delete_hits", "incr_misses", "incr_hits",
	"decr_misses", "decr_hits", "cas_misses", "cas_hits", "cas_badval",
	"touch_hits", "touch_misses", "store_too_large", "store_no_memory",
	"curr_items", "total_items", "curr_connections", "limit_maxbytes",
	"max_connections", "threads", "pointer_size", "accepting_conns",
	"evictions", "auth_cmds", "auth_errors", "reclaimed", "expired_unfetched",
	"evicted_unfetched", "evicted_active", "slabs_moved", "malloc_fails",
}

// requiredGeneral are general stats that mnemo must print.
var requiredGeneral = []string{
	"pid", "uptime", "time", "version", "pointer_size", "rusage_user",
	"rusage_system", "max_connections", "curr_connections",
	"total_connections", "connection_structures", "cmd_get", "cmd_set",
	"cmd_flush", "cmd_touch", "get_hits", "get_misses", "delete_misses",
	"delete_hits", "incr_misses", "incr_hits", "decr_misses", "decr_hits",
	"cas_misses", "cas_hits", "cas_badval", "touch_hits", "touch_misses",
	"bytes_read", "bytes_written", "limit_maxbytes", "threads", "bytes",
	"curr_items", "total_items", "evictions", "reclaimed",
}

// slabNumber matches the slab class or connection number in a stat name.
var slabNumber = regexp.MustCompile(`(^|:)[0-9]+:`)

// statNames returns the names of a stats group with slab class and
// connection numbers replaced by "N", without repeats.
func statNames(names []string) []string {
	var out []string
	for _, n := range names {
		n = slabNumber.ReplaceAllString(n, "${1}N:")
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// commonOrder returns the names in both lists, in the order of want, and
// checks that got has them in that order too.
func checkCommonOrder(t *testing.T, group string, want, got []string) {
	t.Helper()
	var common []string
	for _, n := range want {
		if slices.Contains(got, n) {
			common = append(common, n)
		}
	}
	var gotCommon []string
	for _, n := range got {
		if slices.Contains(common, n) {
			gotCommon = append(gotCommon, n)
		}
	}
	if !slices.Equal(common, gotCommon) {
		t.Errorf("stats %s: shared names in another order\nmemcached: %q\nmnemo:     %q", group, common, gotCommon)
	}
	var missing []string
	for _, n := range want {
		if !slices.Contains(got, n) {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		t.Errorf("stats %s: mnemo does not print %q", group, missing)
	}
	t.Logf("stats %s: %d names shared", group, len(common))
}

// statsPair starts memcached and mnemo, runs statsWorkload on both and
// returns a connection to each.
func statsPair(t *testing.T) (mc, mn *client) {
	t.Helper()
	mc = dial(t, startMemcached(t))
	mn = dial(t, startMnemo(t))
	for _, c := range []*client{mc, mn} {
		c.send(statsWorkload)
	}
	// Read both workloads' replies to the end (the version line).
	for _, c := range []*client{mc, mn} {
		for !strings.HasPrefix(c.line(), "VERSION ") {
		}
	}
	return mc, mn
}

// compareStats compares a stats group of both servers: the order of the
// shared names (unless skipOrder), and the values of counters.
func compareStats(t *testing.T, mc, mn *client, group string, skipOrder bool, counters []string) {
	t.Helper()
	mcNames, mcValues := mc.stats(group)
	mnNames, mnValues := mn.stats(group)
	if !skipOrder {
		checkCommonOrder(t, group, statNames(mcNames), statNames(mnNames))
	}
	if len(mnNames) == 0 {
		t.Errorf("stats %s: mnemo printed nothing; memcached: %q", group, mcNames)
	}
	for _, n := range counters {
		if mcValues[n] != mnValues[n] {
			t.Errorf("stats %s: %s = %q, memcached %q", group, n, mnValues[n], mcValues[n])
		}
	}
}

func TestStatsNames(t *testing.T) {
	mc, mn := statsPair(t)
	t.Run("general", func(t *testing.T) {
		var counters []string
		for _, n := range equalCounters {
			if _, bug := knownStatsCounterBugs[n]; !bug {
				counters = append(counters, n)
			}
		}
		_, order := knownStatsOrderBugs[""]
		compareStats(t, mc, mn, "", order, counters)
		_, mnValues := mn.stats("")
		for _, n := range requiredGeneral {
			if _, ok := mnValues[n]; !ok {
				t.Errorf("stats: mnemo does not print %s", n)
			}
		}
	})
	t.Run("settings", func(t *testing.T) {
		// Values that depend on neither the port nor the build.
		compareStats(t, mc, mn, "settings", false, []string{"maxbytes", "maxconns", "udpport",
			"verbosity", "evictions", "item_size_max", "cas_enabled", "flush_enabled",
			"num_threads", "binding_protocol", "growth_factor", "chunk_size"})
		mcNames, _ := mc.stats("settings")
		_, mnValues := mn.stats("settings")
		for _, n := range mcNames {
			if _, ok := mnValues[n]; !ok {
				t.Errorf("stats settings: mnemo does not print %s", n)
			}
		}
	})
	// The workload's items are small: memcached keeps them in slab class
	// 1, mnemo's one class.
	groupCounters := map[string][]string{
		"slabs": {"1:get_hits", "1:cmd_set", "1:delete_hits", "1:incr_hits", "1:decr_hits",
			"1:cas_hits", "1:cas_badval", "1:touch_hits", "active_slabs"},
		"items": {"items:1:number", "items:1:evicted", "items:1:evicted_nonzero",
			"items:1:outofmemory", "items:1:tailrepairs", "items:1:expired_unfetched",
			"items:1:evicted_unfetched", "items:1:evicted_active"},
	}
	for _, group := range []string{"items", "slabs", "conns", "sizes"} {
		t.Run(group, func(t *testing.T) {
			_, order := knownStatsOrderBugs[group]
			compareStats(t, mc, mn, group, order, groupCounters[group])
		})
	}
}

func TestStatNames(t *testing.T) {
	got := statNames([]string{"items:1:number", "items:12:age", "1:chunk_size", "23:addr", "24:addr", "active_slabs"})
	want := []string{"items:N:number", "items:N:age", "N:chunk_size", "N:addr", "active_slabs"}
	if !slices.Equal(got, want) {
		t.Errorf("statNames = %q, want %q", got, want)
	}
}

// TestStatsFollowCommands checks that the figures commands change at run
// time read the same on both servers afterwards: maxbytes and
// limit_maxbytes after cache_memlimit, detail_enabled after "stats
// detail", the automove and LRU settings after "slabs automove" and "lru".
func TestStatsFollowCommands(t *testing.T) {
	mc := dial(t, startMemcached(t))
	mn := dial(t, startMnemo(t))
	for _, step := range []struct{ send, reply string }{
		{"cache_memlimit 100\r\n", "OK"},
		{"stats detail on\r\n", "OK"},
		{"slabs automove 2\r\n", "OK"},
		{"slabs automove ratio 0.5\r\n", "OK"},
		{"lru tune 10 30 0.5 3\r\n", "OK"},
		{"lru mode flat\r\n", "OK"},
		{"lru temp_ttl 30\r\n", "OK"},
		{"stats sizes_enable\r\n", "STAT sizes_status enabled"},
		{"extstore item_size 99\r\n", "OK"},
		{"extstore max_frag 0.5\r\n", "OK"},
		{"extstore drop_unread 1\r\n", "OK"},
		{"lru_crawler sleep 50\r\n", "OK"},
		{"lru_crawler tocrawl 7\r\n", "OK"},
		{"lru_crawler disable\r\n", "OK"},
	} {
		for _, c := range []*client{mc, mn} {
			c.send(step.send)
			if got := c.line(); got != step.reply {
				t.Fatalf("%q: %q, want %q", step.send, got, step.reply)
			}
		}
	}
	// memcached's "lru_crawler disable" answers OK before its crawler
	// thread has stopped and cleared the setting: wait for it.
	testserver.Eventually(t, "memcached's lru_crawler setting after lru_crawler disable", func() bool {
		_, v := mc.stats("settings")
		return v["lru_crawler"] == "no"
	})
	compareStats(t, mc, mn, "settings", false, []string{"maxbytes", "detail_enabled",
		"slab_automove", "slab_automove_ratio", "hot_lru_pct", "warm_lru_pct", "hot_max_factor",
		"warm_max_factor", "lru_segmented", "temp_lru", "temporary_ttl",
		"track_sizes", "ext_item_size", "ext_max_frag", "ext_drop_unread",
		"lru_crawler", "lru_crawler_sleep", "lru_crawler_tocrawl"})
	compareStats(t, mc, mn, "", true, []string{"limit_maxbytes"})
	if _, v := mn.stats("settings"); v["maxbytes"] != "104857600" || v["detail_enabled"] != "yes" {
		t.Errorf("mnemo stats settings: maxbytes %q detail_enabled %q, want 104857600 and yes", v["maxbytes"], v["detail_enabled"])
	}
}

// TestStatsIdleKicks checks that idle_kicks is printed, in memcached's
// place, with -o idle_timeout and only then. (The count itself is the
// server's IdleKicks, tested in package server.)
func TestStatsIdleKicks(t *testing.T) {
	for _, flags := range [][]string{{"-o", "idle_timeout=600"}, nil} {
		mc := dial(t, startMemcached(t, flags...))
		mn := dial(t, startMnemo(t, flags...))
		compareStats(t, mc, mn, "", false, []string{"idle_kicks"})
		_, mcValues := mc.stats("")
		_, mnValues := mn.stats("")
		_, mcHas := mcValues["idle_kicks"]
		_, mnHas := mnValues["idle_kicks"]
		if mcHas != mnHas {
			t.Errorf("flags %q: idle_kicks printed by memcached %v, by mnemo %v", flags, mcHas, mnHas)
		}
	}
}

// resetCounters are general stats that "stats reset" zeroes on memcached
// (its stats_reset: struct stats, the thread and slab stats, the item
// stats) and that read the same on both servers right after it.
var resetCounters = []string{
	"total_connections", "rejected_connections", "cmd_get", "cmd_set", "cmd_flush",
	"cmd_touch", "cmd_meta", "get_hits", "get_misses", "get_expired", "get_flushed",
	"delete_misses", "delete_hits", "incr_misses", "incr_hits", "decr_misses", "decr_hits",
	"cas_misses", "cas_hits", "cas_badval", "touch_hits", "touch_misses", "store_too_large",
	"store_no_memory", "auth_cmds", "auth_errors", "read_buf_oom", "listen_disabled_num",
	"time_in_listen_disabled_us", "total_items", "evictions", "reclaimed", "expired_unfetched",
	"evicted_unfetched", "evicted_active", "slabs_moved", "malloc_fails", "log_worker_dropped",
	"log_worker_written", "log_watcher_skipped", "log_watcher_sent", "direct_reclaims",
	// What stays: the gauges.
	"curr_items", "curr_connections",
}

// TestStatsReset checks that "stats reset" clears what memcached's clears
// and keeps the gauges: the counters read the same on both servers after
// it, the per-class counters of stats slabs and stats items are 0, and
// bytes_read and bytes_written restart (they count the stats commands
// since, a few dozen bytes, on both).
func TestStatsReset(t *testing.T) {
	mc, mn := statsPair(t)
	for _, c := range []*client{mc, mn} {
		// A second connection, so that total_connections was 2 before.
		c2 := dial(t, c.conn.RemoteAddr().String())
		c2.send("version\r\n")
		c2.line()
		c.send("stats reset\r\n")
		if got := c.line(); got != "RESET" {
			t.Fatalf("stats reset: %q", got)
		}
	}
	for _, c := range []*client{mc, mn} {
		_, v := c.stats("")
		for _, n := range []string{"bytes_read", "bytes_written"} {
			if x, err := strconv.Atoi(v[n]); err != nil || x > 200 {
				t.Errorf("%s after stats reset: %s = %q, want a few dozen bytes", c.conn.RemoteAddr(), n, v[n])
			}
		}
	}
	compareStats(t, mc, mn, "", true, resetCounters)
	compareStats(t, mc, mn, "slabs", true, []string{"1:get_hits", "1:cmd_set", "1:delete_hits",
		"1:incr_hits", "1:decr_hits", "1:cas_hits", "1:cas_badval", "1:touch_hits"})
	compareStats(t, mc, mn, "items", true, []string{"items:1:number", "items:1:evicted",
		"items:1:reclaimed", "items:1:expired_unfetched", "items:1:hits_to_cold"})
}
