package config

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

var (
	// "-p, --port=<num> ...", "-W  --disable-watch", "-D <char> ...", "-vv".
	helpFlagLine = regexp.MustCompile(`^-([A-Za-z])(?:,? +--([a-z_-]+))?`)
	helpOptLine  = regexp.MustCompile(`^   - ([a-z_0-9]+):`)
)

func memcachedHelp(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/memcached-1.6.18-help.txt")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// helpFlags returns the short flags (and their long names, "" when none) of
// a -h text, in order.
func helpFlags(help string) (shorts []string, longs map[string]string) {
	longs = map[string]string{}
	for line := range strings.Lines(help) {
		m := helpFlagLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if _, dup := longs[m[1]]; !dup {
			shorts = append(shorts, m[1])
		}
		if m[2] != "" {
			longs[m[1]] = m[2]
		} else if _, ok := longs[m[1]]; !ok {
			longs[m[1]] = ""
		}
	}
	return shorts, longs
}

func memcachedExtendedKeys(help string) []string {
	var keys []string
	for line := range strings.Lines(help) {
		if m := helpOptLine.FindStringSubmatch(line); m != nil {
			keys = append(keys, m[1])
		}
	}
	return keys
}

func usageText(engines []string, help string) string {
	var b bytes.Buffer
	Usage(&b, engines, help)
	return b.String()
}

// TestUsageCoversMemcachedHelp checks that every flag of memcached 1.6.18's
// -h (short and long name) and every -o key it documents appears in ours,
// in the same layout, and that Parse accepts each flag.
func TestUsageCoversMemcachedHelp(t *testing.T) {
	help := memcachedHelp(t)
	mShorts, mLongs := helpFlags(help)
	if len(mShorts) < 35 {
		t.Fatalf("found only %d flags in memcached's -h: %q", len(mShorts), mShorts)
	}
	ours := usageText(nil, "")
	_, oLongs := helpFlags(ours)
	for _, s := range mShorts {
		long, ok := oLongs[s]
		if !ok {
			t.Errorf("memcached's -%s is missing from Usage", s)
			continue
		}
		// memcached's -h spells --napi_ids; its option table (and ours)
		// --napi-ids. Both parse.
		if want := strings.ReplaceAll(mLongs[s], "_", "-"); want != "" && long != want {
			t.Errorf("-%s: Usage says --%s, memcached says --%s", s, long, mLongs[s])
		}
	}
	for _, k := range memcachedExtendedKeys(help) {
		if !strings.Contains(ours, "   - "+k+":") {
			t.Errorf("memcached's -o %s is missing from Usage", k)
		}
	}

	// Every flag in the help parses, short and long.
	needsArg := map[string]string{
		"p": "1", "U": "0", "s": "/s", "a": "700", "l": "127.0.0.1", "u": "u", "m": "64",
		"c": "1", "P": "/p", "f": "1.5", "n": "48", "D": ":", "t": "4", "R": "20",
		"b": "1", "B": "auto", "I": "1m", "Y": "/y", "e": "/e", "o": "modern", "N": "1",
	}
	for _, s := range mShorts {
		if s == "h" || s == "i" || s == "V" {
			continue
		}
		args := []string{"-" + s}
		longArgs := []string{"--" + mLongs[s]}
		if v, ok := needsArg[s]; ok {
			args = append(args, v)
			longArgs = append(longArgs, v)
		}
		if _, err := Parse(args, nil); err != nil {
			t.Errorf("Parse(%q): %v", args, err)
		}
		if mLongs[s] != "" {
			if _, err := Parse(longArgs, nil); err != nil {
				t.Errorf("Parse(%q): %v", longArgs, err)
			}
		}
	}
}

func TestUsageMnemo(t *testing.T) {
	u := usageText([]string{"memory", "persistent"}, "                          persistent: dir=<path>")
	for _, want := range []string{
		"mnemo " + Version + " (memcached 1.6.18 compatible)\n",
		"-p, --port=<num>          TCP port to listen on (default: 11211)\n",
		"-l, --listen=<addr>       interface to listen on (default: 127.0.0.1)\n",
		"-m, --memory-limit=<num>  item memory in megabytes (default: 64)\n",
		"-S, --enable-sasl         turn on Sasl authentication (see --sasl-pwdb)\n",
		"--sasl-pwdb=<file>        SASL password database for -S: user:password lines\n",
		"-I, --max-item-size=<num> adjusts max item size\n                          (default: 1m, min: 1k, max: 1024m)\n",
		"   - idle_timeout:        timeout for idle connections. (default: 0, no timeout)\n",
		"--engine=<name>           storage engine (default: memory)\n                          one of: memory, persistent\n",
		"--engine-config=<string>  the engine's configuration string (default: none)\n                          persistent: dir=<path>\n--pprof=<addr>",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("Usage lacks %q", want)
		}
	}
	if plain := usageText(nil, ""); strings.Contains(plain, "one of:") {
		t.Error("Usage without engines lists engines")
	}
}

// TestUsageMarksWhatDoesNotWork: every flag that Unsupported refuses is
// marked "not supported" on its -h line; -d is not marked; -U says that
// UDP is not served.
func TestUsageMarksWhatDoesNotWork(t *testing.T) {
	u := usageText(nil, "")
	line := func(prefix string) string {
		for l := range strings.Lines(u) {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Fatalf("Usage has no line starting %q", prefix)
		return ""
	}
	for _, tc := range []struct {
		args   []string
		prefix string
	}{
		{[]string{"-L"}, "-L, --enable-largepages"},
		{[]string{"-k"}, "-k, --lock-memory"},
	} {
		if mustParse(t, tc.args...).Unsupported() == nil {
			t.Errorf("%q is supported now: update this test", tc.args)
		}
		if l := line(tc.prefix); !strings.Contains(l, "not supported") {
			t.Errorf("%q: its -h line %q is not marked", tc.args, l)
		}
	}
	// -e is supported: none of its three lines is marked.
	if !strings.Contains(u, "enables restartable cache (stop with SIGUSR1)\n") {
		t.Error("-e is marked unsupported")
	}
	for _, prefix := range []string{"-d, --daemon", "-Z, --enable-ssl", "   - ssl_chain_cert:"} {
		if l := line(prefix); strings.Contains(l, "not supported") {
			t.Errorf("%q marked unsupported: %q", prefix, l)
		}
	}
	if !strings.Contains(u, "mnemo does\n                          not serve UDP") {
		t.Errorf("-U does not say that UDP is not served:\n%s", u)
	}
}
