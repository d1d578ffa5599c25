package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Handler creates a Session for each accepted connection.
type Handler interface {
	// NewSession is called in the connection's goroutine before its first
	// read. A panic in it closes the connection.
	NewSession(c *Conn) Session
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(c *Conn) Session

// NewSession calls f.
func (f HandlerFunc) NewSession(c *Conn) Session { return f(c) }

// A Session is one connection's protocol state. See the package
// documentation for the contract.
type Session interface {
	// Serve consumes complete requests from the start of in and appends
	// their replies to c.Out. It returns how many bytes it consumed and,
	// when the rest of in is an incomplete request, need: the total number
	// of unconsumed bytes required before it can make progress (0 =
	// unknown, any more bytes). An error closes the connection after c.Out
	// has been written (ErrClose for a normal close the client asked for).
	// Serve may block (on I/O of its own); it may call c.Flush to write
	// c.Out early.
	Serve(c *Conn, in []byte) (consumed, need int, err error)
	// Close is called once when the connection ends, to release the
	// session's state.
	Close()
}

var (
	// ErrClose, returned by Session.Serve, closes the connection normally
	// after its replies have been written.
	ErrClose = errors.New("server: close connection")
	// ErrRequestTooLarge is why a connection is closed when a request
	// needs a read buffer larger than Config.MaxRequestSize.
	ErrRequestTooLarge = errors.New("server: request too large")
	// ErrSessionPanic is why a connection is closed when its Session
	// panicked.
	ErrSessionPanic = errors.New("server: session panicked")
	// ErrBadConsumed is why a connection is closed when Session.Serve
	// returned a consumed count outside [0, len(in)].
	ErrBadConsumed = errors.New("server: session consumed an invalid byte count")
	// ErrConnBroken is returned by Conn.Flush after a write on the
	// connection has failed.
	ErrConnBroken = errors.New("server: connection broken")
	// ErrReadBufLimit is why a connection is refused and closed when its
	// read buffer would have to grow past what Config.ReadBufMemLimit
	// leaves free.
	ErrReadBufLimit = errors.New("server: read buffer memory limit reached")
)

// A Refuser is a Session that answers a request the server refuses to
// buffer (err is ErrReadBufLimit): Refuse appends the application's
// reply to c.Out, which is written before the connection is closed. It is
// called in the connection's goroutine, outside Serve. A Session that is
// not a Refuser is closed without a word.
type Refuser interface {
	Refuse(c *Conn, err error)
}

// A Parker is a Session that gives memory up while its connection is
// parked (see Config.ParkIdleAfter). Park is called in the connection's
// goroutine, between Serve calls, when the connection is about to park
// with nothing buffered and the last Serve asking for no more bytes (a
// bare connection that parks with part of a request is not told). It may
// release whatever the Session can rebuild in its next Serve (decoder
// scratch, per-request state); Serve or Close follows, as usual. A panic
// in Park closes the connection.
type Parker interface {
	Park(c *Conn)
}

// Defaults for the zero values of Config.
const (
	DefaultMaxConns       = 1024
	DefaultReadBufferSize = 16 << 10
	DefaultMaxRequestSize = 2 << 20
	// MaxKeptReplyBuffer is the capacity above which a reply buffer is
	// dropped after it has been written instead of being reused.
	MaxKeptReplyBuffer = 64 << 10
	// LargeReplyBuffer is the capacity of the pooled buffers Conn.GrowOut
	// moves a reply buffer to when it outgrows a small one (large values,
	// long multi-gets): a connection takes one for a batch and gives it
	// back when the batch is done, so replies of large values reuse a few
	// buffers instead of growing a new one each time.
	LargeReplyBuffer = 512 << 10
)

const (
	initialReplyBuffer = 4 << 10
	rejectWriteTimeout = time.Second
	minReadBufferSize  = 64
)

// Config configures a Server. The zero value of every field means its
// documented default.
type Config struct {
	// MaxConns is the most client connections open at once; listeners
	// are not counted. 0 means DefaultMaxConns. A connection beyond it is
	// sent RejectMessage, closed and counted in Stats.RejectedConns.
	MaxConns int
	// RejectMessage is written (with a short deadline) to a connection
	// rejected for MaxConns, in the application's protocol; nil or empty
	// means it is closed without a word.
	RejectMessage []byte
	// IdleTimeout closes a connection that sends nothing for this long,
	// or that takes longer than this to accept one batch of replies; 0
	// means never.
	IdleTimeout time.Duration
	// ReadBufferSize is the size of the pooled read buffers; 0 means
	// DefaultReadBufferSize. Values under 64 are raised to 64.
	ReadBufferSize int
	// MaxRequestSize caps how far a connection's read buffer may grow for
	// one request (the application sets it to its largest item plus a
	// command line); 0 means DefaultMaxRequestSize. It is raised to
	// ReadBufferSize if smaller.
	MaxRequestSize int
	// ReadBufMemLimit caps, across all connections, the bytes of read
	// buffers grown past ReadBufferSize to hold one unfinished request (a
	// large value being uploaded, a long line): the memory of requests
	// not yet complete. Pooled buffers of ReadBufferSize are not counted
	// (MaxConns bounds them). 0 means no limit. A connection whose buffer
	// would grow past the limit is refused: if its Session is a Refuser it
	// answers, then the connection is closed and counted in
	// Stats.ReadBufOOM.
	ReadBufMemLimit int64
	// ParkIdleAfter is how long a connection waits for a request before
	// it is parked: its goroutine ends and the server's poller gives it a
	// new one when bytes arrive (Linux, TCP and unix sockets). Crowded
	// servers and bare connections park sooner (see the package
	// documentation). 0 means DefaultParkIdleAfter; negative, never
	// (and connections keep their net.Conn).
	ParkIdleAfter time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake of a connection
	// accepted by ServeTLS; 0 means DefaultTLSHandshakeTimeout.
	TLSHandshakeTimeout time.Duration
	// Logger receives accept errors, recovered panics, failed TLS
	// handshakes and (at debug level) why connections closed; nil
	// discards.
	Logger *slog.Logger
}

// Validate reports a Config whose fields are out of range.
func (c Config) Validate() error {
	switch {
	case c.MaxConns < 0:
		return fmt.Errorf("server: MaxConns %d is negative", c.MaxConns)
	case c.IdleTimeout < 0:
		return fmt.Errorf("server: IdleTimeout %v is negative", c.IdleTimeout)
	case c.ReadBufferSize < 0:
		return fmt.Errorf("server: ReadBufferSize %d is negative", c.ReadBufferSize)
	case c.MaxRequestSize < 0:
		return fmt.Errorf("server: MaxRequestSize %d is negative", c.MaxRequestSize)
	case c.ReadBufMemLimit < 0:
		return fmt.Errorf("server: ReadBufMemLimit %d is negative", c.ReadBufMemLimit)
	case c.TLSHandshakeTimeout < 0:
		return fmt.Errorf("server: TLSHandshakeTimeout %v is negative", c.TLSHandshakeTimeout)
	case c.MaxRequestSize > 0 && c.ReadBufferSize > c.MaxRequestSize:
		return fmt.Errorf("server: ReadBufferSize %d exceeds MaxRequestSize %d", c.ReadBufferSize, c.MaxRequestSize)
	}
	return nil
}

// String describes the Config, with defaults applied, for logs.
func (c Config) String() string {
	c = c.withDefaults()
	return fmt.Sprintf("maxconns=%d idle_timeout=%v read_buffer_size=%d max_request_size=%d read_buf_mem_limit=%d",
		c.MaxConns, c.IdleTimeout, c.ReadBufferSize, c.MaxRequestSize, c.ReadBufMemLimit)
}

func (c Config) withDefaults() Config {
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.IdleTimeout < 0 {
		c.IdleTimeout = 0
	}
	if c.ReadBufferSize <= 0 {
		c.ReadBufferSize = DefaultReadBufferSize
	}
	if c.ReadBufferSize < minReadBufferSize {
		c.ReadBufferSize = minReadBufferSize
	}
	if c.MaxRequestSize <= 0 {
		c.MaxRequestSize = DefaultMaxRequestSize
	}
	if c.MaxRequestSize < c.ReadBufferSize {
		c.MaxRequestSize = c.ReadBufferSize
	}
	if c.ReadBufMemLimit < 0 {
		c.ReadBufMemLimit = 0
	}
	if c.ParkIdleAfter == 0 {
		c.ParkIdleAfter = DefaultParkIdleAfter
	}
	if c.TLSHandshakeTimeout <= 0 {
		c.TLSHandshakeTimeout = DefaultTLSHandshakeTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Stats are a Server's counters.
type Stats struct {
	CurrConns     uint64 // client connections open now
	TotalConns    uint64 // client connections accepted since start (rejected ones excluded)
	RejectedConns uint64 // connections rejected for MaxConns
	MaxConns      int    // the MaxConns limit in force
	Listeners     int    // listeners being served now
	PeakConns     uint64 // most connections plus listeners open at once
	BytesRead     uint64 // bytes read from clients
	BytesWritten  uint64 // bytes written to clients
	Reads         uint64 // read calls that returned bytes
	Writes        uint64 // write calls (one per batch of replies, plus Flush calls)
	ReadBufCount  uint64 // connections holding a read buffer now (pooled or grown)
	ReadBufBytes  uint64 // bytes of read buffers held by connections now (pooled or grown)
	// ReadBufGrownBytes is the part of ReadBufBytes in buffers grown
	// past ReadBufferSize for unfinished requests: what
	// Config.ReadBufMemLimit bounds.
	ReadBufGrownBytes uint64
	ReadBufMemLimit   int64  // the ReadBufMemLimit in force (0: none)
	ReadBufOOM        uint64 // connections refused for ReadBufMemLimit
	ReplyBufCount     uint64 // connections holding a reply buffer now
	ReplyBufBytes     uint64 // bytes (capacity) of the reply buffers held now
	// AcceptErrors counts failed accept calls (out of descriptors or
	// memory), AcceptPauses the episodes of them (each logged once; an
	// episode ends when an accept succeeds; memcached's
	// listen_disabled_num) and AcceptPausedTime their length
	// (time_in_listen_disabled_us). Accepting is false during one
	// (accepting_conns). FDRejectedConns counts the clients rejected
	// while out of descriptors (also in RejectedConns).
	AcceptErrors     uint64
	AcceptPauses     uint64
	AcceptPausedTime time.Duration
	Accepting        bool
	FDRejectedConns  uint64
	// ParkedConns is the number of connections parked now: idle, in the
	// server's poller, without a goroutine (part of CurrConns).
	ParkedConns uint64
	// IdleTimeout is the Config.IdleTimeout in force (0: none);
	// IdleKicks counts the connections closed for it (memcached's
	// idle_kicks).
	IdleTimeout time.Duration
	IdleKicks   uint64
	// TLSHandshakes counts the TLS handshakes completed (ServeTLS),
	// TLSHandshakeErrors those that failed (clients that closed before
	// sending a byte are not counted).
	TLSHandshakes      uint64
	TLSHandshakeErrors uint64
}

// ConnInfo describes one connection or listener, as EachConn reports it.
type ConnInfo struct {
	ID         uint64   // unique for the server's life, in order of creation
	Listening  bool     // a listener, not a client connection
	RemoteAddr net.Addr // nil for a listener; may be nil or unnamed for a unix socket
	LocalAddr  net.Addr
	ListenAddr net.Addr // the address of the listener that accepted it
	TLS        bool     // the listener or connection speaks TLS (ServeTLS)
	State      State    // StateListening for a listener
	// SinceLastRequest is the time since the connection last consumed
	// a request (or since it opened); for a listener, since it started.
	SinceLastRequest time.Duration
}

// Server serves connections accepted on listeners, one goroutine each.
type Server struct {
	h      Handler
	cfg    Config
	logger *slog.Logger

	rpool sync.Pool              // *[]byte of cfg.ReadBufferSize
	opool sync.Pool              // *[]byte reply buffers
	lpool sync.Pool              // *[]byte reply buffers of LargeReplyBuffer bytes
	gpool [growClasses]sync.Pool // *[]byte grown read buffers, by size class (growSize)

	nextID   atomic.Uint64
	grown    atomic.Int64  // bytes of grown read buffers held now
	bufOOM   atomic.Uint64 // refusals for ReadBufMemLimit
	curr     atomic.Int64
	total    atomic.Uint64
	rejected atomic.Uint64
	stopping atomic.Bool

	acceptErrs atomic.Uint64 // failed accept calls
	parked     atomic.Int64  // connections parked now
	parks      atomic.Uint64 // connections parked so far
	releases   atomic.Uint64 // free memory returned to the OS after a mass park
	// releaseAfter is releaseAfterParked (a field for tests)
	releaseAfter int
	eagerParks   atomic.Int64 // connections parked at once, crowded
	// crowdedAbove is crowdedAbove (a field for tests, which may
	// change it while the server runs)
	crowdedAbove atomic.Int64
	// inline: plain connections serve inside their reads (see
	// serveInline); tests may turn it off before serving
	inline bool
	// busyWindow is busyWindow, or ParkIdleAfter if shorter, in
	// nanoseconds (a field for tests, which may change it while the
	// server runs)
	busyWindow atomic.Int64
	emptyReads atomic.Uint64 // reads through Go's poller that found nothing (EAGAIN)
	fdRejected atomic.Uint64 // clients rejected through the spare descriptor
	idleKicks  atomic.Uint64 // connections closed for IdleTimeout

	tlsHandshakes      atomic.Uint64
	tlsHandshakeErrors atomic.Uint64

	poller  *poller        // parked connections; nil when parking is off
	bgOnce  sync.Once      // starts the poller and the sweeper
	bg      sync.WaitGroup // the poller and the sweeper
	spareMu sync.Mutex
	spare   *os.File // a descriptor held in reserve; see rejectWithSpare

	mu         sync.Mutex
	paused     bool          // an accept pause is under way
	pauseStart time.Time     // when it began
	pauses     uint64        // accept pauses so far
	pausedTime time.Duration // time in ended pauses
	freed      chan struct{} // closed when a connection ends; nil if no one waits
	conns      map[*Conn]struct{}
	listeners  map[*listener]struct{}
	loops      int // accept loops running
	peak       uint64
	retired    counters // counters of closed connections
	done       chan struct{}
	doneOnce   sync.Once
}

type counters struct {
	bytesRead, bytesWritten, reads, writes uint64
}

type listener struct {
	l     net.Listener
	id    uint64
	start time.Time
	tls   *tls.Config // nil: plain connections
}

// New returns a Server that creates sessions with h. Config fields out of
// range are replaced by their defaults (call Config.Validate to reject
// them instead). New panics if h is nil.
func New(h Handler, cfg Config) *Server {
	if h == nil {
		panic("server: nil Handler")
	}
	s := &Server{
		h:         h,
		cfg:       cfg.withDefaults(),
		conns:     make(map[*Conn]struct{}),
		listeners: make(map[*listener]struct{}),
		done:      make(chan struct{}),

		releaseAfter: releaseAfterParked,
	}
	s.crowdedAbove.Store(crowdedAbove)
	s.inline = true
	s.busyWindow.Store(int64(min(busyWindow, max(s.cfg.ParkIdleAfter, 0))))
	s.logger = s.cfg.Logger
	size := s.cfg.ReadBufferSize
	s.rpool.New = func() any { b := make([]byte, size); return &b }
	s.opool.New = func() any { b := make([]byte, 0, initialReplyBuffer); return &b }
	s.lpool.New = func() any { b := make([]byte, 0, LargeReplyBuffer); return &b }
	return s
}

// Config returns the server's configuration with defaults applied.
func (s *Server) Config() Config { return s.cfg }

// Serve accepts connections on l and serves each in its own goroutine until
// l fails or the server is shut down. Several listeners may be served
// concurrently. Serve closes l when it returns. It returns nil after
// Shutdown or Close, and the accept error otherwise.
func (s *Server) Serve(l net.Listener) error { return s.serve(l, nil) }

// serve is Serve, with TLS on the connections when tc is not nil.
func (s *Server) serve(l net.Listener, tc *tls.Config) error {
	le := &listener{l: l, id: s.nextID.Add(1), start: time.Now(), tls: tc}
	s.mu.Lock()
	if s.stopping.Load() {
		s.mu.Unlock()
		l.Close()
		return nil
	}
	s.listeners[le] = struct{}{}
	s.loops++
	s.notePeakLocked()
	s.mu.Unlock()
	s.openSpare()
	s.bgOnce.Do(s.startPoller)
	defer func() {
		l.Close()
		s.mu.Lock()
		delete(s.listeners, le)
		s.loops--
		s.mu.Unlock()
	}()

	ra := s.newRawAcceptor(l, tc != nil)
	var backoff time.Duration
	for {
		var nc net.Conn
		fd := -1
		var err error
		if ra != nil {
			fd, err = ra.accept()
		}
		if ra == nil || err == syscall.EAGAIN {
			// (None waiting: wait in Go's poller.)
			fd = -1
			nc, err = l.Accept()
		}
		if err != nil {
			if s.stopping.Load() {
				return nil
			}
			switch {
			case transient(err):
				// About one client (it went away before accept): the
				// next accept is unaffected.
				continue
			case !temporary(err):
				return err
			}
			s.acceptErrs.Add(1)
			s.beginPause(le, err)
			if outOfFDs(err) && s.rejectWithSpare(l) {
				continue
			}
			backoff = min(max(2*backoff, minAcceptBackoff), maxAcceptBackoff)
			if !s.acceptWait(backoff) {
				return nil
			}
			continue
		}
		backoff = 0
		s.endPause()
		if fd >= 0 {
			s.acceptedBare(fd, le)
		} else {
			s.accepted(nc, le)
		}
	}
}

func (s *Server) accepted(nc net.Conn, le *listener) {
	if n := s.curr.Add(1); n > int64(s.cfg.MaxConns) {
		s.curr.Add(-1)
		s.rejected.Add(1)
		if len(s.cfg.RejectMessage) > 0 {
			nc.SetWriteDeadline(time.Now().Add(rejectWriteTimeout))
			nc.Write(s.cfg.RejectMessage)
		}
		nc.Close()
		return
	}
	c := newConn(s, nc, le)
	s.mu.Lock()
	if s.stopping.Load() {
		s.mu.Unlock()
		s.curr.Add(-1)
		nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.notePeakLocked()
	s.mu.Unlock()
	s.total.Add(1)
	go c.run()
}

func (s *Server) notePeakLocked() {
	if n := uint64(len(s.conns) + len(s.listeners)); n > s.peak {
		s.peak = n
	}
}

// reserveGrown takes n bytes of the ReadBufMemLimit budget for a grown
// read buffer; it reports false, counting a refusal, when they are not
// free.
func (s *Server) reserveGrown(n int) bool {
	limit := s.cfg.ReadBufMemLimit
	if limit == 0 {
		s.grown.Add(int64(n))
		return true
	}
	for {
		cur := s.grown.Load()
		if cur+int64(n) > limit {
			s.bufOOM.Add(1)
			return false
		}
		if s.grown.CompareAndSwap(cur, cur+int64(n)) {
			return true
		}
	}
}

// removeConn is the last thing a connection's goroutine does.
func (s *Server) removeConn(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.retired.bytesRead += c.bytesRead.Load()
	s.retired.bytesWritten += c.bytesWritten.Load()
	s.retired.reads += c.reads.Load()
	s.retired.writes += c.writes.Load()
	if s.freed != nil {
		close(s.freed) // wake accept loops waiting for a descriptor
		s.freed = nil
	}
	s.mu.Unlock()
	s.curr.Add(-1)
}

// stop marks the server as stopping, closes its listeners and applies
// fn to every connection, all under the lock so that no connection
// registered later escapes.
func (s *Server) stop(fn func(c *Conn)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopping.Store(true)
	s.doneOnce.Do(func() { close(s.done) })
	var err error
	for le := range s.listeners {
		if e := le.l.Close(); e != nil && err == nil && !errors.Is(e, net.ErrClosed) {
			err = e
		}
	}
	for c := range s.conns {
		if !c.stopParked() {
			fn(c)
		}
	}
	if s.poller != nil {
		s.poller.stop()
	}
	s.closeSpare()
	return err
}

// startPoller starts the poller and the sweeper that park idle
// connections, unless parking is off or unavailable.
//
// It runs under s.mu, as stop does: a stop between a Serve's start and
// its startPoller would otherwise find no poller to stop, the poller
// would then start, and Shutdown would wait for it forever.
func (s *Server) startPoller() {
	if s.cfg.ParkIdleAfter <= 0 {
		return
	}
	p := newPoller()
	if p == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		p.close()
		return
	}
	s.poller = p
	s.bg.Add(2)
	go p.run(s.bg.Done)
	go s.sweep()
}

// aLongTimeAgo is a deadline in the past, to wake blocked reads.
var aLongTimeAgo = time.Unix(1, 0)

// Shutdown stops the server gracefully: it closes the listeners, wakes
// connections waiting for requests, lets every Serve call in progress
// finish and its replies be written, closes the connections and waits until
// their goroutines and the accept loops have ended. If ctx is done first,
// it closes every connection at once and returns ctx's error (a Session
// blocked in Serve then ends when Serve returns).
func (s *Server) Shutdown(ctx context.Context) error {
	lerr := s.stop(func(c *Conn) { c.interrupt(false) })
	wait := time.Millisecond
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		s.mu.Lock()
		idle := len(s.conns) == 0 && s.loops == 0
		s.mu.Unlock()
		if idle {
			s.bg.Wait()
			return lerr
		}
		select {
		case <-ctx.Done():
			s.stop(func(c *Conn) { c.interrupt(true) })
			return ctx.Err()
		case <-t.C:
			wait = min(2*wait, 50*time.Millisecond)
			t.Reset(wait)
		}
	}
}

// Close closes the listeners and every connection at once. It does not
// wait for connection goroutines; a Session blocked in Serve ends when
// Serve returns.
func (s *Server) Close() error {
	return s.stop(func(c *Conn) { c.interrupt(true) })
}

// Stats returns the server's counters. It costs a pass over the open
// connections.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		TotalConns:       s.total.Load(),
		RejectedConns:    s.rejected.Load(),
		MaxConns:         s.cfg.MaxConns,
		ReadBufMemLimit:  s.cfg.ReadBufMemLimit,
		ReadBufOOM:       s.bufOOM.Load(),
		AcceptErrors:     s.acceptErrs.Load(),
		AcceptPauses:     s.pauses,
		AcceptPausedTime: s.pausedTime,
		Accepting:        !s.paused,
		FDRejectedConns:  s.fdRejected.Load(),
		IdleTimeout:      s.cfg.IdleTimeout,
		IdleKicks:        s.idleKicks.Load(),

		TLSHandshakes:      s.tlsHandshakes.Load(),
		TLSHandshakeErrors: s.tlsHandshakeErrors.Load(),
		ParkedConns:        uint64(max(s.parked.Load(), 0)),
		Listeners:          len(s.listeners),
		PeakConns:          s.peak,
		BytesRead:          s.retired.bytesRead,
		BytesWritten:       s.retired.bytesWritten,
		Reads:              s.retired.reads,
		Writes:             s.retired.writes,
	}
	if n := s.curr.Load(); n > 0 {
		st.CurrConns = uint64(n)
	}
	for c := range s.conns {
		st.BytesRead += c.bytesRead.Load()
		st.BytesWritten += c.bytesWritten.Load()
		st.Reads += c.reads.Load()
		st.Writes += c.writes.Load()
		if b := c.bufBytes.Load(); b > 0 {
			st.ReadBufCount++
			st.ReadBufBytes += uint64(b)
		}
		if b := c.outBytes.Load(); b > 0 {
			st.ReplyBufCount++
			st.ReplyBufBytes += uint64(b)
		}
	}
	if s.paused {
		st.AcceptPausedTime += time.Since(s.pauseStart)
	}
	if g := s.grown.Load(); g > 0 {
		st.ReadBufGrownBytes = uint64(g)
	}
	return st
}

// EachConn calls fn for every listener and open connection, in order of
// ID (listeners are marked Listening, with State StateListening). fn is
// called without locks held; it may be called from a Session's Serve.
func (s *Server) EachConn(fn func(ConnInfo)) {
	now := time.Now()
	s.mu.Lock()
	infos := make([]ConnInfo, 0, len(s.listeners)+len(s.conns))
	for le := range s.listeners {
		a := le.l.Addr()
		infos = append(infos, ConnInfo{
			ID:               le.id,
			Listening:        true,
			LocalAddr:        a,
			ListenAddr:       a,
			TLS:              le.tls != nil,
			State:            StateListening,
			SinceLastRequest: now.Sub(le.start),
		})
	}
	for c := range s.conns {
		infos = append(infos, c.info(now))
	}
	s.mu.Unlock()
	slices.SortFunc(infos, func(a, b ConnInfo) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	for _, ci := range infos {
		fn(ci)
	}
}
