// Package server owns mnemo's network layer: a protocol-agnostic framework
// for stream servers (TCP, TLS over TCP, and unix sockets). An application plugs its
// protocol in as a Handler; mnemo's memcached application (package
// memcache) is one, and the package's example serves another. It owns
// listeners, the accept loop, the life of each connection, its read and
// reply buffers, the connection limit, the idle timeout, pipelining,
// connection counters and states, and graceful shutdown. It knows nothing
// of protocols or storage, speaks no protocol's words (the application
// supplies them: the bytes sent to a rejected connection, the names it
// gives connection states) and imports the standard library only.
//
// ServeTLS serves a listener with TLS (crypto/tls): each connection's
// handshake runs in its own goroutine under Config.TLSHandshakeTimeout,
// failures are logged and counted (Stats.TLSHandshakeErrors), and the
// Session sees decrypted bytes. See tls.go for how TLS connections park.
//
// # Connections
//
// Each accepted connection runs in its own goroutine: a Handler creates one
// Session for it, and the connection loop reads bytes and hands them to the
// Session. A Session may block (a Session waiting on disk stalls only its
// own connection). A connection that has waited Config.ParkIdleAfter (1 s
// by default) for a request, with nothing buffered, is parked: its
// goroutine ends (its stack is the largest part of an idle connection's
// cost) and its descriptor waits in the server's one epoll set; when
// bytes arrive the poller gives it a goroutine again. Only idle
// connections park (and connections waiting for the rest of a request,
// see below), so a connection with work always has its goroutine.
// While more than 512 connections are not parked, a connection parks as
// soon as its read would block (an event loop's cost, one epoll_ctl per
// wake-up), so a burst of connections never holds a goroutine each;
// a busy connection (requests within 100 ms of each other) keeps its
// goroutine, as parking at once would cost it a wake-up through the
// poller and a new goroutine per request (see busyWindow).
// Parking needs Linux and a connection that exposes its descriptor (TCP
// and unix sockets).
//
// A plain (TCP or unix) connection parks bare: it keeps a duplicate of
// its descriptor and hands its net.Conn back to the runtime, so a parked
// connection costs its Conn (256 bytes), its Session and its share of
// the server's tables. Connections that are waiting when the accept loop
// looks (a burst) are accepted with accept4 and are bare from the start.
// A bare connection reads and writes its descriptor itself and parks
// again as soon as a read would block, with part of a request buffered
// or none; it takes a net.Conn again when it must wait with its
// goroutine (a reply the socket does not take at once) or turns out busy
// on a server with few connections (see bare.go). TLS connections keep
// their net.Conn. A Session that is a Parker is told just before its
// connection parks with nothing buffered, to give up what it can
// rebuild. Parked connections are closed for Config.IdleTimeout by the
// sweeper, which runs every ParkIdleAfter or IdleTimeout, whichever is
// shorter. After a burst of connections has parked, the server returns
// the freed memory (their stacks and buffers) to the OS, at most every
// 30 s.
//
// # The Session contract
//
// Serve is called with every unconsumed byte buffered for the connection.
// It consumes complete requests from the start of in, appends their replies
// to c.Out, and returns how many bytes it consumed. When the rest of in is an
// incomplete request it returns need, the total number of unconsumed bytes
// it requires before it can make progress (0 when unknown: any more bytes
// will do); the connection then reads until that many bytes are buffered
// before calling Serve again. in is only valid during the call: a Session
// that keeps bytes must copy them. Serve must not append to in. c.Out
// belongs to the connection: a Session may append to it or replace it, but
// must not keep a reference to it after Serve returns.
//
// After each Serve call whatever is in c.Out is written with one write call,
// so pipelined requests that arrive together are answered with one write per
// batch. A Session that produces a large reply may call c.Flush to write
// c.Out early, and c.WriteThrough to send c.Out and a large buffer it may
// not keep (item memory under a lock) in one writev that never waits. On
// Linux, reads and writes are raw system calls on the non-blocking socket
// (see rawsys_linux.go). A plain connection whose read came back short
// calls Serve from inside that read (syscall.RawConn.Read's callback), so
// that it then waits for its next request in Go's poller without a read
// that finds nothing first (see "Serving inline" in conn.go); a Session
// that reads the connection itself must do it through NetConn, which then
// gives it a duplicate of the descriptor.
// When Serve returns an error the connection is closed after
// c.Out has been written; ErrClose is a normal close (a client that said
// goodbye). A panic in Serve is recovered and logged; it closes that
// connection only, and its partial reply is dropped. Close is called once
// when the connection ends, whatever the reason.
//
// # Buffer policy
//
// Memory per idle connection is kept small. A read buffer of
// Config.ReadBufferSize bytes (16 KiB by default) comes from a pool shared
// by all connections. On TCP and unix connections the connection waits for
// readability without holding a buffer and takes one from the pool only
// when bytes arrive; it gives it back as soon as every buffered byte has
// been consumed. (Connections that do not expose their file descriptor,
// such as wrapped connections, keep their buffer while they live; TLS
// connections, which read through crypto/tls, keep it until they park.)
// When a Session needs more bytes than the buffer holds (a large value),
// the buffer is grown once to fit, up to Config.MaxRequestSize; a request
// larger than that closes the connection. (That cap is a safety net: a
// protocol that wants to answer an oversized request with an error checks
// the size itself and consumes the data as it arrives.) Grown buffers are
// dropped as soon as the large request is consumed, and the connection
// goes back to a pooled buffer. Grown buffers hold requests not yet
// complete, so together they are bounded by Config.ReadBufMemLimit: a
// connection whose buffer would grow past what the others leave free is
// refused (a Session that is a Refuser appends the application's answer,
// which is written) and closed, and Stats.ReadBufOOM counts it. Reply buffers also come from a pool and go
// back to it when the connection goes idle; one that grew past 64 KiB is
// dropped after it is written.
//
// # Limits, states and shutdown
//
// Beyond Config.MaxConns open connections, a new connection is sent
// Config.RejectMessage (nothing when it is empty), closed, and counted as
// rejected. Out of file descriptors (accept fails with EMFILE or ENFILE),
// the server does what memcached does with its listener paused, but
// tells the waiting clients instead of leaving them in the backlog: it
// keeps one spare descriptor, gives it up to accept a waiting client,
// sends it RejectMessage, closes it and takes the spare back. Failing
// that, the accept loop backs off (5 ms doubling to 1 s, cut short when a
// connection closes). Each episode of failed accepts is logged once, when
// it starts, and ends with the next successful accept; Stats counts the
// failures, the episodes and their time. EachConn lists the listeners and connections with their State
// (waiting, reading, serving, writing, ...) for an application that reports
// them. Shutdown stops accepting, lets every connection finish the batch it
// is executing and write its replies, closes the connections and waits for
// their goroutines to end; Close shuts everything down at once (a
// connection still in Serve closes its descriptor when Serve returns).
package server
