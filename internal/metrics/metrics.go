// Package metrics serves mnemo's figures in the Prometheus text format
// (/metrics, opt-in with --metrics-listen):
//
//   - the series of the Prometheus memcached_exporter v0.14.3, under its
//     names and labels, derived from the same stats lines that exporter
//     reads (stats, stats slabs, stats items, stats settings), through a
//     Stats function that runs a stats group in-process, so that a field
//     added to stats reaches /metrics without a change here;
//   - latency histograms per command (mnemo_command_duration_seconds),
//     fed by Latency on the request path;
//   - the engines' own figures (the memory_* and persistent_* lines of
//     stats) as mnemo_* series;
//   - the hot keys, when tracked (mnemo_hotkey_requests and
//     mnemo_hotkey_bytes, top N only).
//
// # Why no metrics library
//
// DESIGN.md picked github.com/VictoriaMetrics/metrics. Its metadata lines
// are "# HELP name" with no text, which promtool check metrics rejects
// ("no help text"), and without them it writes no HELP at all; its
// PrometheusHistogram takes a mutex per observation, shared by every
// connection (47 ns per observation against Latency's 23 ns on two
// cores, BENCHMARKS.md). The series here are derived at scrape time from text
// figures, which a library's registered metrics do not model, so the
// package writes the format itself (a hundred lines, expo.go) and keeps
// the request path lock-free (latency.go). The output is checked with
// promtool in the daemon's tests.
package metrics

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mnemo-cache/mnemo/internal/hotkeys"
)

// Source is what a scrape reads.
type Source struct {
	// Stats runs a stats group. Required.
	Stats Stats
	// Latency holds the per-command histograms; nil: none.
	Latency *Latency
	// HotKeys reports the hot keys; nil: none.
	HotKeys *hotkeys.Tracker
}

// Handler serves /metrics from src.
func Handler(src Source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := Gather(src)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write(body)
	})
}

// Gather returns one scrape's exposition.
func Gather(src Source) ([]byte, error) {
	m, err := readMemcachedStats(src.Stats)
	if err != nil {
		return nil, err
	}
	e := newExposition()
	writeMemcached(e, m)
	writeEngine(e, m.general)
	if src.Latency != nil {
		src.Latency.write(e)
	}
	if src.HotKeys != nil {
		writeHotKeys(e, src.HotKeys)
	}
	return e.bytes(), nil
}

// engineCounters are the engines' figures that only grow (until stats
// reset); they become counters named ..._total. The others are gauges.
var engineCounters = map[string]bool{
	"memory_reinserted":               true,
	"memory_compactions":              true,
	"memory_compacted":                true,
	"memory_segments_released":        true,
	"persistent_queue_writes":         true,
	"persistent_queue_coalesced":      true,
	"persistent_queue_full_waits":     true,
	"persistent_queue_l0_waits":       true,
	"persistent_store_write_stalls":   true,
	"persistent_store_write_stall_us": true,
	"persistent_commits":              true,
	"persistent_commit_items":         true,
	"persistent_commit_errors":        true,
	"persistent_write_errors":         true,
	"persistent_disk_reads":           true,
	"persistent_disk_hits":            true,
	"persistent_disk_misses":          true,
	"persistent_read_errors":          true,
	"persistent_corrupt_records":      true,
	"persistent_background_errors":    true,
	"persistent_corrupt_blocks":       true,
	"persistent_wal_damaged":          true,
	"persistent_fatal_errors":         true,
	"persistent_sweep_passes":         true,
	"persistent_sweep_scanned":        true,
	"persistent_sweep_removed":        true,
	"persistent_disk_evictions":       true,
	"persistent_disk_evicted_bytes":   true,
	"persistent_disk_compactions":     true,
	"persistent_disk_budget_waits":    true,
	"persistent_sweep_backoffs":       true,
	"persistent_queue_ttl_writes":     true,
	"persistent_commits_capped":       true,
	"persistent_sweep_compactions":    true,
	"persistent_queue_lag_waits":      true,
	"persistent_heap_releases":        true,
	"persistent_sweep_ranges":         true,
	"persistent_sweep_range_checks":   true,
	"persistent_sweep_range_kept":     true,
	"persistent_sweep_covers":         true,
	"persistent_sweep_deferrals":      true,
}

// enginePrefixes mark the engines' own lines in stats.
var enginePrefixes = []string{"memory_", "persistent_"}

// writeEngine adds the engines' figures from the general stats as mnemo_*
// series, in the names promtool accepts: a figure in microseconds (_us)
// becomes seconds; a gauge that ends in _total loses the suffix
// (memory_segments_total: mnemo_memory_segments); a figure that is not a
// number (persistent_durability async) becomes an info series,
// mnemo_persistent_durability_info{value="async"} 1.
func writeEngine(e *exposition, general map[string]string) {
	names := make([]string, 0, len(general))
	for name := range general {
		for _, p := range enginePrefixes {
			if strings.HasPrefix(name, p) {
				names = append(names, name)
				break
			}
		}
	}
	slices.Sort(names)
	for _, name := range names {
		v := general[name]
		help := "The engine's " + name + " figure from stats."
		n, ok := number(v)
		switch {
		case !ok:
			e.add("mnemo_"+name+"_info", help+" Its value is the value label.", Gauge, "1", "value", v)
		case engineCounters[name] && strings.HasSuffix(name, "_us"):
			f, _ := strconv.ParseFloat(n, 64)
			e.add("mnemo_"+strings.TrimSuffix(name, "_us")+"_seconds_total", help+" In seconds (stats has microseconds).", Counter, formatFloat(f/1e6))
		case engineCounters[name]:
			e.add("mnemo_"+name+"_total", help, Counter, n)
		case strings.HasSuffix(name, "_us"):
			f, _ := strconv.ParseFloat(n, 64)
			e.add("mnemo_"+strings.TrimSuffix(name, "_us")+"_seconds", help+" In seconds (stats has microseconds).", Gauge, formatFloat(f/1e6))
		default:
			e.add("mnemo_"+strings.TrimSuffix(name, "_total"), help, Gauge, n)
		}
	}
}

// writeHotKeys adds the hot-key rankings. A key that is not printable
// UTF-8 without spaces is shown in base64, prefixed "base64:".
func writeHotKeys(e *exposition, t *hotkeys.Tracker) {
	rep := t.Report()
	cfg := t.Config()
	window := " over the last " + cfg.Window.String() + " (estimated from 1 in " + strconv.Itoa(int(cfg.Sample)) + " requests; top " + strconv.Itoa(cfg.Top) + " only)."
	e.family("mnemo_hotkey_requests", "Requests for each of the most requested keys"+window, Gauge)
	e.family("mnemo_hotkey_bytes", "Value bytes read and written for each of the keys that moved the most"+window, Gauge)
	for i, en := range rep.Requests {
		e.add("mnemo_hotkey_requests", "", Gauge, strconv.FormatUint(en.Count, 10), "rank", strconv.Itoa(i+1), "key", KeyLabel(en.Key))
	}
	for i, en := range rep.Bytes {
		e.add("mnemo_hotkey_bytes", "", Gauge, strconv.FormatUint(en.Count, 10), "rank", strconv.Itoa(i+1), "key", KeyLabel(en.Key))
	}
}

// KeyLabel returns key as a label value or stats value: the key itself
// when it is printable text without spaces, else "base64:" and its
// standard base64 encoding.
func KeyLabel(key []byte) string {
	if printable(key) {
		return string(key)
	}
	return "base64:" + base64.StdEncoding.EncodeToString(key)
}

func printable(key []byte) bool {
	if !utf8.Valid(key) || strings.HasPrefix(string(key), "base64:") {
		return false
	}
	for _, c := range key {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
