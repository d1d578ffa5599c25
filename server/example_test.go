package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"

	"github.com/mnemo-cache/mnemo/server"
)

// upper is a line protocol: every line is answered in upper case.
type upper struct{}

func (upper) Serve(c *server.Conn, in []byte) (consumed, need int, err error) {
	for {
		i := bytes.IndexByte(in[consumed:], '\n')
		if i < 0 {
			return consumed, 0, nil // the rest is an incomplete line
		}
		c.Out = append(c.Out, bytes.ToUpper(in[consumed:consumed+i+1])...)
		consumed += i + 1
	}
}

func (upper) Close() {}

func Example() {
	s := server.New(server.HandlerFunc(func(*server.Conn) server.Session { return upper{} }), server.Config{})
	l, err := server.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Fprint(c, "hello\nworld\n") // pipelined: answered with one write
	r := bufio.NewReader(c)
	for range 2 {
		line, _ := r.ReadString('\n')
		fmt.Print(line)
	}

	fmt.Println(s.Shutdown(context.Background()), <-done)
	// Output:
	// HELLO
	// WORLD
	// <nil> <nil>
}
