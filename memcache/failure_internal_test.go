package memcache

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/mnemo-cache/mnemo/cache"
)

// TestEngineErrorLogLimited checks that a burst of engine errors (a
// failed disk fails every write) logs one line, not one per command, and
// that every error is still classified as a server error.
func TestEngineErrorLogLimited(t *testing.T) {
	var buf bytes.Buffer
	h := &Handler{cfg: Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))}}
	err := errors.New("persistent: disk write failed (injected)")
	for range 1000 {
		if f := h.failure(err); f != cache.FailServer {
			t.Fatalf("failure = %v, want FailServer", f)
		}
	}
	if n := strings.Count(buf.String(), "engine error"); n != 1 {
		t.Errorf("%d log lines for a burst of 1000 engine errors, want 1:\n%s", n, buf.String())
	}
	if got := h.engineErrQuiet.Load(); got != 999 {
		t.Errorf("%d errors counted as not logged, want 999", got)
	}
	h.engineErrAt.Store(1) // the last line is long past
	h.failure(err)
	if !strings.Contains(buf.String(), "not_logged_since_last=999") {
		t.Errorf("the next line does not say how many were not logged:\n%s", buf.String())
	}
}

// TestServerErrorOneLine: an engine error whose text holds line breaks
// (a quoted file name, a disk's message) still makes one SERVER_ERROR
// line, so that the client's next reply is not taken from it.
func TestServerErrorOneLine(t *testing.T) {
	h := &Handler{cfg: Config{Logger: slog.New(slog.DiscardHandler)}}
	err := errors.New("persistent: read /data/x\r\nEND\r\n.sst:\tfailed\x00")
	got := string(h.appendFailure(nil, err, nil))
	want := "SERVER_ERROR persistent: read /data/x  END  .sst: failed \r\n"
	if got != want {
		t.Errorf("reply %q, want %q", got, want)
	}
}
