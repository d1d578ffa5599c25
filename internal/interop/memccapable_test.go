package interop

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/mnemo-cache/mnemo/internal/testserver"
)

// memccapableASCIITests is how many tests "memccapable -a" runs
// (libmemcached-tools 1.1).
const memccapableASCIITests = 27

func TestMemccapable(t *testing.T) {
	bin, err := exec.LookPath("memccapable")
	if err != nil {
		t.Fatal("memccapable not found: install Debian package libmemcached-tools (or run scripts/test.sh)")
	}
	addr := startMnemo(t)
	out, err := exec.Command(bin, testserver.MemccapableArgs(addr, "-a")...).CombinedOutput()
	if err != nil {
		t.Errorf("memccapable -a: %v", err)
	}
	passed := strings.Count(string(out), "[pass]")
	if passed != memccapableASCIITests || strings.Contains(string(out), "[FAIL]") {
		t.Errorf("memccapable -a: %d passed (want %d), output:\n%s", passed, memccapableASCIITests, out)
	}
}
