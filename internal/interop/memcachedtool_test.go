package interop

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// memcachedTool is Debian's memcached-tool (package memcached).
const memcachedTool = "/usr/share/memcached/scripts/memcached-tool"

// runMemcachedTool runs memcached-tool against addr in mode and returns
// its standard output. The bound (patience) only stops a hang (before
// lru_crawler metadump, "dump" and "keys" waited forever on mnemo).
func runMemcachedTool(t *testing.T, addr string, mode ...string) string {
	t.Helper()
	perl := lookPath(t, "perl", "perl")
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	cmd := exec.CommandContext(ctx, perl, append([]string{memcachedTool, addr}, mode...)...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctx.Err() != nil {
		t.Fatalf("memcached-tool %s %q did not finish in %v; output so far:\n%s", addr, mode, patience, out)
	}
	if err != nil {
		t.Fatalf("memcached-tool %s %q: %v; stderr: %s", addr, mode, err, stderr.String())
	}
	return string(out)
}

// toolItems are the items the memcached-tool test stores: a fetched one
// with flags, one with an expiry time and a key with '%', a key with
// UTF-8 and Latin-1 bytes, and enough plain ones to fill a few writes.
func loadToolItems(t *testing.T, addr string) (keys []string) {
	t.Helper()
	c := dial(t, addr)
	var b strings.Builder
	b.WriteString("set foo 5 0 3\r\nbar\r\nset b%20x 0 1000 1\r\nx\r\nset \xc3\xa9t\xe9 0 0 1\r\ny\r\n")
	keys = []string{"foo", "b%20x", "\xc3\xa9t\xe9"}
	for i := range 300 {
		k := fmt.Sprintf("key:%03d", i)
		fmt.Fprintf(&b, "set %s %d 0 %d\r\n%s\r\n", k, i, len(k), k)
		keys = append(keys, k)
	}
	b.WriteString("get foo\r\n")
	c.send(b.String())
	for range keys {
		if l := c.line(); l != "STORED" {
			t.Fatalf("set: %q", l)
		}
	}
	for _, want := range []string{"VALUE foo 5 3", "bar", "END"} {
		if l := c.line(); l != want {
			t.Fatalf("get foo: %q, want %q", l, want)
		}
	}
	return keys
}

var (
	toolKeyLine = regexp.MustCompile(`^key=(\S+) exp=(-1|\d+) la=(\d+) (cas=\d+ fetch=(?:yes|no) cls=\d+ size=\d+)$`)
	toolAddLine = regexp.MustCompile(`^add (\S+) (\d+) (\d+) (\d+)\r$`)
)

// normaliseKeys makes the output of "memcached-tool keys" comparable:
// la becomes T and exp T+<exp-la>, and the lines are sorted.
func normaliseKeys(t *testing.T, out string) []string {
	t.Helper()
	var lines []string
	for l := range strings.SplitSeq(strings.TrimSuffix(out, "\n"), "\n") {
		m := toolKeyLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("memcached-tool keys: line %q is not a metadump line", l)
		}
		la, _ := strconv.ParseInt(m[3], 10, 64)
		exp := m[2]
		if exp != "-1" {
			e, _ := strconv.ParseInt(exp, 10, 64)
			exp = fmt.Sprintf("T%+d", e-la)
		}
		lines = append(lines, fmt.Sprintf("key=%s exp=%s la=T %s", m[1], exp, m[4]))
	}
	slices.Sort(lines)
	return lines
}

// normaliseDump makes the output of "memcached-tool dump" comparable: one
// string per item ("add <key> <flags> <exptime> <bytes>\r\n<value>\r\n"),
// a non-zero exptime (absolute, from the wall clock) written as E, sorted.
func normaliseDump(t *testing.T, out string) []string {
	t.Helper()
	var items []string
	lines := strings.Split(out, "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		m := toolAddLine.FindStringSubmatch(lines[i])
		if m == nil {
			t.Fatalf("memcached-tool dump: line %q is not an add", lines[i])
		}
		exp := m[3]
		if exp != "0" {
			exp = "E"
		}
		items = append(items, fmt.Sprintf("add %s %s %s %s\r\n%s\n", m[1], m[2], exp, m[4], lines[i+1]))
	}
	if lines[len(lines)-1] != "" || len(lines)%2 != 1 {
		t.Fatalf("memcached-tool dump: output does not end with a whole item: %q", out)
	}
	slices.Sort(items)
	return items
}

// TestMemcachedTool runs Debian's memcached-tool against mnemo and
// memcached holding the same items: "keys" and "dump" list the same keys
// (up to the clock) and end, "dump N" stops after N keys, "stats" and
// "display" work.
func TestMemcachedTool(t *testing.T) {
	mn, mc := startMnemo(t), startMemcached(t)
	keys := loadToolItems(t, mn)
	loadToolItems(t, mc)

	// keys: the metadump lines.
	gotKeys, wantKeys := normaliseKeys(t, runMemcachedTool(t, mn, "keys")), normaliseKeys(t, runMemcachedTool(t, mc, "keys"))
	if !slices.Equal(gotKeys, wantKeys) {
		t.Errorf("memcached-tool keys:\nmnemo     %q\nmemcached %q", gotKeys, wantKeys)
	}
	if len(gotKeys) != len(keys) {
		t.Errorf("memcached-tool keys listed %d keys, want %d", len(gotKeys), len(keys))
	}
	for _, want := range []string{
		"key=foo exp=-1 la=T cas=1 fetch=yes cls=1 size=69",
		"key=b%2520x exp=T+1000 la=T cas=2 fetch=no cls=1 size=65",
		"key=%C3%A9t%E9 exp=-1 la=T cas=3 fetch=no cls=1 size=64",
	} {
		if !slices.Contains(gotKeys, want) {
			t.Errorf("memcached-tool keys on mnemo: no line %q", want)
		}
	}

	// dump: every item as an add command, read back with get.
	gotDump, wantDump := normaliseDump(t, runMemcachedTool(t, mn, "dump")), normaliseDump(t, runMemcachedTool(t, mc, "dump"))
	if !slices.Equal(gotDump, wantDump) {
		t.Errorf("memcached-tool dump:\nmnemo     %q\nmemcached %q", gotDump, wantDump)
	}
	if len(gotDump) != len(keys) {
		t.Errorf("memcached-tool dump listed %d items, want %d", len(gotDump), len(keys))
	}
	for _, want := range []string{"add foo 5 0 3\r\nbar\r\n", "add b%20x 0 E 1\r\nx\r\n", "add key:007 7 0 7\r\nkey:007\r\n"} {
		if !slices.Contains(gotDump, want) {
			t.Errorf("memcached-tool dump on mnemo: no item %q", want)
		}
	}

	// dump with a limit hangs up in the middle of the metadump.
	if got := normaliseDump(t, runMemcachedTool(t, mn, "dump", "5")); len(got) != 5 {
		t.Errorf("memcached-tool dump 5 on mnemo listed %d items: %q", len(got), got)
	}
	// The server goes on serving after the client hung up on its dump.
	c := dial(t, mn)
	c.send("get foo\r\n")
	for _, want := range []string{"VALUE foo 5 3", "bar", "END"} {
		if l := c.line(); l != want {
			t.Fatalf("get foo after dump 5: %q, want %q", l, want)
		}
	}

	// stats: every general stat, sorted by name.
	stats := runMemcachedTool(t, mn, "stats")
	if !regexp.MustCompile(`(?m)^\s+curr_items\s+` + strconv.Itoa(len(keys)) + `\r?$`).MatchString(stats) {
		t.Errorf("memcached-tool stats on mnemo has no curr_items %d:\n%s", len(keys), stats)
	}

	// display: the slab classes with items.
	display := runMemcachedTool(t, mn)
	lines := strings.Split(strings.TrimSuffix(display, "\n"), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "  #  Item_Size  Max_age") {
		t.Fatalf("memcached-tool display on mnemo:\n%s", display)
	}
	if f := strings.Fields(lines[1]); len(f) < 5 || f[0] != "1" || f[4] != strconv.Itoa(len(keys)) {
		t.Errorf("memcached-tool display on mnemo: want class 1 with %d items:\n%s", len(keys), display)
	}
}
