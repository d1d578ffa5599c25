package server

import (
	"bytes"
	"testing"
)

func TestLocalConn(t *testing.T) {
	s := New(HandlerFunc(func(c *Conn) Session { return nil }), Config{})
	var w bytes.Buffer
	c := s.LocalConn(&w)
	if c.Server() != s {
		t.Fatal("LocalConn's Server is not s")
	}
	c.Out = append(c.Out, "flushed"...)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	c.Out = append(c.Out, " kept"...)
	if w.String() != "flushed" || string(c.Out) != " kept" {
		t.Fatalf("written %q, Out %q", w.String(), c.Out)
	}
	if st := s.Stats(); st.CurrConns != 0 || st.TotalConns != 0 {
		t.Fatalf("a LocalConn counts as a connection: %+v", st)
	}
}
