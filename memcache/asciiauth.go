package memcache

import (
	"bytes"

	"github.com/mnemo-cache/mnemo/internal/number"
	"github.com/mnemo-cache/mnemo/protocol/text"
	"github.com/mnemo-cache/mnemo/server"
)

// Limits of memcached's ascii authentication exchange.
const (
	// authLineMax: a connection that sends this many bytes without a
	// newline before authenticating is closed (memcached: 2048).
	authLineMax = 2048
	// authDataMax bounds the announced length of the "user password"
	// data block; a longer one closes the connection (memcached reads it
	// into its 16 KiB read buffer).
	authDataMax = text.MaxLine
)

// asciiAuthSession is memcached's ascii authentication (-Y) in front of a
// text session: until the connection authenticates, the only command is
// "set <key> <flags> <exptime> <bytes>" whose data is "<user> <password>";
// the key, flags and exptime are ignored. Success answers STORED and hands
// the connection to the text session; failure answers
// "CLIENT_ERROR authentication failure" and the connection may try again.
type asciiAuthSession struct {
	text   *session
	authed bool
	want   int // length of the data block being awaited (with "\r\n"); 0 while reading a line
}

// Serve runs the authentication exchange, then the text protocol.
func (a *asciiAuthSession) Serve(c *server.Conn, in []byte) (consumed, need int, err error) {
	if a.text.textWork == nil {
		a.text.wake()
	}
	for !a.authed && consumed < len(in) {
		if err := flushIfFull(c); err != nil {
			return consumed, 0, err
		}
		buf := in[consumed:]
		if a.want == 0 {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				if len(buf) > authLineMax {
					return consumed, 0, server.ErrClose
				}
				return consumed, 0, nil
			}
			consumed += i + 1
			var toks [6][]byte
			nt := authTokens(buf[:i], toks[:])
			size, ok := uint32(0), false
			if nt >= 5 && string(toks[0]) == "set" {
				// memcached reads the length with safe_strtoul.
				size, ok = number.ParseUint32(toks[4])
			}
			if !ok {
				c.Out = append(c.Out, "CLIENT_ERROR unauthenticated\r\n"...)
				continue
			}
			if size > authDataMax {
				return consumed, 0, server.ErrClose
			}
			a.want = int(size) + 2
			continue
		}
		if len(buf) < a.want {
			return consumed, a.want, nil
		}
		data := buf[:a.want]
		consumed += a.want
		a.want = 0
		if !bytes.HasSuffix(data, []byte("\r\n")) {
			c.Out = append(c.Out, "CLIENT_ERROR bad command line termination\r\n"...)
			continue
		}
		var toks [3][]byte
		if authTokens(data[:len(data)-2], toks[:]) < 2 {
			c.Out = append(c.Out, "CLIENT_ERROR bad authentication token format\r\n"...)
			continue
		}
		cs := a.text.cs
		cs.AuthCmds.Add(1)
		if a.text.h.authCreds.Load().Check(toks[0], toks[1]) {
			a.authed = true
			c.Out = append(c.Out, text.Stored...)
		} else {
			cs.AuthErrors.Add(1)
			a.text.h.cfg.Logger.Info("ascii authentication failed", "conn", c.ID())
			c.Out = append(c.Out, "CLIENT_ERROR authentication failure\r\n"...)
		}
	}
	if !a.authed || consumed == len(in) {
		return consumed, 0, nil
	}
	n, need, err := a.text.Serve(c, in[consumed:])
	return consumed + n, need, err
}

// Park parks the text session.
func (a *asciiAuthSession) Park(c *server.Conn) { a.text.Park(c) }

// Close closes the text session.
func (a *asciiAuthSession) Close() { a.text.Close() }

// authTokens splits line at spaces, as memcached's tokenizer does, into
// toks; it returns how many tokens there are (counting those beyond
// len(toks), which are not stored).
func authTokens(line []byte, toks [][]byte) int {
	n := 0
	for len(line) > 0 {
		i := bytes.IndexByte(line, ' ')
		if i == 0 {
			line = line[1:]
			continue
		}
		tok := line
		if i > 0 {
			tok, line = line[:i], line[i+1:]
		} else {
			line = nil
		}
		if n < len(toks) {
			toks[n] = tok
		}
		n++
	}
	return n
}
