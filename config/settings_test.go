package config

import (
	"os"
	"strings"
	"testing"
)

type setting struct{ name, value string }

func settingsOf(c *Config) []setting {
	var s []setting
	c.Settings(func(name, value string) { s = append(s, setting{name, value}) })
	return s
}

func settingsMap(c *Config) map[string]string {
	m := map[string]string{}
	c.Settings(func(name, value string) { m[name] = value })
	return m
}

// memcachedSettings reads the "stats settings" reply captured from
// memcached 1.6.18 started as `memcached -l 127.0.0.1 -p 21211 -U 0`.
func memcachedSettings(t *testing.T) []setting {
	t.Helper()
	b, err := os.ReadFile("testdata/memcached-1.6.18-stats-settings.txt")
	if err != nil {
		t.Fatal(err)
	}
	var s []setting
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\r\n")
		if line == "END" {
			break
		}
		rest, ok := strings.CutPrefix(line, "STAT ")
		if !ok {
			t.Fatalf("bad line %q", line)
		}
		name, value, _ := strings.Cut(rest, " ")
		s = append(s, setting{name, value})
	}
	return s
}

// TestSettingsMatchMemcached compares our listing for the same command line
// with memcached's, name by name in order and value by value.
func TestSettingsMatchMemcached(t *testing.T) {
	want := memcachedSettings(t)
	c := mustParse(t, "-l", "127.0.0.1", "-p", "21211", "-U", "0")
	got := settingsOf(c)
	if len(got) != len(want)+2 {
		t.Errorf("got %d settings, want memcached's %d plus engine and engine_config", len(got), len(want))
	}
	for i, w := range want {
		if i >= len(got) {
			t.Fatalf("missing %q and what follows", w.name)
		}
		if got[i] != w {
			t.Errorf("setting %d = %q %q, memcached has %q %q", i, got[i].name, got[i].value, w.name, w.value)
		}
	}
	tail := got[len(got)-2:]
	if tail[0] != (setting{"engine", "memory"}) || tail[1] != (setting{"engine_config", ""}) {
		t.Errorf("last settings = %q", tail)
	}
}

// TestSettingsNamesOrder keeps the names that exist in both listings in the
// same relative order, whatever the configuration.
func TestSettingsNamesOrder(t *testing.T) {
	pos := map[string]int{}
	for i, s := range memcachedSettings(t) {
		pos[s.name] = i
	}
	c := mustParse(t, "-o", "no_modern", "-l", "a,b", "-Z", "-N", "1")
	last := -1
	for _, s := range settingsOf(c) {
		p, ok := pos[s.name]
		if !ok {
			continue
		}
		if p < last {
			t.Errorf("%q is out of memcached's order", s.name)
		}
		last = p
	}
}

func TestSettingsValues(t *testing.T) {
	tests := []struct {
		args []string
		want map[string]string
	}{
		{nil, map[string]string{"inter": "127.0.0.1", "tcpport": "11211", "num_threads_per_udp": "4"}},
		{[]string{"-m", "128", "-c", "10", "-vv", "-M"}, map[string]string{"maxbytes": "134217728", "maxconns": "10", "verbosity": "2", "evictions": "off"}},
		{[]string{"-l", "127.0.0.1,127.0.0.2", "-l", "127.0.0.3", "-t", "8"}, map[string]string{"inter": "127.0.0.1,127.0.0.2,127.0.0.3", "num_threads": "8", "num_threads_per_udp": "1"}},
		{[]string{"-s", "/tmp/s", "-a", "755"}, map[string]string{"domain_socket": "/tmp/s", "umask": "755"}},
		{[]string{"-a", "0"}, map[string]string{"umask": "0"}},
		{[]string{"-A", "-f", "1.5", "-n", "96", "-R", "3", "-C", "-b", "9"}, map[string]string{
			"shutdown_command": "yes", "growth_factor": "1.50", "chunk_size": "96", "reqs_per_event": "3", "cas_enabled": "no", "tcp_backlog": "9"}},
		{[]string{"-D", "#"}, map[string]string{"stat_key_prefix": "#", "detail_enabled": "yes"}},
		{[]string{"-B", "ascii"}, map[string]string{"binding_protocol": "ascii"}},
		{[]string{"-B", "binary"}, map[string]string{"binding_protocol": "binary"}},
		{[]string{"-S"}, map[string]string{"auth_enabled_sasl": "yes", "binding_protocol": "binary"}},
		{[]string{"-Y", "/etc/a"}, map[string]string{"auth_enabled_ascii": "/etc/a", "binding_protocol": "ascii"}},
		{[]string{"-I", "2m", "-F", "-X"}, map[string]string{"item_size_max": "2097152", "flush_enabled": "no", "dump_enabled": "no"}},
		{[]string{"-o", "no_modern"}, map[string]string{
			"maxconns_fast": "no", "slab_reassign": "no", "slab_automove": "0", "slab_chunk_max": "1048576", "lru_crawler": "no",
			"hash_algorithm": "jenkins", "lru_maintainer_thread": "no", "lru_segmented": "no"}},
		{[]string{"-o", "hashpower=16,idle_timeout=30,temporary_ttl=20,read_buf_mem_limit=2,watcher_logbuf_size=1,worker_logbuf_size=2,track_sizes"}, map[string]string{
			"hashpower_init": "16", "idle_timeout": "30", "temp_lru": "yes", "temporary_ttl": "20", "read_buf_mem_limit": "2097152",
			"watcher_logbuf_size": "1024", "worker_logbuf_size": "2048", "track_sizes": "yes"}},
		{[]string{"-o", "slab_automove_ratio=0.125,hot_max_factor=0.333,slab_automove_freeratio=0.5"}, map[string]string{
			"slab_automove_ratio": "0.12", "hot_max_factor": "0.33", "slab_automove_freeratio": "0.500"}},
		{[]string{"-Z", "-o", "ssl_verify_mode=2,ssl_chain_cert=/c,ssl_ciphers=HIGH,ssl_min_version=3,ssl_wbuf_size=4"}, map[string]string{
			"ssl_enabled": "yes", "ssl_verify_mode": "3", "ssl_chain_cert": "/c", "ssl_key": "(null)", "ssl_ciphers": "HIGH", "ssl_ca_cert": "NULL",
			"ssl_min_version": "tlsv1.3", "ssl_wbuf_size": "4096"}},
		{[]string{"-o", "ssl_verify_mode=3,ssl_min_version=0"}, map[string]string{"ssl_verify_mode": "7", "ssl_min_version": "tlsv1.0"}},
		{[]string{"-o", "ssl_verify_mode=1,ssl_min_version=1"}, map[string]string{"ssl_verify_mode": "1", "ssl_min_version": "tlsv1.1"}},
		{[]string{"-o", "ext_wbuf_size=8,ext_drop_unread,ext_max_frag=0.5"}, map[string]string{"ext_wbuf_size": "8388608", "ext_drop_unread": "yes", "ext_max_frag": "0.50"}},
		{[]string{"-N", "2", "-e", "/dev/shm/x"}, map[string]string{"num_napi_ids": "2", "memory_file": "/dev/shm/x"}},
		{[]string{"--engine", "persistent", "--engine-config", "dir=/d"}, map[string]string{"engine": "persistent", "engine_config": "dir=/d"}},
	}
	for _, tt := range tests {
		got := settingsMap(mustParse(t, tt.args...))
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%q: %s = %q, want %q", tt.args, k, got[k], v)
			}
		}
	}
}

func TestString(t *testing.T) {
	c := mustParse(t, "-p", "11300", "-u", "nobody", "--pprof", "127.0.0.1:6060", "-o", "ext_path=/a:1G")
	s := c.String()
	for _, want := range []string{
		"maxbytes 67108864\n", "tcpport 11300\n", "engine persistent\n", "engine_config path=/a,disk_size=1073741824\n", "listen_addrs 127.0.0.1:11300\n",
		"user nobody\n", "pprof 127.0.0.1:6060\n", "ext_path /a:1G\n", "daemonize no\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
	// One line per setting: every "stats settings" name starts a line.
	for _, st := range settingsOf(c) {
		if !strings.Contains(s, "\n"+st.name+" ") && !strings.HasPrefix(s, st.name+" ") {
			t.Errorf("String() lacks %q", st.name)
		}
	}
}
