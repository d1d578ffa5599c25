package binproto

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/mnemo-cache/mnemo/internal/testserver"
)

// memccapable (libmemcached-tools 1.1) runs 27 binary tests with -b and 27
// ascii plus 27 binary tests with no flag; memcached 1.6.18 passes them all.
func TestMemccapable(t *testing.T) {
	path := lookPath(t, "memccapable", "libmemcached-tools")
	addr, _ := startMnemo(t)
	for _, tt := range []struct {
		flags []string
		want  int
	}{
		{[]string{"-b"}, 27},
		{nil, 54},
	} {
		args := testserver.MemccapableArgs(addr, tt.flags...)
		out, err := exec.Command(path, args...).CombinedOutput()
		if err != nil {
			t.Errorf("memccapable %q: %v", args, err)
		}
		passed := strings.Count(string(out), "[pass]")
		if passed != tt.want || strings.Contains(string(out), "[FAIL]") {
			t.Errorf("memccapable %q: %d passed (want %d), output:\n%s", args, passed, tt.want, out)
		}
	}
}

// With -B binary only the binary protocol is spoken, and memccapable -b
// still passes everything.
func TestMemccapableProtocolBinaryOnly(t *testing.T) {
	path := lookPath(t, "memccapable", "libmemcached-tools")
	addr, _ := startMnemo(t, "-B", "binary")
	out, err := exec.Command(path, testserver.MemccapableArgs(addr, "-b")...).CombinedOutput()
	if err != nil || strings.Count(string(out), "[pass]") != 27 {
		t.Errorf("memccapable -b against -B binary: %v\n%s", err, out)
	}
}
