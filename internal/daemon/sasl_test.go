package daemon

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mnemo-cache/mnemo/config"
)

// TestSASLPasswordFileChecked checks that -S refuses to start without a
// usable password database (memcached refuses too), and starts with one.
func TestSASLPasswordFileChecked(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	good := filepath.Join(dir, "good")
	unreadable := filepath.Join(dir, "missing", "pwdb")
	if err := os.WriteFile(empty, []byte("# nobody\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, []byte("alice:s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, pwdb string
		ok         bool
	}{
		{"no file", "", false},
		{"unreadable", unreadable, false},
		{"no users", empty, false},
		{"good", good, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-l", "127.0.0.1:0", "-S"}
			if tc.pwdb != "" {
				args = append(args, "--sasl-pwdb", tc.pwdb)
			}
			t.Setenv("MEMCACHED_SASL_PWDB", "")
			cfg, err := config.Parse(args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Start(cfg, io.Discard)
			if err == nil {
				d.Stop()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("Start: %v, want ok %v", err, tc.ok)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error shows the password file's content: %v", err)
			}
		})
	}
}
