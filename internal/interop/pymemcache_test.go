package interop

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// pythonWithPymemcache returns a python3 interpreter that can import
// pymemcache: the first python3 on PATH, or Debian's /usr/bin/python3 when
// the first is another installation (pyenv, a virtualenv) without it.
func pythonWithPymemcache(t *testing.T) string {
	t.Helper()
	var candidates []string
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	if !slices.Contains(candidates, "/usr/bin/python3") {
		candidates = append(candidates, "/usr/bin/python3")
	}
	for _, py := range candidates {
		if exec.Command(py, "-c", "import pymemcache").Run() == nil {
			return py
		}
	}
	t.Fatalf("python3 with pymemcache not found (tried %q): install Debian package python3-pymemcache", candidates)
	return ""
}

// TestPymemcache runs testdata/pymemcache_test.py against mnemo, and
// against memcached to show that the script's expectations are
// memcached's.
func TestPymemcache(t *testing.T) {
	py := pythonWithPymemcache(t)
	t.Run("mnemo", func(t *testing.T) {
		t.Parallel()
		runPymemcache(t, py, startMnemo(t))
	})
	t.Run("memcached", func(t *testing.T) {
		t.Parallel()
		runPymemcache(t, py, startMemcached(t))
	})
}

func runPymemcache(t *testing.T, py, addr string) {
	host, port, _ := net.SplitHostPort(addr)
	script, err := filepath.Abs(filepath.Join("testdata", "pymemcache_test.py"))
	if err != nil {
		t.Fatal(err)
	}
	// The script bounds each of its waits by patience, so it ends; the
	// context is for a hang all the same.
	ctx, cancel := context.WithTimeout(t.Context(), 3*patience)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, script, host, port, strconv.Itoa(int(patience/time.Second)))
	cmd.WaitDelay = patience
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", py, script, err, out)
	}
	t.Logf("%s", out)
}
