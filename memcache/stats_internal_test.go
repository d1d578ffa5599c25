package memcache

import (
	"os"
	"testing"
)

// TestReservedFDs checks that reserved_fds counts the process's open
// descriptors less the client connections.
func TestReservedFDs(t *testing.T) {
	before := reservedFDs(0)
	if before == 0 {
		t.Fatal("reserved_fds 0: the test process has descriptors open")
	}
	var files []*os.File
	for range 3 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if got := reservedFDs(0); got != before+3 {
		t.Errorf("reserved_fds %d with 3 more files open, want %d", got, before+3)
	}
	if got := reservedFDs(2); got != before+1 {
		t.Errorf("reserved_fds %d with 3 more files, 2 of them connections, want %d", got, before+1)
	}
	for _, f := range files {
		f.Close()
	}
	if got := reservedFDs(0); got != before {
		t.Errorf("reserved_fds %d after closing them, want %d", got, before)
	}
}
