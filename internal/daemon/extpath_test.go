package daemon

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestExtPathSelectsPersistent: memcached's -o ext_path=PATH:SIZE starts
// the persistent engine on PATH with a disk budget of SIZE; stats
// settings shows the ext_* lines as memcached 1.6.18 does with ext_path
// set, and stats the budget; items survive a restart (an extstore user
// switches by changing the binary). --engine memory with ext_path is
// refused with a clear error.
func TestExtPathSelectsPersistent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ext")
	args := append(asUser(), "-o", "ext_path="+dir+":64m,ext_item_size=1024,ext_drop_unread")
	p, addr := serving(t, args...)
	c := dialAddr(t, addr)
	settings := strings.Join(c.do("stats settings\r\n", isEnd), "")
	for _, want := range []string{
		"STAT engine persistent\r\n",
		"STAT engine_config path=" + dir + ",disk_size=67108864\r\n",
		// As Debian's memcached 1.6.18 shows them with -o ext_path=/tmp/x:64m
		// (and these two options).
		"STAT ext_item_size 1024\r\nSTAT ext_item_age 4294967295\r\nSTAT ext_low_ttl 0\r\nSTAT ext_recache_rate 2000\r\n" +
			"STAT ext_wbuf_size 4194304\r\nSTAT ext_compact_under 0\r\nSTAT ext_drop_under 0\r\nSTAT ext_max_sleep 1000000\r\n" +
			"STAT ext_max_frag 0.80\r\nSTAT slab_automove_freeratio 0.010\r\nSTAT ext_drop_unread yes\r\n",
	} {
		if !strings.Contains(settings, want) {
			t.Errorf("stats settings lacks %q:\n%s", want, settings)
		}
	}
	stats := strings.Join(c.do("stats\r\n", isEnd), "")
	for _, want := range []string{"STAT persistent_disk_limit_bytes 67108864\r\n", "STAT persistent_disk_evictions 0\r\n"} {
		if !strings.Contains(stats, want) {
			t.Errorf("stats lacks %q", want)
		}
	}
	if got := c.do("set k 0 0 5\r\nhello\r\n", anyLine); got[0] != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait()

	p, addr = serving(t, args...)
	if got := dialAddr(t, addr).do("get k\r\n", isEnd); strings.Join(got, "") != "VALUE k 0 5\r\nhello\r\nEND\r\n" {
		t.Errorf("after a restart: %q; output:\n%s", got, p.out.String())
	}

	q := runMnemo(t, nil, append(asUser(), "-l", "127.0.0.1:0", "--engine", "memory", "-o", "ext_path="+dir+":64m")...)
	if code := q.wait(); code == 0 {
		t.Errorf("--engine memory -o ext_path: exit status 0")
	}
	if out := q.out.String(); !strings.Contains(out, "cannot be combined with --engine memory") {
		t.Errorf("--engine memory -o ext_path: %q", out)
	}
}
