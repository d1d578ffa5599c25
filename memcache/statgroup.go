package memcache

import (
	"bytes"
	"errors"
	"strings"

	"github.com/mnemo-cache/mnemo/protocol/text"
	"github.com/mnemo-cache/mnemo/server"
)

// ErrStatGroup reports a stats group the server does not answer.
var ErrStatGroup = errors.New("memcache: stats group not answered")

// AttachServer tells the Handler which server runs it, for StatGroup to
// read the connection figures before the first client connects (the
// Handler otherwise learns it from its first connection).
func (h *Handler) AttachServer(srv *server.Server) {
	h.srvMu.Lock()
	if h.srv == nil {
		h.srv = srv
	}
	h.srvMu.Unlock()
}

// StatGroup runs "stats <group>" ("" for the general statistics, "slabs",
// "items", "settings", "hotkeys", ...) in-process
// through the text protocol's own code, and calls fn with the name and
// value of each STAT line, in order. What a client would read is what fn
// gets, so a field added to a stats group reaches every reader of
// StatGroup (the /metrics endpoint) by itself. It returns ErrStatGroup
// for a group the server answers with an error, and for the groups that
// change something or answer other lines (reset, detail, cachedump).
func (h *Handler) StatGroup(group string, fn func(name, value string)) error {
	switch first, _, _ := strings.Cut(group, " "); first {
	case "reset", "detail", "cachedump":
		return ErrStatGroup
	}
	h.srvMu.Lock()
	srv := h.srv
	h.srvMu.Unlock()
	var flushed bytes.Buffer
	c := &server.Conn{}
	if srv != nil {
		c = srv.LocalConn(&flushed)
	}
	s := &session{h: h}
	s.wake()
	defer s.release()
	line := "stats\r\n"
	if group != "" {
		line = "stats " + group + "\r\n"
	}
	n, _, err := s.dec.Decode([]byte(line), &s.req)
	if err != nil || n != len(line) || s.req.Cmd != text.CmdStats {
		return ErrStatGroup
	}
	if !s.hotKeysStats(c, &s.req) {
		if err := s.stats(c, &s.req); err != nil {
			return err
		}
	}
	flushed.Write(c.Out)
	out := flushed.String()
	for len(out) > 0 {
		l, rest, _ := strings.Cut(out, "\r\n")
		out = rest
		if l == "END" {
			return nil
		}
		name, value, ok := strings.Cut(strings.TrimPrefix(l, "STAT "), " ")
		if !ok || !strings.HasPrefix(l, "STAT ") {
			return ErrStatGroup
		}
		fn(name, value)
	}
	return ErrStatGroup
}
