package text

import (
	"errors"
	"testing"
)

func TestEncoders(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{string(AppendValue(nil, []byte("k"), 5, []byte("abc"), 0, false)), "VALUE k 5 3\r\nabc\r\n"},
		{string(AppendValue(nil, []byte("k"), 0, nil, 18446744073709551615, true)), "VALUE k 0 0 18446744073709551615\r\n\r\n"},
		{string(AppendValue([]byte("x"), []byte("k"), 4294967295, []byte("\r\n"), 7, true)), "xVALUE k 4294967295 2 7\r\n\r\n\r\n"},
		{string(AppendValueHeader(nil, []byte("key"), 1, 10, 0, false)), "VALUE key 1 10\r\n"},
		{string(AppendStat(nil, "pid", "42")), "STAT pid 42\r\n"},
		{string(AppendUint(nil, 0)), "0"},
		{string(AppendUintLine(nil, 18446744073709551615)), "18446744073709551615\r\n"},
		{string(AppendVersion(nil, "1.6.18")), "VERSION 1.6.18\r\n"},
		{string(ErrBadFormat.AppendReply(nil)), "CLIENT_ERROR bad command line format\r\n"},
		{string(ErrBadFormat.silenced(true).AppendReply(nil)), ""},
		{string(ErrHTTP.AppendReply(nil)), ""},
		{string(ErrLineTooLong.AppendReply([]byte("x"))), "x"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestEncodersZeroAllocs(t *testing.T) {
	dst := make([]byte, 0, 256)
	key, data := []byte("some-key"), []byte("some value")
	allocs := testing.AllocsPerRun(100, func() {
		b := AppendValue(dst, key, 123, data, 456, true)
		b = AppendStat(b, "curr_items", "12345")
		b = AppendUintLine(b, 99)
		b = ErrTooLarge.AppendReply(b)
		_ = append(b, End...)
	})
	if allocs != 0 {
		t.Fatalf("%v allocs", allocs)
	}
}

func TestErrors(t *testing.T) {
	q := ErrInvalidExptime.silenced(true)
	if q == ErrInvalidExptime || !q.Silent || !errors.Is(q, ErrInvalidExptime) {
		t.Fatalf("silenced twin: %+v", q)
	}
	if ErrInvalidExptime.silenced(false) != ErrInvalidExptime {
		t.Fatal("silenced(false) changed the error")
	}
	if errors.Is(q, ErrBadFormat) || errors.Is(ErrHTTP, ErrLineTooLong) {
		t.Fatal("distinct errors match")
	}
	if ErrHTTP.silenced(true) != ErrHTTP {
		t.Fatal("a silent close has no twin")
	}
	for _, e := range []*Error{ErrUnknownCommand, ErrBadFormat, ErrBadDataChunk, ErrTooLarge,
		ErrInvalidDelta, ErrInvalidExptime, ErrDeleteFormat, ErrFlushDisabled, ErrLineTooLong, ErrHTTP,
		ErrShutdownDisabled, ErrShutdownMode} {
		if e.Error() == "" {
			t.Errorf("%+v has no message", e)
		}
	}
}

func TestShutdownMode(t *testing.T) {
	tests := []struct {
		in           string
		graceful, ok bool
	}{
		{"shutdown\r\n", false, true},
		{"shutdown graceful\r\n", true, true},
		{"shutdown foo\r\n", false, false},
		{"shutdown graceful x\r\n", false, false},
	}
	for _, tt := range tests {
		var req Request
		if _, _, err := NewDecoder(0).Decode([]byte(tt.in), &req); err != nil || req.Cmd != CmdShutdown {
			t.Fatalf("%q: %v %v", tt.in, req.Cmd, err)
		}
		if g, ok := req.ShutdownMode(); g != tt.graceful || ok != tt.ok {
			t.Errorf("%q: got %v %v", tt.in, g, ok)
		}
	}
}

func TestCommandString(t *testing.T) {
	for c := CmdNone; c < numCommands; c++ {
		if c.String() == "" || c.String() == "unknown" {
			t.Errorf("command %d has no name", c)
		}
		if c.IsStorage() != (c >= CmdSet && c <= CmdCas) || c.IsRetrieval() != (c >= CmdGet && c <= CmdGats) {
			t.Errorf("%v: wrong class", c)
		}
	}
	if Command(200).String() != "unknown" {
		t.Error("out of range command")
	}
}
