package memcache_test

import (
	"testing"
)

// TestStatsClassCounters checks the per-class command counters of stats
// slabs and the LRU hits of stats items: after commands on small items
// (all in slab class 1 on memcached too) they equal the general counters,
// whose sums they are in memcached. get_expired counts a get of an
// expired item and get_flushed one of a flushed item.
func TestStatsClassCounters(t *testing.T) {
	srv := start(t, opts{})
	c := dial(t, srv.addr)
	c.send("set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nset n 0 0 1\r\n5\r\nget a b nokey\r\n" +
		"incr n 1\r\ndecr n 1\r\ndelete b\r\ntouch a 0\r\ngets a\r\n")
	c.readUntil("VALUE a 0 1 ")
	cas := string(c.readUntil("\r\n"))
	cas = cas[:len(cas)-2]
	c.readUntil("END\r\n")
	c.send("cas a 0 0 1 " + cas + "\r\n3\r\ncas a 0 0 1 1\r\n4\r\n" +
		"set x 0 -1 1\r\nx\r\nget x\r\nset f 0 0 1\r\nf\r\nflush_all\r\nget f\r\nmn\r\n")
	c.readUntil("MN\r\n")
	_, general := c.stats("")
	_, slabs := c.stats("slabs")
	_, items := c.stats("items")
	for class, name := range map[string]string{
		"1:get_hits": "get_hits", "1:cmd_set": "cmd_set", "1:delete_hits": "delete_hits",
		"1:incr_hits": "incr_hits", "1:decr_hits": "decr_hits", "1:cas_hits": "cas_hits",
		"1:cas_badval": "cas_badval", "1:touch_hits": "touch_hits",
	} {
		if slabs[class] != general[name] || general[name] == "0" && name != "touch_hits" {
			t.Errorf("stats slabs %s = %q, stats %s = %q: want equal, not 0", class, slabs[class], name, general[name])
		}
	}
	if !oracleMode() && items["items:1:hits_to_cold"] != general["get_hits"] {
		t.Errorf("stats items hits_to_cold = %q, get_hits %q: want equal (every item is in the cold LRU)", items["items:1:hits_to_cold"], general["get_hits"])
	}
	if general["get_expired"] != "1" || general["get_flushed"] != "1" {
		t.Errorf("get_expired %q get_flushed %q, want 1 and 1", general["get_expired"], general["get_flushed"])
	}
}

// TestBinaryStatClassCounters checks that the binary protocol's STAT
// slabs and STAT items carry the per-class counters too.
func TestBinaryStatClassCounters(t *testing.T) {
	srv := start(t, opts{})
	c := dial(t, srv.addr)
	c.send(req(opSet, 1, 0, store(0, 0), "k", "v") + req(opGet, 2, 0, "", "k", ""))
	c.read(24 + 24 + 4 + 1)        // SET's reply, GET's with flags and value
	hits := "items:1:hits_to_cold" // every item of mnemo's is in the cold LRU
	if oracleMode() {
		hits = "items:1:hits_to_hot" // a new item of memcached's in the hot one
	}
	for group, want := range map[string]string{"slabs": "1:get_hits", "items": hits} {
		c.send(req(opStat, 3, 0, "", group, ""))
		stats := map[string]string{}
		for {
			h := c.read(24)
			klen := int(h[2])<<8 | int(h[3])
			blen := int(h[8])<<24 | int(h[9])<<16 | int(h[10])<<8 | int(h[11])
			body := c.read(blen)
			if klen == 0 {
				break
			}
			stats[string(body[:klen])] = string(body[klen:])
		}
		if stats[want] != "1" {
			t.Errorf("binary STAT %s: %s = %q, want 1 (stats %q)", group, want, stats[want], stats)
		}
	}
}
