package interop

import (
	"strings"
	"testing"
)

// TestNoLRUCrawler: -o no_lru_crawler starts, as in memcached, with the
// lru_crawler commands that need the crawler refused until "lru_crawler
// enable"; -o temporary_ttl shows in stats settings as memcached shows it.
// The same requests go to Debian's memcached and to mnemo, and the replies
// must be the same bytes.
func TestNoLRUCrawler(t *testing.T) {
	flags := []string{"-o", "no_lru_crawler,temporary_ttl=30"}
	servers := map[string]string{
		"memcached": startMemcached(t, flags...),
		"mnemo":     startMnemo(t, flags...),
	}
	// Each request is answered by exactly one line. Nothing is sent to a
	// started crawler: memcached's, once enabled, may be busy with a crawl
	// of its own (BUSY), and still stopping after "disable" (ERROR an
	// unknown error happened).
	requests := []string{
		"lru_crawler metadump all",
		"lru_crawler crawl 1",
		"lru_crawler crawl all",
		"lru_crawler metadump hash",
		"lru_crawler enable",
		"lru_crawler enable",
	}
	replies := map[string][]string{}
	settings := map[string]map[string]string{}
	for name, addr := range servers {
		c := dial(t, addr)
		_, settings[name] = c.stats("settings")
		for _, r := range requests {
			c.send(r + "\r\n")
			replies[name] = append(replies[name], c.line())
		}
	}
	for i, r := range requests {
		if m, mc := replies["mnemo"][i], replies["memcached"][i]; m != mc {
			t.Errorf("%q: mnemo %q, memcached %q", r, m, mc)
		}
	}
	if got := replies["mnemo"][0]; !strings.Contains(got, "disabled") {
		t.Errorf("metadump with no_lru_crawler: %q, want it refused", got)
	}
	for _, k := range []string{"lru_crawler", "temp_lru", "temporary_ttl"} {
		if m, mc := settings["mnemo"][k], settings["memcached"][k]; m != mc || m == "" {
			t.Errorf("stats settings %s: mnemo %q, memcached %q", k, m, mc)
		}
	}
}
