package metrics

import (
	"slices"
	"strconv"
	"strings"
)

// The series of the Prometheus memcached_exporter v0.14.3
// (github.com/prometheus/memcached_exporter, pkg/exporter/exporter.go),
// under its names, labels and help, from the same stats lines it reads:
// "stats", "stats slabs", "stats items" and "stats settings". As the
// exporter, a series whose stat is missing is left out.
//
// Where the exporter's type would fail promtool's lint (a counter whose
// name does not end in _total), the series keeps its name and becomes a
// gauge (uptime, evicted_time: readings, not counts) or untyped (the
// per-class moves_* counts).

// Stats is what a scrape reads: the name/value pairs of one stats group
// ("" for the general statistics, "slabs", "items", "settings", ...).
type Stats func(group string, fn func(name, value string)) error

// memcachedStats is what the exporter's client collects: the general
// statistics (with the global lines of stats slabs and stats items),
// per-class lines of stats slabs ("<class>:<field>") and of stats items
// ("items:<class>:<field>"), and stats settings.
type memcachedStats struct {
	general  map[string]string
	slabs    map[int]map[string]string
	items    map[int]map[string]string
	settings map[string]string
}

// readMemcachedStats reads the four groups as the exporter's client
// splits them.
func readMemcachedStats(read Stats) (*memcachedStats, error) {
	m := &memcachedStats{
		general:  map[string]string{},
		slabs:    map[int]map[string]string{},
		items:    map[int]map[string]string{},
		settings: map[string]string{},
	}
	split := func(name, value string) {
		f := strings.Split(name, ":")
		switch len(f) {
		case 1:
			m.general[name] = value
		case 2:
			if c, err := strconv.Atoi(f[0]); err == nil {
				inner(m.slabs, c)[f[1]] = value
			}
		case 3:
			if c, err := strconv.Atoi(f[1]); err == nil {
				inner(m.items, c)[f[2]] = value
			}
		}
	}
	for _, g := range []string{"", "slabs", "items"} {
		if err := read(g, split); err != nil {
			return nil, err
		}
	}
	if err := read("settings", func(name, value string) { m.settings[name] = value }); err != nil {
		return nil, err
	}
	return m, nil
}

func inner(m map[int]map[string]string, k int) map[string]string {
	v := m[k]
	if v == nil {
		v = map[string]string{}
		m[k] = v
	}
	return v
}

// series describes one exporter series read from one stat.
type series struct {
	stat, name, help string
	typ              Type
}

const ns = "memcached_"

// generalSeries are the exporter's series from one general stat each.
var generalSeries = []series{
	{"uptime", ns + "uptime_seconds", "Number of seconds since the server started.", Gauge},
	{"time", ns + "time_seconds", "current UNIX time according to the server.", Gauge},
	{"bytes", ns + "current_bytes", "Current number of bytes used to store items.", Gauge},
	{"limit_maxbytes", ns + "limit_bytes", "Number of bytes this server is allowed to use for storage.", Gauge},
	{"curr_items", ns + "current_items", "Current number of items stored by this instance.", Gauge},
	{"total_items", ns + "items_total", "Total number of items stored during the life of this instance.", Counter},
	{"bytes_read", ns + "read_bytes_total", "Total number of bytes read by this server from network.", Counter},
	{"bytes_written", ns + "written_bytes_total", "Total number of bytes sent by this server to network.", Counter},
	{"curr_connections", ns + "current_connections", "Current number of open connections.", Gauge},
	{"total_connections", ns + "connections_total", "Total number of connections opened since the server started running.", Counter},
	{"rejected_connections", ns + "connections_rejected_total", "Total number of connections rejected due to hitting the memcached's -c limit in maxconns_fast mode.", Counter},
	{"conn_yields", ns + "connections_yielded_total", "Total number of connections yielded running due to hitting the memcached's -R limit.", Counter},
	{"listen_disabled_num", ns + "connections_listener_disabled_total", "Number of times that memcached has hit its connections limit and disabled its listener.", Counter},
	{"evictions", ns + "items_evicted_total", "Total number of valid items removed from cache to free memory for new items.", Counter},
	{"reclaimed", ns + "items_reclaimed_total", "Total number of times an entry was stored using memory from an expired entry.", Counter},
	{"store_too_large", ns + "item_too_large_total", "The number of times an item exceeded the max-item-size when being stored.", Counter},
	{"store_no_memory", ns + "item_no_memory_total", "The number of times an item could not be stored due to no more memory.", Counter},
	{"lru_crawler_starts", ns + "lru_crawler_starts_total", "Times an LRU crawler was started.", Counter},
	{"crawler_items_checked", ns + "lru_crawler_items_checked_total", "Total items examined by LRU Crawler.", Counter},
	{"crawler_reclaimed", ns + "lru_crawler_reclaimed_total", "Total items freed by LRU Crawler.", Counter},
	{"moves_to_cold", ns + "lru_crawler_moves_to_cold_total", "Total number of items moved from HOT/WARM to COLD LRU's.", Counter},
	{"moves_to_warm", ns + "lru_crawler_moves_to_warm_total", "Total number of items moved from COLD to WARM LRU.", Counter},
	{"moves_within_lru", ns + "lru_crawler_moves_within_lru_total", "Total number of items reshuffled within HOT or WARM LRU's.", Counter},
	{"total_malloced", ns + "malloced_bytes", "Number of bytes of memory allocated to slab pages.", Gauge},
	{"accepting_conns", ns + "accepting_connections", "The Memcached server is currently accepting new connections.", Gauge},
}

// extstoreSeries appear only when extstore_limit_maxbytes does (mnemo has
// no extstore; kept so that the mapping is the exporter's whole).
var extstoreSeries = []series{
	{"extstore_compact_lost", ns + "extstore_compact_lost_total", "Total number of items lost because they were locked during extstore compaction.", Counter},
	{"extstore_compact_rescues", ns + "extstore_compact_rescued_total", "Total number of items moved to a new page during extstore compaction,", Counter},
	{"extstore_compact_skipped", ns + "extstore_compact_skipped_total", "Total number of items dropped due to inactivity during extstore compaction.", Counter},
	{"extstore_page_allocs", ns + "extstore_pages_allocated_total", "Total number of times a page was allocated in extstore.", Counter},
	{"extstore_page_evictions", ns + "extstore_pages_evicted_total", "Total number of times a page was evicted from extstore.", Counter},
	{"extstore_page_reclaims", ns + "extstore_pages_reclaimed_total", "Total number of times an empty extstore page was freed.", Counter},
	{"extstore_pages_free", ns + "extstore_pages_free", "Number of extstore pages not yet containing any items.", Gauge},
	{"extstore_pages_used", ns + "extstore_pages_used", "Number of extstore pages containing at least one item.", Gauge},
	{"extstore_objects_evicted", ns + "extstore_objects_evicted_total", "Total number of items evicted from extstore to free up space.", Counter},
	{"extstore_objects_read", ns + "extstore_objects_read_total", "Total number of items read from extstore.", Counter},
	{"extstore_objects_written", ns + "extstore_objects_written_total", "Total number of items written to extstore.", Counter},
	{"extstore_objects_used", ns + "extstore_objects_used", "Number of items stored in extstore.", Gauge},
	{"extstore_bytes_evicted", ns + "extstore_bytes_evicted_total", "Total number of bytes evicted from extstore to free up space.", Counter},
	{"extstore_bytes_written", ns + "extstore_bytes_written_total", "Total number of bytes written to extstore.", Counter},
	{"extstore_bytes_read", ns + "extstore_bytes_read_total", "Total number of bytes read from extstore.", Counter},
	{"extstore_bytes_used", ns + "extstore_bytes_used", "Current number of bytes used to store items in extstore.", Gauge},
	{"extstore_bytes_fragmented", ns + "extstore_bytes_fragmented", "Current number of bytes in extstore pages allocated but not used to store an object.", Gauge},
	{"extstore_limit_maxbytes", ns + "extstore_bytes_limit", "Number of bytes of external storage allocated for this server.", Gauge},
	{"extstore_io_queue", ns + "extstore_io_queue_depth", "Number of items in the I/O queue waiting to be processed.", Gauge},
}

// settingsSeries come from stats settings, when lru_crawler is "yes";
// a true flag is a "yes"/"no" setting.
var settingsSeries = []struct {
	series
	flag bool
}{
	{series{"lru_crawler", ns + "lru_crawler_enabled", "Whether the LRU crawler is enabled.", Gauge}, true},
	{series{"lru_crawler_sleep", ns + "lru_crawler_sleep", "Microseconds to sleep between LRU crawls.", Gauge}, false},
	{series{"lru_crawler_tocrawl", ns + "lru_crawler_to_crawl", "Max items to crawl per slab per run.", Gauge}, false},
	{series{"lru_maintainer_thread", ns + "lru_crawler_maintainer_thread", "Split LRU mode and background threads.", Gauge}, true},
	{series{"hot_lru_pct", ns + "lru_crawler_hot_percent", "Percent of slab memory reserved for HOT LRU.", Gauge}, false},
	{series{"warm_lru_pct", ns + "lru_crawler_warm_percent", "Percent of slab memory reserved for WARM LRU.", Gauge}, false},
	{series{"hot_max_factor", ns + "lru_crawler_hot_max_factor", "Set idle age of HOT LRU to COLD age * this", Gauge}, false},
	{series{"warm_max_factor", ns + "lru_crawler_warm_max_factor", "Set idle age of WARM LRU to COLD age * this", Gauge}, false},
}

// itemSeries come from stats items, per class (label slab).
var itemSeries = []series{
	{"number", ns + "slab_current_items", "Number of items currently stored in this slab class.", Gauge},
	{"age", ns + "slab_items_age_seconds", "Number of seconds the oldest item has been in the slab class.", Gauge},
	{"crawler_reclaimed", ns + "slab_items_crawler_reclaimed_total", "Number of items freed by the LRU Crawler.", Counter},
	{"evicted", ns + "slab_items_evicted_total", "Total number of times an item had to be evicted from the LRU before it expired.", Counter},
	{"evicted_nonzero", ns + "slab_items_evicted_nonzero_total", "Total number of times an item which had an explicit expire time set had to be evicted from the LRU before it expired.", Counter},
	{"evicted_time", ns + "slab_items_evicted_time_seconds", "Seconds since the last access for the most recent item evicted from this class.", Gauge},
	{"evicted_unfetched", ns + "slab_items_evicted_unfetched_total", "Total nmber of items evicted and never fetched.", Counter},
	{"expired_unfetched", ns + "slab_items_expired_unfetched_total", "Total number of valid items evicted from the LRU which were never touched after being set.", Counter},
	{"outofmemory", ns + "slab_items_outofmemory_total", "Total number of items for this slab class that have triggered an out of memory error.", Counter},
	{"reclaimed", ns + "slab_items_reclaimed_total", "Total number of items reclaimed.", Counter},
	{"tailrepairs", ns + "slab_items_tailrepairs_total", "Total number of times the entries for a particular ID need repairing.", Counter},
	{"moves_to_cold", ns + "slab_items_moves_to_cold", "Number of items moved from HOT or WARM into COLD.", Untyped},
	{"moves_to_warm", ns + "slab_items_moves_to_warm", "Number of items moves from COLD into WARM.", Untyped},
	{"moves_within_lru", ns + "slab_items_moves_within_lru", "Number of times active items were bumped within HOT or WARM.", Untyped},
	{"number_hot", ns + "slab_hot_items", "Number of items presently stored in the HOT LRU.", Gauge},
	{"number_warm", ns + "slab_warm_items", "Number of items presently stored in the WARM LRU.", Gauge},
	{"number_cold", ns + "slab_cold_items", "Number of items presently stored in the COLD LRU.", Gauge},
	{"number_temp", ns + "slab_temporary_items", "Number of items presently stored in the TEMPORARY LRU.", Gauge},
	{"age_hot", ns + "slab_hot_age_seconds", "Age of the oldest item in HOT LRU.", Gauge},
	{"age_warm", ns + "slab_warm_age_seconds", "Age of the oldest item in HOT LRU.", Gauge},
	// memcached 1.6 prints mem_requested in stats items, not stats slabs
	// (the exporter reads both; a counter there, a gauge here, which is
	// what it is).
	{"mem_requested", memRequestedName, memRequestedHelp, Gauge},
}

const (
	memRequestedName = ns + "slab_mem_requested_bytes"
	memRequestedHelp = "Number of bytes of memory actual items take up within a slab."
)

// lruHits are stats items' hits_to_* lines and their lru label values.
var lruHits = [][2]string{{"hits_to_hot", "hot"}, {"hits_to_warm", "warm"}, {"hits_to_cold", "cold"}, {"hits_to_temp", "temporary"}}

// slabSeries come from stats slabs, per class (label slab).
var slabSeries = []series{
	{"chunk_size", ns + "slab_chunk_size_bytes", "Number of bytes allocated to each chunk within this slab class.", Gauge},
	{"chunks_per_page", ns + "slab_chunks_per_page", "Number of chunks within a single page for this slab class.", Gauge},
	{"total_pages", ns + "slab_current_pages", "Number of pages allocated to this slab class.", Gauge},
	{"total_chunks", ns + "slab_current_chunks", "Number of chunks allocated to this slab class.", Gauge},
	{"used_chunks", ns + "slab_chunks_used", "Number of chunks allocated to an item.", Gauge},
	{"free_chunks", ns + "slab_chunks_free", "Number of chunks not yet allocated items.", Gauge},
	{"free_chunks_end", ns + "slab_chunks_free_end", "Number of free chunks at the end of the last allocated page.", Gauge},
	{"mem_requested", memRequestedName, memRequestedHelp, Gauge},
}

// commandOps are the commands whose <op>_hits and <op>_misses the
// exporter reports.
var commandOps = []string{"get", "delete", "incr", "decr", "cas", "touch"}

const (
	commandsName     = ns + "commands_total"
	commandsHelp     = "Total number of all requests broken down by command (get, set, etc.) and status."
	slabCommandsName = ns + "slab_commands_total"
	slabCommandsHelp = "Total number of all requests broken down by command (get, set, etc.) and status per slab."
)

// writeMemcached adds the exporter's series for m.
func writeMemcached(e *exposition, m *memcachedStats) {
	e.add(ns+"up", "Could the memcached server be reached.", Gauge, "1")
	s := m.general
	if v, ok := s["version"]; ok {
		e.add(ns+"version", "The version of this memcached server.", Gauge, "1", "version", v)
	}
	one := func(st map[string]string, sr series, labels ...string) {
		if v, ok := st[sr.stat]; ok {
			if n, ok := number(v); ok {
				e.add(sr.name, sr.help, sr.typ, n, labels...)
			}
		}
	}
	for _, op := range commandOps {
		one(s, series{op + "_hits", commandsName, commandsHelp, Counter}, "command", op, "status", "hit")
		one(s, series{op + "_misses", commandsName, commandsHelp, Counter}, "command", op, "status", "miss")
	}
	one(s, series{"cas_badval", commandsName, commandsHelp, Counter}, "command", "cas", "status", "badval")
	one(s, series{"cmd_flush", commandsName, commandsHelp, Counter}, "command", "flush", "status", "hit")
	// memcached counts cas in cmd_set too; the exporter takes it out.
	if set, ok := sum(s, "cmd_set"); ok {
		if cas, ok := sum(s, "cas_misses", "cas_hits", "cas_badval"); ok {
			e.add(commandsName, commandsHelp, Counter, formatFloat(set-cas), "command", "set", "status", "hit")
		}
	}
	if _, ok := s["extstore_limit_maxbytes"]; ok {
		for _, sr := range extstoreSeries {
			one(s, sr)
		}
	}
	for _, name := range []string{"rusage_user", "rusage_system"} {
		if v, ok := parseTimeval(s[name]); ok {
			which := map[string]string{"rusage_user": "user", "rusage_system": "system"}[name]
			e.add(ns+"process_"+which+"_cpu_seconds_total", "Accumulated "+which+" time for this process.", Counter, formatFloat(v))
		}
	}
	for _, sr := range generalSeries {
		one(s, sr)
	}
	one(m.settings, series{"maxconns", ns + "max_connections", "Maximum number of clients allowed.", Gauge})
	if m.settings["lru_crawler"] == "yes" {
		for _, sr := range settingsSeries {
			if !sr.flag {
				one(m.settings, sr.series)
				continue
			}
			switch m.settings[sr.stat] {
			case "yes":
				e.add(sr.name, sr.help, sr.typ, "1")
			case "no":
				e.add(sr.name, sr.help, sr.typ, "0")
			}
		}
	}
	for _, class := range sortedKeys(m.items) {
		it, slab := m.items[class], strconv.Itoa(class)
		for _, sr := range itemSeries {
			one(it, sr, "slab", slab)
		}
		for _, h := range lruHits {
			one(it, series{h[0], ns + "slab_lru_hits_total", "Number of get_hits to the LRU.", Counter}, "slab", slab, "lru", h[1])
		}
	}
	for _, class := range sortedKeys(m.slabs) {
		sl, slab := m.slabs[class], strconv.Itoa(class)
		for _, op := range commandOps {
			one(sl, series{op + "_hits", slabCommandsName, slabCommandsHelp, Counter}, "slab", slab, "command", op, "status", "hit")
		}
		one(sl, series{"cas_badval", slabCommandsName, slabCommandsHelp, Counter}, "slab", slab, "command", "cas", "status", "badval")
		if set, ok := sum(sl, "cmd_set"); ok {
			if cas, ok := sum(sl, "cas_hits", "cas_badval"); ok {
				e.add(slabCommandsName, slabCommandsHelp, Counter, formatFloat(set-cas), "slab", slab, "command", "set", "status", "hit")
			}
		}
		for _, sr := range slabSeries {
			if _, dup := m.items[class][sr.stat]; dup && sr.stat == "mem_requested" {
				continue // already from stats items
			}
			one(sl, sr, "slab", slab)
		}
	}
}

// sum adds the named stats; ok is false if one is missing or not a
// number.
func sum(s map[string]string, names ...string) (float64, bool) {
	var t float64
	for _, n := range names {
		v, err := strconv.ParseFloat(s[n], 64)
		if err != nil {
			return 0, false
		}
		t += v
	}
	return t, true
}

// parseTimeval reads memcached's "seconds.microseconds".
func parseTimeval(v string) (float64, bool) {
	sec, usec, ok := strings.Cut(v, ".")
	if !ok {
		return 0, false
	}
	s, err1 := strconv.ParseFloat(sec, 64)
	u, err2 := strconv.ParseFloat(usec, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return s + u/1e6, true
}

func sortedKeys(m map[int]map[string]string) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
