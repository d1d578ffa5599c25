package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if err := Default().Unsupported(); err != nil {
		t.Fatalf("Default().Unsupported() = %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
		want string // "" for valid
	}{
		{"item size lower limit", func(c *Config) { c.ItemSizeMax = 1023 }, "config: -I: item max size cannot be less than 1024 bytes"},
		{"item size at lower limit", func(c *Config) { c.ItemSizeMax = 1024 }, ""},
		{"item size half of memory", func(c *Config) { c.MemoryLimit, c.ItemSizeMax = 4<<20, 2<<20 }, ""},
		{"item size over half of memory", func(c *Config) { c.MemoryLimit, c.ItemSizeMax = 4<<20, 2<<20+1 }, "cannot set item size limit higher than 1/2 of memory max"},
		{"item size over a gigabyte", func(c *Config) { c.MemoryLimit, c.ItemSizeMax = 4<<30, 1<<30+1 }, "higher than a gigabyte"},
		{"item size a gigabyte", func(c *Config) { c.MemoryLimit, c.ItemSizeMax = 4<<30, 1<<30 }, ""},
		{"memory zero", func(c *Config) { c.MemoryLimit = 0 }, "-m: memory limit must be greater than 0"},
		{"port negative", func(c *Config) { c.Port = -1 }, "-p: invalid port number -1"},
		{"port too big", func(c *Config) { c.Port = 65536 }, "-p: invalid port number 65536"},
		{"port zero", func(c *Config) { c.Port = 0 }, ""},
		{"udp port too big", func(c *Config) { c.UDPPort = 70000 }, "-U: invalid port number"},
		{"maxconns", func(c *Config) { c.MaxConns = 0 }, "-c: maximum connections must be greater than 0"},
		{"threads", func(c *Config) { c.Threads = 0 }, "-t: number of threads must be greater than 0"},
		{"reqs per event", func(c *Config) { c.ReqsPerEvent = 0 }, "-R: number of requests per event"},
		{"backlog", func(c *Config) { c.Backlog = -1 }, "-b: backlog must not be negative"},
		{"protocol", func(c *Config) { c.Protocol = "http" }, `-B: invalid value for binding protocol: "http"`},
		{"factor", func(c *Config) { c.Factor = 1 }, "-f: factor must be greater than 1"},
		{"chunk size", func(c *Config) { c.ChunkSize = 0 }, "-n: chunk size must be greater than 0"},
		{"umask", func(c *Config) { c.UnixMask = 0o1000 }, "-a: access mask 1000"},
		{"napi ids over threads", func(c *Config) { c.NapiIDs = 5 }, "-N: number of napi_ids(5) cannot be greater than number of threads(4)"},
		{"napi ids negative", func(c *Config) { c.NapiIDs = -1 }, "-N:"},
		{"hashpower low", func(c *Config) { c.HashPower = 11 }, "-o hashpower: initial hashtable multiplier of 11 is too low"},
		{"hashpower high", func(c *Config) { c.HashPower = 33 }, "multiplier of 33 is too high"},
		{"hashpower ok", func(c *Config) { c.HashPower = 32 }, ""},
		{"hash algorithm", func(c *Config) { c.HashAlgorithm = "crc" }, "-o hash_algorithm"},
		{"slab automove", func(c *Config) { c.SlabAutomove = 3 }, "-o slab_automove: must be between 0 and 2"},
		{"slab automove ratio", func(c *Config) { c.SlabAutomoveRatio = 0 }, "-o slab_automove_ratio"},
		{"slab automove window", func(c *Config) { c.SlabAutomoveWindow = 2 }, "-o slab_automove_window: must be > 2"},
		{"slab chunk max", func(c *Config) { c.SlabChunkMax = 0 }, "-o slab_chunk_max"},
		{"slab sizes ok", func(c *Config) { c.SlabSizes = "48-100-200" }, ""},
		{"slab sizes small", func(c *Config) { c.SlabSizes = "10-100" }, "-o slab_sizes: slab size \"10\" is out of valid range"},
		{"slab sizes order", func(c *Config) { c.SlabSizes = "100-90" }, "cannot be lower than or equal"},
		{"slab sizes step", func(c *Config) { c.SlabSizes = "100-104" }, "at least 8 bytes larger"},
		{"slab sizes junk", func(c *Config) { c.SlabSizes = "100-x" }, "out of valid range"},
		{"tail repair", func(c *Config) { c.TailRepairTime = 5 }, "less than 10 seconds"},
		{"crawler sleep", func(c *Config) { c.LRUCrawlerSleep = 1000001 }, "-o lru_crawler_sleep"},
		{"hot pct", func(c *Config) { c.HotLRUPct = 80 }, "-o hot_lru_pct: must be >= 1 and < 80"},
		{"warm pct", func(c *Config) { c.WarmLRUPct = 0 }, "-o warm_lru_pct"},
		{"pct sum", func(c *Config) { c.HotLRUPct, c.WarmLRUPct = 40, 41 }, "cannot be more than 80% combined"},
		{"hot factor", func(c *Config) { c.HotMaxFactor = 0 }, "-o hot_max_factor: must be > 0"},
		{"warm factor", func(c *Config) { c.WarmMaxFactor = -1 }, "-o warm_max_factor"},
		{"temp lru without maintainer", func(c *Config) { c.TempLRU, c.LRUMaintainer = true, false }, "temporary_ttl requires lru_maintainer"},
		{"idle timeout", func(c *Config) { c.IdleTimeout = -time.Second }, "-o idle_timeout"},
		{"delimiter", func(c *Config) { c.Delimiter = 0 }, "-D: no delimiter specified"},
		{"sasl ascii", func(c *Config) { c.SASL = true }, "-S: you cannot allow the ASCII protocol while using SASL"},
		{"sasl binary", func(c *Config) { c.SASL, c.Protocol, c.SASLPwdb = true, "binary", "/pw" }, ""},
		{"sasl no pwdb", func(c *Config) { c.SASL, c.Protocol = true, "binary" }, "-S: no SASL password database"},
		{"sasl udp", func(c *Config) { c.SASL, c.Protocol, c.UDPPort = true, "binary", 5 }, "cannot enable UDP while using binary SASL"},
		{"auth file binary", func(c *Config) { c.AuthFile = "/a" }, "-Y: you cannot allow the BINARY protocol"},
		{"tls without port", func(c *Config) { c.TLS, c.Port = true, 0 }, "-Z: you cannot enable TLS without a TCP port"},
		{"extstore udp", func(c *Config) { c.Ext.Path, c.UDPPort = []string{"/a:1G"}, 5 }, "cannot use UDP with extstore"},
		{"listen bad", func(c *Config) { c.Listen = []string{"[::1"} }, "-l: \"[::1\": invalid IPv6 address"},
		{"listen notls without tls", func(c *Config) { c.Listen = []string{"notls:127.0.0.1"} }, "'notls' option is valid only when TLS is enabled"},
		{"listen notls with tls", func(c *Config) { c.TLS, c.Listen = true, []string{"notls:127.0.0.1"} }, ""},
		{"engine empty", func(c *Config) { c.Engine = "" }, "--engine: no engine named"},
		{"pprof loopback", func(c *Config) { c.Pprof = "127.0.0.1:6060" }, ""},
		{"pprof ipv6 loopback", func(c *Config) { c.Pprof = "[::1]:0" }, ""},
		{"pprof localhost", func(c *Config) { c.Pprof = "localhost:6060" }, ""},
		{"pprof public", func(c *Config) { c.Pprof = "0.0.0.0:6060" }, "--pprof: \"0.0.0.0:6060\" is not a loopback address"},
		{"pprof all", func(c *Config) { c.Pprof = ":6060" }, "is not a loopback address"},
		{"pprof no port", func(c *Config) { c.Pprof = "127.0.0.1" }, "is not host:port"},
		{"pprof bad port", func(c *Config) { c.Pprof = "127.0.0.1:x" }, "invalid port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.edit(c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate() = %v, not ErrInvalid", err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("Validate() = %v, not an *Error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateReportsAll(t *testing.T) {
	c := Default()
	c.Threads, c.MaxConns, c.Protocol = 0, 0, "x"
	err := c.Validate()
	for _, flag := range []string{"-t:", "-c:", "-B:"} {
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("Validate() = %v, want it to name %s", err, flag)
		}
	}
}

// TestValidateParsed runs memcached's start-up checks on parsed command
// lines, the way the caller does.
func TestValidateParsed(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-m", "1", "-I", "600k"}, "cannot set item size limit higher than 1/2 of memory max"},
		{[]string{"-I", "1k"}, ""}, // memcached also refuses it for slab_chunk_max; mnemo has no slabs
		{[]string{"-c", "0"}, "maximum connections must be greater than 0"},
		{[]string{"-o", "hashpower=11"}, "too low"},
		{[]string{"-S", "-B", "ascii"}, "you cannot allow the ASCII protocol while using SASL"},
		{[]string{"-o", "temporary_ttl=5,no_lru_maintainer"}, "requires lru_maintainer"},
		{[]string{"-l", "notls:127.0.0.1:5", "-Z"}, ""},
		{[]string{"-p", "70000"}, "invalid port number 70000"},
	}
	for _, tt := range tests {
		err := mustParse(t, tt.args...).Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: Validate() = %v", tt.args, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: Validate() = %v, want %q", tt.args, err, tt.want)
		}
	}
}

func TestUnsupported(t *testing.T) {
	tests := []struct {
		args []string
		want []string // one line per flag, in this order; nil when supported
	}{
		{[]string{"-L"}, []string{"mnemo: -L (large memory pages) is not supported yet"}},
		{[]string{"-k"}, []string{"mnemo: -k (lock memory) is not supported yet"}},
		{[]string{"-S", "-L", "-k"}, []string{
			"mnemo: -L (large memory pages) is not supported yet", "mnemo: -k (lock memory) is not supported yet"}},
		// Accepted with no effect, or supported: not errors.
		{[]string{"-U", "0"}, nil},
		{[]string{"-o", "ext_path=/d:1G"}, nil}, // the persistent engine
		{[]string{"-e", "/dev/shm/m"}, nil},
		{[]string{"-Z", "-o", "ssl_chain_cert=/c,ssl_key=/k,ssl_keyformat=2,ssl_verify_mode=1,ssl_ciphers=x,ssl_ca_cert=y,ssl_wbuf_size=1,ssl_session_cache,ssl_kernel_tls,ssl_min_version=3"}, nil},
		{[]string{"-U", "11211"}, nil}, // accepted; UDP is not served
		{[]string{"-d", "-P", "/p"}, nil},
		{[]string{"-S", "--sasl-pwdb", "/pw"}, nil},
		{[]string{"-Y", "/a"}, nil},
		{[]string{"-f", "1.1", "-n", "64", "-R", "5", "-b", "10", "-t", "2", "-r", "-N", "1"}, nil},
		{[]string{"-o", "slab_reassign,slab_automove=2,slab_chunk_max=1024,lru_crawler_sleep=5,hot_lru_pct=10,hash_algorithm=xxh3,no_modern"}, nil},
		{[]string{"-o", "ext_item_size=100,ext_threads=4,ssl_keyformat=1,ssl_min_version=2"}, nil},
		{[]string{"-p", "1", "-l", "127.0.0.1", "-s", "/s", "-a", "700", "-c", "5", "-m", "8", "-M", "-I", "2m", "-vvv", "-A", "-F", "-C", "-X", "-W", "-B", "ascii", "-D", ":", "-u", "x", "-P", "/p"}, nil},
	}
	for _, tt := range tests {
		err := mustParse(t, tt.args...).Unsupported()
		if tt.want == nil {
			if err != nil {
				t.Errorf("%q: Unsupported() = %v", tt.args, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%q: Unsupported() = nil, want %q", tt.args, tt.want)
			continue
		}
		if got := strings.Split(err.Error(), "\n"); strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%q: Unsupported() =\n%s\nwant\n%s", tt.args, err, strings.Join(tt.want, "\n"))
		}
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%q: Unsupported() is not ErrUnsupported", tt.args)
		}
		var ue *UnsupportedError
		if !errors.As(err, &ue) || ue.Flag == "" || ue.Feature == "" {
			t.Errorf("%q: Unsupported() holds no *UnsupportedError", tt.args)
		}
	}
}
