package testserver

import (
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func TestWaitConsumed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c := Dial(t, l.Addr().String())
	srv := <-accepted
	if srv == nil {
		t.Fatal("accept failed")
	}
	defer srv.Close()
	const n = 1000
	if _, err := c.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- WaitConsumed(c) }()
	// The server has not read: WaitConsumed must not return. (The pause
	// only gives a wrong WaitConsumed the time to show itself; a slow
	// machine cannot make a right one fail.)
	select {
	case err := <-done:
		t.Fatalf("WaitConsumed returned %v before the server read anything", err)
	case <-time.After(50 * time.Millisecond):
	}
	buf := make([]byte, n/2)
	if _, err := io.ReadFull(srv, buf); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("WaitConsumed returned %v with half the bytes unread", err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := io.ReadFull(srv, buf); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("WaitConsumed after the server read everything: %v", err)
	}
}

func TestListeningPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got, err := listeningPort(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// The tests of this package do not run in parallel: this is the
	// process's only listener.
	if want := l.Addr().(*net.TCPAddr).Port; got != want {
		t.Errorf("listeningPort = %d, want %d", got, want)
	}
}
