package binproto

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/mnemo-cache/mnemo/config"
	"github.com/mnemo-cache/mnemo/internal/daemon"
	"github.com/mnemo-cache/mnemo/memcache"
)

func TestParseCredentials(t *testing.T) {
	c, err := memcache.ParseCredentials([]byte("a:1\r\n\nb:two:x\nc:\n"), false)
	if err != nil || c.Len() != 3 {
		t.Fatalf("ParseCredentials: %v, %d users", err, c.Len())
	}
	for _, tt := range []struct {
		user, pass string
		want       bool
	}{
		{"a", "1", true}, {"b", "two:x", true}, {"b", "two", false}, {"c", "", true},
		{"a", "2", false}, {"x", "1", false}, {"", "", false}, {"a", "1\r", false},
	} {
		if got := c.Check([]byte(tt.user), []byte(tt.pass)); got != tt.want {
			t.Errorf("Check(%q, %q) = %v, want %v", tt.user, tt.pass, got, tt.want)
		}
	}
	// The SASL database allows fields after the password and skips lines
	// without ':'.
	p, err := memcache.ParseCredentials([]byte("junk\nb:two:x\n"), true)
	if err != nil || !p.Check([]byte("b"), []byte("two")) || p.Check([]byte("b"), []byte("two:x")) {
		t.Fatalf("pwdb: %v", err)
	}
	_, err = memcache.ParseCredentials([]byte("a:1\nsecretline\n"), false)
	if !errors.Is(err, memcache.ErrMalformedCredentials) || strings.Contains(err.Error(), "secretline") {
		t.Fatalf("malformed: %v", err)
	}
	var nilCreds *memcache.Credentials
	if nilCreds.Check([]byte("a"), []byte("1")) {
		t.Fatal("nil Credentials accepted a user")
	}
}

// A -Y file that is missing or malformed stops the server from starting,
// as in memcached, and the error does not quote the file.
func TestAuthFileStartErrors(t *testing.T) {
	for _, path := range []string{
		writeFile(t, "auth", "alice:pw\nhunter2-no-colon\n"),
		t.TempDir() + "/missing",
	} {
		cfg, err := config.Parse([]string{"-U", "0", "-l", "127.0.0.1:0", "-Y", path}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		d, err := daemon.Start(cfg, io.Discard)
		if err == nil {
			d.Stop()
			t.Fatalf("-Y %s: started", path)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("error quotes the file: %v", err)
		}
	}
	// -S needs a password database.
	t.Setenv("MEMCACHED_SASL_PWDB", "")
	cfg, err := config.Parse([]string{"-U", "0", "-l", "127.0.0.1:0", "-S"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := daemon.Start(cfg, io.Discard); err == nil {
		d.Stop()
		t.Fatal("-S without a password database started")
	}
}
