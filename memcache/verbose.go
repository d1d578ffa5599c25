package memcache

import (
	"bytes"
	"fmt"
	"net"
	"strconv"

	"github.com/mnemo-cache/mnemo/protocol/binary"
	"github.com/mnemo-cache/mnemo/protocol/text"
	"github.com/mnemo-cache/mnemo/server"
)

// memcached's -vv (verbosity 2) writes each client command and reply to
// stderr: "<ID command line", ">ID reply", "<ID new auto-negotiating
// client connection", "ID: Client using the ascii protocol", "<ID
// connection closed.". mnemo writes the same lines, ID being the
// connection's own id (server.Conn.ID) where memcached prints its socket
// descriptor. With verbosity below 2 the cost is one atomic load per
// batch of requests.

// verbose reports whether -vv lines are on.
func (h *Handler) verbose() bool { return h.Verbosity.Load() >= 2 }

// vline writes one line, "<dir><id><sep><msg>\n", to Config.VerboseOut.
func (h *Handler) vline(dir byte, id uint64, sep string, msgs ...[]byte) {
	var arr [256]byte
	b := arr[:0]
	if dir != 0 {
		b = append(b, dir)
	}
	b = strconv.AppendUint(b, id, 10)
	b = append(b, sep...)
	for _, m := range msgs {
		b = append(b, m...)
	}
	b = append(b, '\n')
	h.vmu.Lock()
	h.vout.Write(b)
	h.vmu.Unlock()
}

// firstLine returns b up to its first line end, without "\r\n".
func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return bytes.TrimSuffix(b, []byte("\r"))
}

// vcommand writes "<ID line" for a request decoded from req (its bytes
// in the read buffer).
func (h *Handler) vcommand(id uint64, req []byte) {
	h.vline('<', id, " ", firstLine(req))
}

// vreply writes the lines memcached writes for the reply of r, which a
// session appended to out from mark: each fixed reply line as ">ID
// line", a retrieval's hits as ">ID sending key KEY" and its END, and
// nothing for the replies memcached builds without out_string (meta
// commands but mn, stats). A reply already written out (a long get) is
// logged as its END only.
func (h *Handler) vreply(id uint64, r *text.Request, out []byte, mark int) {
	var reply []byte
	if mark <= len(out) {
		reply = out[mark:]
	}
	isErr := bytes.HasPrefix(reply, []byte("ERROR")) || bytes.HasPrefix(reply, []byte("CLIENT_ERROR")) ||
		bytes.HasPrefix(reply, []byte("SERVER_ERROR"))
	switch r.Cmd {
	case text.CmdGet, text.CmdGets, text.CmdGat, text.CmdGats:
		if !isErr {
			for bytes.HasPrefix(reply, []byte("VALUE ")) {
				line := firstLine(reply)
				f := bytes.Fields(line)
				if len(f) < 4 {
					break
				}
				n, err := strconv.Atoi(string(f[3]))
				if err != nil || len(line)+2+n+2 > len(reply) {
					break
				}
				h.vline('>', id, " sending key ", f[1])
				reply = reply[len(line)+2+n+2:]
			}
			h.vline('>', id, " END")
			return
		}
	case text.CmdMetaNoop:
		// mn's reply is written out at once (meta.go).
		h.vline('>', id, " MN")
		return
	case text.CmdMetaGet, text.CmdMetaSet, text.CmdMetaDelete, text.CmdMetaArith, text.CmdMetaDebug, text.CmdStats:
		if !isErr {
			return
		}
	}
	if len(reply) == 0 {
		return
	}
	h.vline('>', id, " ", firstLine(reply))
}

// vnoreply writes ">ID NOREPLY reply" for a reply a noreply request
// suppressed, as memcached does.
func (h *Handler) vnoreply(id uint64, reply []byte) {
	h.vline('>', id, " NOREPLY ", firstLine(reply))
}

// connSession wraps the session of a connection opened while -vv is on
// or connection events are watched, to tell of its close.
type connSession struct {
	server.Session
	h    *Handler
	c    *server.Conn // for why it closed (Close runs before c is released)
	id   uint64
	addr net.Addr
	vv   bool
}

// Close closes the session and tells of it.
func (s *connSession) Close() {
	s.Session.Close()
	if s.vv {
		s.h.vline('<', s.id, " connection closed.")
	}
	if s.h.logs.on(logConnevents) {
		reason := "normal"
		if s.c.ClosedIdle() {
			reason = "idle_timeout"
		}
		s.h.logConn(s.id, s.addr, reason)
	}
}

// Park passes the connection's parking to the session.
func (s *connSession) Park(c *server.Conn) {
	if p, ok := s.Session.(server.Parker); ok {
		p.Park(c)
	}
}

// Refuse passes the refusal to the session.
func (s *connSession) Refuse(c *server.Conn, err error) {
	if r, ok := s.Session.(server.Refuser); ok {
		r.Refuse(c, err)
	}
}

var (
	_ server.Parker  = (*connSession)(nil)
	_ server.Refuser = (*connSession)(nil)
)

// connOpened tells of a new connection with protocol proto ("auto",
// "ascii" or "binary") and wraps its session to tell of its close, when
// -vv is on or connection events are watched; otherwise it returns inner.
func (h *Handler) connOpened(c *server.Conn, proto string, inner server.Session) server.Session {
	vv, ev := h.verbose(), h.logs.on(logConnevents)
	if !vv && !ev {
		return inner
	}
	if vv {
		switch proto {
		case "ascii":
			h.vline('<', c.ID(), " new ascii client connection.")
		case "binary":
			h.vline('<', c.ID(), " new binary client connection.")
		default:
			h.vline('<', c.ID(), " new auto-negotiating client connection")
		}
	}
	addr := c.RemoteAddr()
	if ev {
		h.logConn(c.ID(), addr, "")
	}
	return &connSession{Session: inner, h: h, c: c, id: c.ID(), addr: addr, vv: vv}
}

// vraw writes one line as it is, with "\n".
func (h *Handler) vraw(parts ...[]byte) {
	var arr [256]byte
	b := arr[:0]
	for _, p := range parts {
		b = append(b, p...)
	}
	b = append(b, '\n')
	h.vmu.Lock()
	h.vout.Write(b)
	h.vmu.Unlock()
}

// vdump writes a 24-byte binary header as memcached -vv does: a title
// line, then four bytes a line, each line "<dir><id><indent>" and " 0x%02x"
// per byte.
func (h *Handler) vdump(dir byte, id uint64, title, indent string, hdr []byte) {
	const hexd = "0123456789abcdef"
	b := make([]byte, 0, 256)
	b = append(b, dir)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, ' ')
	b = append(b, title...)
	for i, c := range hdr {
		if i%4 == 0 {
			b = append(b, '\n', dir)
			b = strconv.AppendUint(b, id, 10)
			b = append(b, indent...)
		}
		b = append(b, ' ', '0', 'x', hexd[c>>4], hexd[c&15])
	}
	b = append(b, '\n')
	h.vmu.Lock()
	h.vout.Write(b)
	h.vmu.Unlock()
}

// vbinRequest writes memcached's -vv lines for a binary request: its
// header in hex, then the line memcached writes for some commands.
func (h *Handler) vbinRequest(id uint64, frame []byte, r *binary.Request) {
	if len(frame) < binary.HeaderLen {
		return
	}
	h.vdump('<', id, "Read binary protocol data:", "   ", frame[:binary.HeaderLen])
	switch op := r.Opcode.Base(); op {
	case binary.OpGet, binary.OpGetK:
		h.vline('<', id, " GET ", r.Key)
	case binary.OpTouch, binary.OpGAT, binary.OpGATK:
		h.vline('<', id, " TOUCH ", r.Key)
	case binary.OpSet, binary.OpAdd, binary.OpReplace:
		name := map[binary.Opcode]string{binary.OpSet: " SET ", binary.OpAdd: " ADD ", binary.OpReplace: " REPLACE "}[op]
		h.vline('<', id, name, r.Key, []byte(" Value len is "), strconv.AppendInt(nil, int64(len(r.Value)), 10))
	case binary.OpAppend, binary.OpPrepend:
		h.vraw([]byte("Value len is "), strconv.AppendInt(nil, int64(len(r.Value)), 10))
	case binary.OpDelete:
		h.vraw([]byte("Deleting "), r.Key)
	case binary.OpIncrement, binary.OpDecrement:
		h.vraw([]byte("incr "), r.Key, []byte(fmt.Sprintf(" %d, %d, %d", int64(r.Delta), int64(r.Initial), int32(r.Exptime))))
	case binary.OpStat:
		h.vline('<', id, " STATS ", r.Key)
	}
}

// vbinReplies writes memcached's -vv lines for the binary responses a
// session appended to out from mark: "Writing an error: <message>" for an
// error without a key, and each response header in hex.
func (h *Handler) vbinReplies(id uint64, out []byte, mark int) {
	if mark > len(out) {
		return
	}
	resp := out[mark:]
	for len(resp) >= binary.HeaderLen && resp[0] == binary.MagicResponse {
		klen := int(resp[2])<<8 | int(resp[3])
		elen := int(resp[4])
		status := int(resp[6])<<8 | int(resp[7])
		blen := int(resp[8])<<24 | int(resp[9])<<16 | int(resp[10])<<8 | int(resp[11])
		if binary.HeaderLen+blen > len(resp) {
			return
		}
		frame := resp[:binary.HeaderLen]
		resp = resp[binary.HeaderLen+blen:]
		if status != 0 && klen == 0 && elen <= blen {
			h.vline('>', id, " Writing an error: ", frame[binary.HeaderLen+elen:binary.HeaderLen+blen])
		}
		var hdr [binary.HeaderLen]byte
		copy(hdr[:], frame)
		switch binary.Opcode(hdr[1]).Base() {
		case binary.OpStat:
			continue // memcached writes stats without this dump
		case binary.OpGet, binary.OpGetK, binary.OpTouch, binary.OpGAT, binary.OpGATK:
			// memcached dumps these headers before it sets their CAS.
			clear(hdr[16:])
		}
		h.vdump('>', id, "Writing bin response:", "  ", hdr[:])
	}
}
