package memcache_test

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestAdmin covers the text protocol's commands that do not store items:
// stats groups with exact replies, flush_all, version, verbosity, quit,
// shutdown (disabled), cache_memlimit and unknown commands.
func TestAdmin(t *testing.T) {
	const setK = "set k 0 0 1\r\na\r\n"
	run(t, []transcript{
		// stats groups with fixed replies
		one("stats reset", "stats reset\r\n", "RESET\r\n"),
		one("unknown stats group", "stats nonsense\r\n", "ERROR\r\n"),
		one("stats detail usage",
			"stats detail\r\nstats detail bogus\r\n",
			"CLIENT_ERROR usage: stats detail on|off|dump\r\nCLIENT_ERROR usage: stats detail on|off|dump\r\n"),
		one("stats detail on, dump, off",
			"stats detail dump\r\nstats detail on\r\nset p:1 0 0 1\r\na\r\nget p:1 p:2 q\r\ndelete p:1\r\nset nodelim 0 0 1\r\nb\r\n"+
				"stats detail dump\r\nstats detail off\r\nget p:1\r\nstats detail dump\r\n",
			"END\r\nOK\r\nSTORED\r\nVALUE p:1 0 1\r\na\r\nEND\r\nDELETED\r\nSTORED\r\n"+
				"PREFIX p get 2 hit 1 set 1 del 1\r\nEND\r\nOK\r\nEND\r\nPREFIX p get 2 hit 1 set 1 del 1\r\nEND\r\n"),
		{name: "stats reset clears stats detail",
			steps: []step{{send: "stats detail on\r\nset p:1 0 0 1\r\na\r\nstats reset\r\nstats detail dump\r\n",
				want: "OK\r\nSTORED\r\nRESET\r\nEND\r\n"}}},
		{name: "stats detail on from the start (-D)",
			opts: opts{detail: true},
			steps: []step{{send: "set b:1 0 0 1\r\nb\r\nget b:1\r\nstats detail dump\r\n",
				want: "STORED\r\nVALUE b:1 0 1\r\nb\r\nEND\r\nPREFIX b get 1 hit 1 set 1 del 0\r\nEND\r\n"}}},
		// memcached lists prefixes in its hash table's order; mnemo sorts them.
		{name: "stats detail dump of several prefixes",
			steps: []step{{send: "stats detail on\r\nset b:1 0 0 1\r\nb\r\nset a:1 0 0 1\r\na\r\nget b:1\r\nstats detail dump\r\n",
				want: "OK\r\nSTORED\r\nSTORED\r\nVALUE b:1 0 1\r\nb\r\nEND\r\nPREFIX a get 0 hit 0 set 1 del 0\r\nPREFIX b get 1 hit 1 set 1 del 0\r\nEND\r\n"}},
			mnemoOnly: "memcached lists prefixes in hash table order"},
		one("stats cachedump argument errors",
			"stats cachedump\r\nstats cachedump 1\r\nstats cachedump x 0\r\nstats cachedump 99 0\r\nstats cachedump 2 0\r\n",
			"CLIENT_ERROR bad command line\r\nCLIENT_ERROR bad command line\r\nCLIENT_ERROR bad command line format\r\n"+
				"CLIENT_ERROR Illegal slab id\r\nEND\r\n"),
		// memcached lists only the items its LRU maintainer has moved out of
		// the hot LRU, so a fresh item shows after a moment, or never.
		{name: "stats cachedump lists an item",
			steps:     []step{{send: setK + "stats cachedump 1 0\r\n", want: "STORED\r\nITEM k [1 b; 0 s]\r\nEND\r\n"}},
			mnemoOnly: "memcached's cachedump depends on its LRU maintainer's timing"},
		{name: "stats cachedump shows the expiry time",
			steps: []step{{advance: 1, send: "set k 0 100 3\r\nabc\r\nstats cachedump 1 0\r\n",
				want: "STORED\r\nITEM k [3 b; " + strconv.Itoa(epoch+101) + " s]\r\nEND\r\n"}}},
		{name: "stats cachedump disabled (-X)",
			opts:  opts{noDumping: true},
			steps: []step{{send: setK + "stats cachedump 1 0\r\n", want: "STORED\r\nCLIENT_ERROR stats cachedump not allowed\r\n"}}},
		// flush_all
		one("flush_all",
			setK+"set l 0 0 1\r\nb\r\nflush_all\r\nget k l\r\nset k 0 0 1\r\nc\r\nget k\r\n",
			"STORED\r\nSTORED\r\nOK\r\nEND\r\nSTORED\r\nVALUE k 0 1\r\nc\r\nEND\r\n"),
		one("flush_all forms",
			setK+"flush_all 0\r\nget k\r\n"+setK+"flush_all noreply\r\nget k\r\n"+setK+"flush_all 0 noreply\r\nget k\r\nflush_all x\r\n",
			"STORED\r\nOK\r\nEND\r\nSTORED\r\nEND\r\nSTORED\r\nEND\r\nCLIENT_ERROR invalid exptime argument\r\n"),
		{name: "flush_all with a delay",
			steps: []step{
				{send: setK + "flush_all 10\r\nget k\r\n", want: "STORED\r\nOK\r\nVALUE k 0 1\r\na\r\nEND\r\n"},
				{advance: 9, send: "get k\r\n", want: "VALUE k 0 1\r\na\r\nEND\r\n"},
				{advance: 1, send: "get k\r\n", want: "END\r\n"},
				{advance: 1, send: "set new 0 0 1\r\nn\r\nget new\r\n", want: "STORED\r\nVALUE new 0 1\r\nn\r\nEND\r\n"},
			}},
		{name: "a later flush_all replaces a pending one",
			steps: []step{
				{send: setK + "flush_all 10\r\nflush_all 100\r\n", want: "STORED\r\nOK\r\nOK\r\n"},
				{advance: 10, send: "get k\r\n", want: "VALUE k 0 1\r\na\r\nEND\r\n"},
				{advance: 90, send: "get k\r\n", want: "END\r\n"},
			}},
		{name: "flush_all disabled (-F)",
			opts: opts{noFlush: true},
			steps: []step{{send: setK + "flush_all\r\nflush_all 10\r\nget k\r\n",
				want: "STORED\r\nCLIENT_ERROR flush_all not allowed\r\nCLIENT_ERROR flush_all not allowed\r\nVALUE k 0 1\r\na\r\nEND\r\n"}}},
		// version, verbosity, unknown commands
		one("version", "version\r\n", "VERSION "+version()+"\r\n"),
		one("verbosity",
			"verbosity 1\r\nverbosity 1 noreply\r\nverbosity 5\r\nverbosity 0\r\nverbosity\r\nverbosity x\r\n",
			"OK\r\nOK\r\nOK\r\nERROR\r\nCLIENT_ERROR bad command line format\r\n"),
		one("unknown commands and empty lines",
			"bogus\r\n\r\nGET k\r\nmn\r\n",
			"ERROR\r\nERROR\r\nERROR\r\nMN\r\n"),
		one("cache_memlimit",
			"cache_memlimit 100\r\ncache_memlimit 1\r\ncache_memlimit x\r\ncache_memlimit\r\ncache_memlimit 64\r\n",
			"OK\r\nMEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\nERROR\r\nERROR\r\nOK\r\n"),
		// quit and shutdown
		{name: "quit closes, and what follows is not run",
			steps:  []step{{send: setK + "quit\r\nset k 0 0 1\r\nb\r\n", want: "STORED\r\n"}},
			closes: true},
		{name: "quit with an argument closes too",
			steps:  []step{{send: "get k\r\nquit extra\r\nversion\r\n", want: "END\r\n"}},
			closes: true},
		one("shutdown disabled", "shutdown\r\nshutdown graceful\r\nmn\r\n", "ERROR: shutdown not enabled\r\nERROR: shutdown not enabled\r\nMN\r\n"),
	})
}

// TestStatsCachedumpLimit checks that "stats cachedump 1 N" lists at most
// N items, and 0 lists them all, each once.
func TestStatsCachedumpLimit(t *testing.T) {
	skipOnOracle(t, "memcached's cachedump depends on its LRU maintainer's timing")
	srv := start(t, opts{})
	c := dial(t, srv.addr)
	c.send("set a 0 0 1\r\na\r\nset b 0 0 2\r\nbb\r\nset c 0 0 3\r\nccc\r\n")
	c.expect("sets", "STORED\r\nSTORED\r\nSTORED\r\n")
	all := []string{"ITEM a [1 b; 0 s]", "ITEM b [2 b; 0 s]", "ITEM c [3 b; 0 s]"}
	for _, tt := range []struct{ limit, want int }{{0, 3}, {2, 2}, {3, 3}, {10, 3}} {
		c.send("stats cachedump 1 " + strconv.Itoa(tt.limit) + "\r\n")
		lines := strings.Split(strings.TrimSuffix(string(c.readUntil("END\r\n")), "\r\nEND\r\n"), "\r\n")
		if len(lines) != tt.want {
			t.Errorf("limit %d: %d items %q, want %d", tt.limit, len(lines), lines, tt.want)
		}
		seen := map[string]bool{}
		for _, l := range lines {
			if !slices.Contains(all, l) || seen[l] {
				t.Errorf("limit %d: unexpected or repeated line %q", tt.limit, l)
			}
			seen[l] = true
		}
	}
}

// TestQuitEndsOnlyItsConnection checks that quit closes the connection
// that sent it and leaves the server and the data to the others.
func TestQuitEndsOnlyItsConnection(t *testing.T) {
	srv := start(t, opts{})
	a, b := dial(t, srv.addr), dial(t, srv.addr)
	a.send("set k 0 0 1\r\na\r\nquit\r\n")
	a.expect("set", "STORED\r\n")
	if rest := a.rest(false); len(rest) != 0 {
		t.Fatalf("after quit: %s", show(rest))
	}
	b.send("get k\r\n")
	b.expect("get on another connection", "VALUE k 0 1\r\na\r\nEND\r\n")
}

// TestShutdown checks that the shutdown command, when enabled (-A), calls
// Config.Shutdown with the mode and closes the connection.
func TestShutdown(t *testing.T) {
	skipOnOracle(t, "checks Config.Shutdown (memcached exits)")
	for _, tt := range []struct {
		cmd      string
		graceful bool
	}{
		{"shutdown\r\n", false},
		{"shutdown graceful\r\n", true},
	} {
		srv := start(t, opts{shutdown: true})
		c := dial(t, srv.addr)
		c.send(tt.cmd)
		if rest := c.rest(false); len(rest) != 0 {
			t.Errorf("%q: got %s before the close, want nothing", tt.cmd, show(rest))
		}
		select {
		case g := <-srv.shutdowns:
			if g != tt.graceful {
				t.Errorf("%q: Shutdown(graceful=%v), want %v", tt.cmd, g, tt.graceful)
			}
		default:
			t.Errorf("%q: Config.Shutdown was not called before the connection closed", tt.cmd)
		}
	}
	srv := start(t, opts{shutdown: true})
	c := dial(t, srv.addr)
	c.send("shutdown bogus\r\nmn\r\n")
	c.expect("shutdown with a bad mode", "CLIENT_ERROR invalid shutdown mode\r\nMN\r\n")
	if len(srv.shutdowns) != 0 {
		t.Error("shutdown with a bad mode called Config.Shutdown")
	}
}

// TestVerbosityCallsSetVerbosity checks that verbosity hands its level,
// capped at 2, to Config.SetVerbosity.
func TestVerbosityCallsSetVerbosity(t *testing.T) {
	skipOnOracle(t, "checks Config.SetVerbosity")
	srv := start(t, opts{})
	c := dial(t, srv.addr)
	c.send("verbosity 1\r\nverbosity 5 noreply\r\nverbosity 0\r\nmn\r\n")
	c.expect("verbosity", "OK\r\nOK\r\nMN\r\n")
	if got, want := srv.verbosityCalls(), []int{1, 2, 0}; !slices.Equal(got, want) {
		t.Errorf("SetVerbosity calls %v, want %v", got, want)
	}
	if got := srv.handler.Verbosity.Load(); got != 0 {
		t.Errorf("Handler.Verbosity = %d, want 0", got)
	}
}

// stats sends "stats [group]" and returns its names in order and values.
func (c *conn) stats(group string) ([]string, map[string]string) {
	c.t.Helper()
	cmd := "stats"
	if group != "" {
		cmd += " " + group
	}
	c.send(cmd + "\r\n")
	reply := string(c.readUntil("END\r\n"))
	var names []string
	values := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(reply, "END\r\n"), "\r\n") {
		if line == "" {
			continue
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) != 3 || f[0] != "STAT" {
			c.t.Fatalf("%s: line %q is not STAT <name> <value>", cmd, line)
		}
		if _, dup := values[f[1]]; dup {
			c.t.Errorf("%s: %s appears twice", cmd, f[1])
		}
		names = append(names, f[1])
		values[f[1]] = f[2]
	}
	return names, values
}

// generalStatsOrder are general stats every memcached client may read, in
// memcached's order.
var generalStatsOrder = []string{
	"pid", "uptime", "time", "version", "pointer_size", "rusage_user", "rusage_system",
	"max_connections", "curr_connections", "total_connections", "rejected_connections",
	"connection_structures", "cmd_get", "cmd_set", "cmd_flush", "cmd_touch",
	"get_hits", "get_misses", "get_expired", "get_flushed", "delete_misses", "delete_hits",
	"incr_misses", "incr_hits", "decr_misses", "decr_hits", "cas_misses", "cas_hits", "cas_badval",
	"touch_hits", "touch_misses", "store_too_large", "store_no_memory", "auth_cmds", "auth_errors",
	"bytes_read", "bytes_written", "limit_maxbytes", "accepting_conns", "threads",
	"bytes", "curr_items", "total_items", "evictions", "reclaimed",
}

// inOrder reports the names of want missing from got, or out of want's
// order in it.
func inOrder(got, want []string) (missing []string, ordered bool) {
	last := -1
	ordered = true
	for _, n := range want {
		i := slices.Index(got, n)
		if i < 0 {
			missing = append(missing, n)
			continue
		}
		if i < last {
			ordered = false
		}
		last = i
	}
	return missing, ordered
}

// TestStatsGeneral checks the shape of "stats" and the values that do not
// vary: the command counters after known commands, the item counts and
// the settings-derived figures. stats reset zeroes the counters.
func TestStatsGeneral(t *testing.T) {
	srv := start(t, opts{})
	c := dial(t, srv.addr)
	c.send("set a 0 0 1\r\n1\r\nset b 0 0 2\r\nbb\r\nget a b c\r\ngets a\r\nincr a 1\r\nincr c 1\r\ndecr a 1\r\n" +
		"delete b\r\ndelete b\r\ntouch a 0\r\ntouch c 0\r\ncas a 0 0 1 999\r\n5\r\ncas c 0 0 1 1\r\n6\r\n")
	c.expect("workload", "STORED\r\nSTORED\r\nVALUE a 0 1\r\n1\r\nVALUE b 0 2\r\nbb\r\nEND\r\nVALUE a 0 1 1\r\n1\r\nEND\r\n2\r\nNOT_FOUND\r\n1\r\n"+
		"DELETED\r\nNOT_FOUND\r\nTOUCHED\r\nNOT_FOUND\r\nEXISTS\r\nNOT_FOUND\r\n")
	names, v := c.stats("")
	if names[0] != "pid" {
		t.Errorf("stats starts with %q, want pid", names[0])
	}
	missing, ordered := inOrder(names, generalStatsOrder)
	if len(missing) > 0 || !ordered {
		t.Errorf("stats: missing %v, in memcached's order: %v; got %v", missing, ordered, names)
	}
	want := map[string]string{
		"version": version(), "pointer_size": "64", "curr_connections": "1",
		"cmd_get": "4", "get_hits": "3", "get_misses": "1", "cmd_set": "4", "cmd_touch": "2",
		"incr_hits": "1", "incr_misses": "1", "decr_hits": "1", "decr_misses": "0",
		"delete_hits": "1", "delete_misses": "1", "touch_hits": "1", "touch_misses": "1",
		"cas_badval": "1", "cas_misses": "1", "cas_hits": "0",
		"curr_items": "1", "total_items": "2", "limit_maxbytes": "67108864", "threads": "4",
		"accepting_conns": "1", "evictions": "0",
	}
	if !srv.oracle {
		want["time"] = strconv.Itoa(epoch)
		want["pid"] = strconv.Itoa(os.Getpid())
	}
	for name, w := range want {
		if v[name] != w {
			t.Errorf("stats %s = %q, want %q", name, v[name], w)
		}
	}
	for _, name := range []string{"uptime", "total_connections", "bytes_read", "bytes_written", "bytes"} {
		if _, err := strconv.ParseUint(v[name], 10, 64); err != nil {
			t.Errorf("stats %s = %q, want a number", name, v[name])
		}
	}
	for _, name := range []string{"rusage_user", "rusage_system"} {
		if !regexp.MustCompile(`^[0-9]+\.[0-9]{6}$`).MatchString(v[name]) {
			t.Errorf("stats %s = %q, want seconds.micros", name, v[name])
		}
	}

	c.send("stats reset\r\n")
	c.expect("stats reset", "RESET\r\n")
	_, v = c.stats("")
	for _, name := range []string{"cmd_get", "get_hits", "get_misses", "cmd_set", "cmd_touch", "incr_hits", "delete_hits", "cas_badval", "total_items"} {
		if v[name] != "0" {
			t.Errorf("after stats reset, %s = %q, want 0", name, v[name])
		}
	}
	if v["curr_items"] != "1" {
		t.Errorf("after stats reset, curr_items = %q, want 1 (items stay)", v["curr_items"])
	}
}

// TestStatsSettings checks that "stats settings" reports what
// Config.Settings adds, in its order, and only that.
func TestStatsSettings(t *testing.T) {
	skipOnOracle(t, "checks Config.Settings")
	srv := start(t, opts{settings: func(add func(name, value string)) {
		add("maxbytes", "67108864")
		add("item_size_max", "1048576")
		add("evictions", "on")
	}})
	c := dial(t, srv.addr)
	c.send("stats settings\r\n")
	c.expect("stats settings", "STAT maxbytes 67108864\r\nSTAT item_size_max 1048576\r\nSTAT evictions on\r\nEND\r\n")

	bare := start(t, opts{})
	c = dial(t, bare.addr)
	c.send("stats settings\r\n")
	c.expect("stats settings without Config.Settings", "END\r\n")
}

// TestStatsSettingsLive checks that "stats settings" shows the values
// commands change at run time, not those Config.Settings was built with:
// maxbytes after cache_memlimit, detail_enabled after "stats detail".
func TestStatsSettingsLive(t *testing.T) {
	skipOnOracle(t, "checks Config.Settings")
	srv := start(t, opts{settings: func(add func(name, value string)) {
		add("maxbytes", "67108864")
		add("detail_enabled", "no")
	}})
	c := dial(t, srv.addr)
	c.send("stats settings\r\n")
	c.expect("stats settings", "STAT maxbytes 67108864\r\nSTAT detail_enabled no\r\nEND\r\n")
	c.send("cache_memlimit 100\r\nstats detail on\r\nstats settings\r\n")
	c.expect("after cache_memlimit and stats detail on",
		"OK\r\nOK\r\nSTAT maxbytes 104857600\r\nSTAT detail_enabled yes\r\nEND\r\n")
	c.send("cache_memlimit 1\r\nstats detail off\r\nstats settings\r\n")
	c.expect("after a refused cache_memlimit and stats detail off",
		"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\nOK\r\nSTAT maxbytes 104857600\r\nSTAT detail_enabled no\r\nEND\r\n")
	_, v := c.stats("")
	if v["limit_maxbytes"] != "104857600" {
		t.Errorf("stats limit_maxbytes = %q after cache_memlimit 100, want 104857600", v["limit_maxbytes"])
	}
}

// TestStatsGroups checks that the other stats groups exist and have
// memcached's shape: STAT lines and END.
func TestStatsGroups(t *testing.T) {
	srv := start(t, opts{})
	c := dial(t, srv.addr)
	c.send("set k 0 0 1\r\na\r\n")
	c.expect("set", "STORED\r\n")
	for group, pattern := range map[string]string{
		"items": `^items:[0-9]+:[a-z_]+$`,
		"slabs": `^([0-9]+:[a-z_]+|active_slabs|total_malloced)$`,
		"conns": `^[0-9]+:(addr|listen_addr|state|secs_since_last_cmd)$`,
	} {
		names, v := c.stats(group)
		if len(names) == 0 {
			t.Errorf("stats %s is empty", group)
		}
		re := regexp.MustCompile(pattern)
		for _, n := range names {
			if !re.MatchString(n) {
				t.Errorf("stats %s: name %q does not match %s", group, n, pattern)
			}
		}
		if group == "items" && v["items:1:number"] != "1" {
			t.Errorf("stats items: items:1:number = %q, want 1", v["items:1:number"])
		}
		if group == "conns" {
			// Our connection is listed with its address and listener.
			local := c.nc.LocalAddr().String()
			found := false
			for _, n := range names {
				if strings.HasSuffix(n, ":addr") && v[n] == "tcp:"+local {
					id := strings.TrimSuffix(n, ":addr")
					found = true
					if v[id+":listen_addr"] != "tcp:"+srv.addr {
						t.Errorf("stats conns: %s:listen_addr = %q, want tcp:%s", id, v[id+":listen_addr"], srv.addr)
					}
					if v[id+":state"] == "" {
						t.Errorf("stats conns: %s has no state", id)
					}
				}
			}
			if !found {
				t.Errorf("stats conns does not list this connection (tcp:%s): %v", local, v)
			}
		}
	}
}
