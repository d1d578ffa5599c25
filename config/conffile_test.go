package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadConf(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       string
		want     [][]string // each option line's words
		warnings int
		err      string // a substring of the error; "" for none
	}{
		{name: "empty", in: ""},
		{name: "blank and comment lines", in: "\n   \n# a comment\n\t# indented\n"},
		{name: "one option a line", in: "-m 64\n-p 11211\n-u memcache\n-l 127.0.0.1\n",
			want: [][]string{{"-m", "64"}, {"-p", "11211"}, {"-u", "memcache"}, {"-l", "127.0.0.1"}}},
		{name: "several options a line", in: "-m 64 -M -vv\n", want: [][]string{{"-m", "64", "-M", "-vv"}}},
		{name: "trailing comment", in: "-m 64 # megabytes\n", want: [][]string{{"-m", "64"}}},
		{name: "comment up to the next hash", in: "-m 64 #a# b\n", want: [][]string{{"-m", "64"}}},
		{name: "comment line with an escaped hash", in: `# "\#" is a hash` + "\n"},
		{name: "escaped hash", in: `-D \#` + "\n", want: [][]string{{"-D", "#"}}},
		{name: "CRLF and tabs", in: "\t-m\t64 \r\n", want: [][]string{{"-m", "64"}}},
		{name: "-d ignored", in: "-d\n-m 1\n", want: [][]string{{"-m", "1"}}},
		{name: "-d with other options ignored", in: "-d -m 2\n-m 1\n", want: [][]string{{"-m", "1"}}},
		{name: "-h ignored", in: "-h\n", want: nil},
		{name: "logfile ignored with a warning", in: "logfile /var/log/memcached.log\n-m 1\n",
			want: [][]string{{"-m", "1"}}, warnings: 1},
		{name: "single quotes", in: `-o 'idle_timeout=5' -l '*'` + "\n", want: [][]string{{"-o", "idle_timeout=5", "-l", "*"}}},
		{name: "double quotes", in: `--engine-config "path=/var/lib/mnemo,durability=sync"` + "\n",
			want: [][]string{{"--engine-config", "path=/var/lib/mnemo,durability=sync"}}},
		{name: "double quotes with escapes", in: `-Y "a \"b\" c\\d\x"` + "\n", want: [][]string{{"-Y", `a "b" c\d\x`}}},
		{name: "quotes join a word", in: `-l 127.0.0.1,'::1'` + "\n", want: [][]string{{"-l", "127.0.0.1,::1"}}},
		{name: "empty quoted word", in: `-s ''` + "\n", want: [][]string{{"-s", ""}}},
		{name: "backslash escapes a blank", in: `-P /run/a\ b` + "\n", want: [][]string{{"-P", "/run/a b"}}},
		{name: "debian's memcached.conf", in: debianConf, want: [][]string{
			{"-m", "64"}, {"-p", "11211"}, {"-u", "memcache"}, {"-l", "127.0.0.1"}, {"-P", "/var/run/memcached/memcached.pid"},
		}, warnings: 1},

		{name: "unknown directive", in: "maxconn 5\n", err: `line 1: "maxconn" is not an option`},
		{name: "bare word", in: "-m 1\nverbose\n", err: `line 2: "verbose" is not an option`},
		{name: "unterminated single quote", in: "-s 'abc\n", err: "line 1: unterminated ' quote"},
		{name: "unterminated double quote", in: "-s \"abc\n", err: `line 1: unterminated " quote`},
		{name: "trailing backslash", in: "-m 64 \\\n", err: "line 1: backslash at the end"},
		{name: "variable", in: "-u $USER\n", err: `unquoted '$'`},
		{name: "variable in double quotes", in: "-u \"$USER\"\n", err: `'$' inside "..."`},
		{name: "command separator", in: "-l 127.0.0.1;::1\n", err: `unquoted ';'`},
		{name: "glob", in: "-l *\n", err: `unquoted '*'`},
		{name: "tilde", in: "-s ~/sock\n", err: `unquoted '~'`},
		{name: "pipe", in: "-m 1 | tee\n", err: `unquoted '|'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines, warnings, err := ReadConf(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got [][]string
			for _, l := range lines {
				got = append(got, l.Args)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("lines = %q, want %q", got, tc.want)
			}
			if len(warnings) != tc.warnings {
				t.Errorf("warnings = %q, want %d", warnings, tc.warnings)
			}
		})
	}
}

// debianConf is Debian's /etc/memcached.conf (memcached 1.6.18-1), less
// its header comment.
const debianConf = `# Run memcached as a daemon. This command is implied, and is not needed for the
# daemon to run. See the README.Debian that comes with this package for more
# information.
-d

# Log memcached's output to /var/log/memcached
logfile /var/log/memcached.log

# Be verbose
# -v

# Start with a cap of 64 megs of memory. It's reasonable, and the daemon default
# Note that the daemon will grow to this size, but does not start out holding this much
# memory
-m 64

# Default connection port is 11211
-p 11211

# Run the daemon as root. The start-memcached will default to running as root if no
# -u command is present in this config file
-u memcache

# Specify which IP address to listen on. The default is to listen on all IP addresses
# This parameter is one of the only security measures that memcached has, so make sure
# it's listening on a firewalled interface.
-l 127.0.0.1

# Limit the number of simultaneous incoming connections. The daemon default is 1024
# -c 1024

# Use a pidfile
-P /var/run/memcached/memcached.pid
`

func writeConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mnemo.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestParseConfFile: --config-file gives the same Config as its options
// on the command line, at the flag's place.
func TestParseConfFile(t *testing.T) {
	conf := writeConf(t, debianConf+"-c 4096\n-o idle_timeout=30,hashpower=20\n--engine-config 'shards=8'\n")
	got := mustParse(t, "--config-file", conf)
	want := mustParse(t, "-m", "64", "-p", "11211", "-u", "memcache", "-l", "127.0.0.1",
		"-P", "/var/run/memcached/memcached.pid", "-c", "4096", "-o", "idle_timeout=30,hashpower=20",
		"--engine-config", "shards=8")
	if got.Daemonize {
		t.Error("-d in the conf file set Daemonize")
	}
	if len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "logfile") {
		t.Errorf("Warnings = %q, want one about logfile", got.Warnings)
	}
	got.Warnings = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("--config-file:\n%+v\nthe same options on the command line:\n%+v", got, want)
	}

	// Later flags win; -l accumulates as repeated -l does.
	c := mustParse(t, "-m", "8", "--config-file="+conf, "-m", "128", "-l", "[::1]", "-d")
	if c.MemoryLimit != 128<<20 || !reflect.DeepEqual(c.Listen, []string{"127.0.0.1", "[::1]"}) || !c.Daemonize {
		t.Errorf("command line after --config-file: -m %d -l %q -d %v", c.MemoryLimit>>20, c.Listen, c.Daemonize)
	}
	if c := mustParse(t, "--config-file", conf, "-m", "8"); c.MemoryLimit != 8<<20 {
		t.Errorf("-m after --config-file: %d MB, want 8", c.MemoryLimit>>20)
	}
	if c := mustParse(t, "-m", "8", "--config-file", conf); c.MemoryLimit != 64<<20 {
		t.Errorf("-m before --config-file: %d MB, want the file's 64", c.MemoryLimit>>20)
	}
}

// TestParseConfFileChanged: the rules that look at which flags were given
// (-U moves the port unless -p was given; -S implies -B binary) see the
// conf file's flags.
func TestParseConfFileChanged(t *testing.T) {
	if c := mustParse(t, "--config-file", writeConf(t, "-p 5000\n"), "-U", "6000"); c.Port != 5000 {
		t.Errorf("-p in the file, -U 6000: port %d, want 5000", c.Port)
	}
	if c := mustParse(t, "--config-file", writeConf(t, "-U 6000\n")); c.Port != 6000 {
		t.Errorf("-U 6000 in the file: port %d, want 6000", c.Port)
	}
	if c := mustParse(t, "--config-file", writeConf(t, "-B auto\n"), "-S"); c.Protocol != "auto" {
		t.Errorf("-B auto in the file, -S: protocol %q, want auto", c.Protocol)
	}
}

func TestParseConfFileErrors(t *testing.T) {
	dir := t.TempDir()
	nested := writeConf(t, "-m 1\n")
	for _, tc := range []struct {
		conf string
		want string
	}{
		{"-m 64\n-m lots\n", `mnemo.conf: line 2: -m: invalid value "lots"`},
		{"-m 64\n-x\n", "mnemo.conf: line 2: unknown shorthand flag: 'x'"},
		{"-m 64 extra\n", `line 1: unexpected argument "extra"`},
		{"-V\n", "line 1: version stops the program"},
		{"-m 1\n--config-file " + nested + "\n", "may not read another"},
		{"-u $USER\n", `line 1: unquoted '$'`},
	} {
		_, err := Parse([]string{"--config-file", writeConf(t, tc.conf)}, nil)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrUsage) || e.Flag != "--config-file" || !strings.Contains(e.Msg, tc.want) {
			t.Errorf("conf %q: err = %v, want a usage error of --config-file containing %q", tc.conf, err, tc.want)
		}
	}
	if _, err := Parse([]string{"--config-file", filepath.Join(dir, "missing.conf")}, nil); !errors.Is(err, ErrUsage) || !errors.Is(err, os.ErrNotExist) && !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing conf file: err = %v", err)
	}
}

// TestShippedConf: contrib/mnemo.conf parses, and gives what it says.
func TestShippedConf(t *testing.T) {
	c := mustParse(t, "--config-file", "../contrib/mnemo.conf")
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsupported(); err != nil {
		t.Fatal(err)
	}
	if c.Daemonize || c.Port != 11211 || !reflect.DeepEqual(c.Listen, []string{"127.0.0.1"}) || c.MemoryLimit != 64<<20 || c.MaxConns != 1024 {
		t.Errorf("contrib/mnemo.conf: -d %v -p %d -l %q -m %d -c %d", c.Daemonize, c.Port, c.Listen, c.MemoryLimit>>20, c.MaxConns)
	}
}

// FuzzReadConf: any file is read or refused, never a panic; what is read
// reads the same once written back one line of single-quoted words each.
func FuzzReadConf(f *testing.F) {
	f.Add(debianConf)
	f.Add("-o 'a b' \"c\\\"d\" e\\ f # g\n-D \\#\nlogfile x\n-d\n")
	f.Add("-m 1 #a# b\n-s 'x\n")
	f.Fuzz(func(t *testing.T, in string) {
		lines, _, err := ReadConf(strings.NewReader(in))
		if err != nil {
			return
		}
		var b strings.Builder
		var want [][]string
		for _, l := range lines {
			if len(l.Args) == 0 || !strings.HasPrefix(l.Args[0], "-") {
				t.Fatalf("line %d: %q does not begin with an option", l.Num, l.Args)
			}
			for _, a := range l.Args {
				if strings.ContainsAny(a, "'#\n") {
					return // not expressible in single quotes on one line
				}
			}
			if strings.HasPrefix(l.Args[0], "-d") || strings.HasPrefix(l.Args[0], "-h") {
				return // written back, the line would be skipped
			}
			if strings.Trim(l.Args[0], "-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_=.,:/@+") != "" {
				return // the first word stays unquoted: a line begins with -
			}
			want = append(want, l.Args)
			b.WriteString(l.Args[0])
			for _, a := range l.Args[1:] {
				b.WriteString(" '" + a + "'")
			}
			b.WriteByte('\n')
		}
		again, _, err := ReadConf(strings.NewReader(b.String()))
		if err != nil {
			t.Fatalf("%q written back as %q: %v", in, b.String(), err)
		}
		var got [][]string
		for _, l := range again {
			got = append(got, l.Args)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q read %q; written back, %q", in, want, got)
		}
	})
}
