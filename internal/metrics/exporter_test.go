package metrics

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The two files in testdata were captured together from Debian's
// memcached 1.6.18 after some traffic (sets, hits, misses, incr, decr,
// cas, touch, delete): the four stats groups the exporter reads, and a
// scrape of memcached_exporter v0.14.3 (built from its module) of that
// same server moments later, less the exporter's own go_*, process_* and
// build_info series.

// readGroups reads the captured stats: "# stats <group>" lines start a
// group.
func readGroups(t *testing.T) Stats {
	b, err := os.ReadFile("testdata/memcached-1.6.18-stats.txt")
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]string{}
	group := ""
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "# stats"):
			group = strings.TrimSpace(strings.TrimPrefix(line, "# stats"))
		case strings.HasPrefix(line, "STAT "):
			groups[group] += line + "\n"
		}
	}
	return fakeStats(groups)
}

// exposed parses an exposition into its types and its samples, keyed by
// name{labels} with the labels sorted (the client library sorts them).
func exposed(t *testing.T, text string) (types map[string]string, samples map[string]string) {
	types, samples = map[string]string{}, map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
		}
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		series, value := line[:i], line[i+1:]
		if j := strings.IndexByte(series, '{'); j >= 0 {
			labels := strings.Split(strings.TrimSuffix(series[j+1:], "}"), ",")
			slices.Sort(labels)
			series = series[:j] + "{" + strings.Join(labels, ",") + "}"
		}
		samples[series] = value
	}
	return types, samples
}

// TestSameSeriesAsTheExporter checks that the series derived from
// memcached's stats are the exporter's: the same names, labels and
// values, and the same types but for the ones promtool's lint rejects.
func TestSameSeriesAsTheExporter(t *testing.T) {
	b, err := os.ReadFile("testdata/memcached_exporter-0.14.3.prom")
	if err != nil {
		t.Fatal(err)
	}
	wantTypes, want := exposed(t, string(b))
	out, err := Gather(Source{Stats: readGroups(t)})
	if err != nil {
		t.Fatal(err)
	}
	gotTypes, got := exposed(t, string(out))
	// Figures that moved between the capture of the stats and the
	// exporter's scrape (its own connection, the clock, the CPU).
	moved := map[string]bool{
		"memcached_uptime_seconds": true, "memcached_time_seconds": true,
		"memcached_process_user_cpu_seconds_total": true, "memcached_process_system_cpu_seconds_total": true,
		"memcached_read_bytes_total": true, "memcached_written_bytes_total": true,
		"memcached_connections_total": true, "memcached_current_connections": true,
	}
	// Types changed so that promtool's lint passes (see memcached.go).
	retyped := map[string]string{
		"memcached_uptime_seconds":                  "gauge",
		"memcached_slab_items_evicted_time_seconds": "gauge",
		"memcached_slab_items_moves_to_cold":        "untyped",
		"memcached_slab_items_moves_to_warm":        "untyped",
		"memcached_slab_items_moves_within_lru":     "untyped",
		"memcached_slab_mem_requested_bytes":        "gauge",
	}
	for series, v := range want {
		g, ok := got[series]
		name, _, _ := strings.Cut(series, "{")
		switch {
		case !ok:
			t.Errorf("missing %s (the exporter: %s)", series, v)
		case !sameNumber(g, v) && !moved[name]:
			t.Errorf("%s = %s, the exporter: %s", series, g, v)
		}
	}
	for series := range got {
		if _, ok := want[series]; !ok && strings.HasPrefix(series, "memcached_") {
			t.Errorf("%s is not the exporter's", series)
		}
	}
	for name, typ := range wantTypes {
		if r, ok := retyped[name]; ok {
			typ = r
		}
		if gotTypes[name] != typ {
			t.Errorf("%s: type %s, the exporter's %s", name, gotTypes[name], typ)
		}
	}
	checkPromtool(t, string(out))
}

func sameNumber(a, b string) bool {
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	return err1 == nil && err2 == nil && x == y
}
