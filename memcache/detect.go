package memcache

import (
	"github.com/mnemo-cache/mnemo/protocol/binary"
	"github.com/mnemo-cache/mnemo/server"
)

// detectSession picks a connection's protocol from its first byte, as
// memcached's negotiating connections do: MagicRequest (0x80) starts a
// binary session, anything else a text session. It then hands every batch
// to the chosen session.
type detectSession struct {
	h     *Handler
	inner server.Session
}

// Serve chooses the protocol on the first byte and serves in with it.
func (d *detectSession) Serve(c *server.Conn, in []byte) (consumed, need int, err error) {
	if d.inner == nil {
		if len(in) == 0 {
			return 0, 0, nil
		}
		if in[0] == binary.MagicRequest {
			d.inner = d.h.newBinarySession()
		} else {
			d.inner = d.h.newTextSession()
		}
		if d.h.verbose() {
			p := " Client using the ascii protocol"
			if in[0] == binary.MagicRequest {
				p = " Client using the binary protocol"
			}
			d.h.vline(0, c.ID(), ":"+p)
		}
	}
	return d.inner.Serve(c, in)
}

// Park lets the chosen session give its working state back while the
// connection is parked.
func (d *detectSession) Park(c *server.Conn) {
	if p, ok := d.inner.(server.Parker); ok {
		p.Park(c)
	}
}

// Close closes the chosen session, if any.
func (d *detectSession) Close() {
	if d.inner != nil {
		d.inner.Close()
	}
}
