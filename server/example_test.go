package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/mnemo-cache/mnemo/server"
)

// kv is a tiny key-value protocol, one request per line:
//
//	PUT key value   store value under key: "STORED"
//	GET key         "VALUE value", or "NOTHING" for an unknown key
//	WHO             a line per listener and connection: its ID and what
//	                it is doing, then "END"
//	BYE             "BYE", then the server closes the connection
//
// anything else is answered "HUH?". Its Handler holds the store that every
// connection shares; each connection gets a kvSession.
type kv struct {
	mu   sync.Mutex
	data map[string]string
}

func (h *kv) NewSession(*server.Conn) server.Session { return kvSession{h} }

type kvSession struct{ h *kv }

// maxLine bounds a request line: a longer one is refused rather than
// buffered without end.
const maxLine = 1024

// Serve answers every complete line in in; an incomplete last line waits
// for more bytes.
func (s kvSession) Serve(c *server.Conn, in []byte) (consumed, need int, err error) {
	for {
		i := bytes.IndexByte(in[consumed:], '\n')
		if i < 0 {
			if len(in)-consumed > maxLine {
				c.Out = append(c.Out, "LINE TOO LONG\n"...)
				return consumed, 0, server.ErrClose
			}
			return consumed, 0, nil
		}
		line := in[consumed : consumed+i]
		consumed += i + 1
		cmd, rest, _ := bytes.Cut(line, []byte(" "))
		switch string(cmd) {
		case "PUT":
			key, value, ok := bytes.Cut(rest, []byte(" "))
			if !ok {
				c.Out = append(c.Out, "HUH?\n"...)
				continue
			}
			s.h.mu.Lock()
			s.h.data[string(key)] = string(value) // copies: in is only lent
			s.h.mu.Unlock()
			c.Out = append(c.Out, "STORED\n"...)
		case "GET":
			s.h.mu.Lock()
			value, ok := s.h.data[string(rest)]
			s.h.mu.Unlock()
			if ok {
				c.Out = append(append(append(c.Out, "VALUE "...), value...), '\n')
			} else {
				c.Out = append(c.Out, "NOTHING\n"...)
			}
		case "WHO":
			c.Server().EachConn(func(ci server.ConnInfo) {
				kind := "client"
				if ci.Listening {
					kind = "listener"
				}
				c.Out = fmt.Appendf(c.Out, "%s %d %v\n", kind, ci.ID, ci.State)
			})
			c.Out = append(c.Out, "END\n"...)
		case "BYE":
			c.Out = append(c.Out, "BYE\n"...)
			return consumed, 0, server.ErrClose
		default:
			c.Out = append(c.Out, "HUH?\n"...)
		}
	}
}

func (kvSession) Close() {}

// Example serves the kv protocol on a loopback port, with room for one
// client at a time, and talks to it.
func Example() {
	s := server.New(&kv{data: map[string]string{}}, server.Config{
		MaxConns:      1,
		RejectMessage: []byte("BUSY\n"), // kv's words for "too many clients"
	})
	l, err := server.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()

	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			panic(err)
		}
		c.SetDeadline(time.Now().Add(time.Minute)) // only against a hang
		return c, bufio.NewReader(c)
	}
	read := func(r *bufio.Reader, lines int) {
		for range lines {
			line, err := r.ReadString('\n')
			if err != nil {
				fmt.Println("error:", err)
				return
			}
			fmt.Print(line)
		}
	}
	closed := func(r *bufio.Reader) {
		if _, err := r.ReadByte(); err == io.EOF {
			fmt.Println("(closed)")
		} else {
			fmt.Println("error: not closed:", err)
		}
	}

	c1, r1 := dial()
	defer c1.Close()
	// Pipelined: sent at once, answered in order.
	fmt.Fprint(c1, "PUT greeting hello world\nGET greeting\nGET nothing\nHELLO\n")
	read(r1, 4)
	fmt.Fprint(c1, "WHO\n")
	read(r1, 3)

	c2, r2 := dial() // one client too many
	defer c2.Close()
	read(r2, 1)
	closed(r2)

	fmt.Fprint(c1, "BYE\n")
	read(r1, 1)
	closed(r1)

	fmt.Println(s.Shutdown(context.Background()), <-served)
	// Output:
	// STORED
	// VALUE hello world
	// NOTHING
	// HUH?
	// listener 1 listening
	// client 2 serving
	// END
	// BUSY
	// (closed)
	// BYE
	// (closed)
	// <nil> <nil>
}
