package interop

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mnemo-cache/mnemo/config"
	"github.com/mnemo-cache/mnemo/internal/testserver"
)

// debianWrapper is Debian's script that turns /etc/memcached.conf into
// memcached's command line (Debian package memcached).
const debianWrapper = "/usr/share/memcached/scripts/systemd-memcached-wrapper"

// TestConfFileMatchesDebianWrapper: for conf files that Debian's wrapper
// and mnemo both accept, mnemo's --config-file reads the same arguments
// as the wrapper hands memcached. The wrapper runs with memcached's path
// replaced by a printf of its arguments (it needs root, as under
// systemd).
func TestConfFileMatchesDebianWrapper(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("Debian's wrapper runs only as root: run this test as root (scripts/test.sh does)")
	}
	perl := testserver.LookPath(t, "perl", "perl-base")
	src, err := os.ReadFile(debianWrapper)
	if err != nil {
		t.Fatalf("%v: install Debian package memcached", err)
	}
	const binLine = `my $memcached = "/usr/bin/memcached";`
	if !bytes.Contains(src, []byte(binLine)) {
		t.Fatalf("%s no longer has %q: update this test", debianWrapper, binLine)
	}
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "wrapper")
	src = bytes.Replace(src, []byte(binLine), []byte(`my $memcached = "printf '%s\\n'";`), 1)
	if err := os.WriteFile(wrapper, src, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, conf := range []string{
		"-m 64\n-p 11211\n-u memcache\n-l 127.0.0.1\n-P /var/run/memcached/memcached.pid\n",
		"-d\nlogfile /var/log/memcached.log\n# -v\n-m 64 # megabytes\n\n  -c 4096  \n-vv\n",
		"-o 'idle_timeout=5' -l '*'\n--engine-config \"path=/var/lib/mnemo,durability=sync\"\n",
		"-D \\#\n-Y \"a \\\"b\\\" c\\\\d\"\n-P /run/a\\ b\n-l 127.0.0.1,'::1'\n",
		"-m 1 #a# b\n-h\n-dfoo\n",
	} {
		path := filepath.Join(dir, "conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(perl, wrapper, path).Output()
		if err != nil {
			t.Fatalf("conf %d: Debian's wrapper: %v", i, err)
		}
		want := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		lines, _, err := config.ReadConf(strings.NewReader(conf))
		if err != nil {
			t.Fatalf("conf %d: %v", i, err)
		}
		var got []string
		for _, l := range lines {
			got = append(got, l.Args...)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("conf %d %q:\nmnemo reads       %q\nDebian's wrapper: %q", i, conf, got, want)
		}
	}
}
