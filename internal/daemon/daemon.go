// Package daemon wires a mnemo server together from its configuration:
// the engine, the cache semantics, the memcached application, the server
// framework and its listeners. cmd/mnemo calls Run; tests call Start to
// run a whole server in-process on loopback ports they pick.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mnemo-cache/mnemo/cache"
	"github.com/mnemo-cache/mnemo/config"
	"github.com/mnemo-cache/mnemo/engine"
	_ "github.com/mnemo-cache/mnemo/engine/all" // the built-in engines
	"github.com/mnemo-cache/mnemo/internal/hotkeys"
	"github.com/mnemo-cache/mnemo/internal/metrics"
	"github.com/mnemo-cache/mnemo/memcache"
	"github.com/mnemo-cache/mnemo/server"
)

// shutdownGrace bounds how long a graceful stop waits for connections to
// finish their batches.
const shutdownGrace = 10 * time.Second

// Daemon is a running mnemo server.
type Daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	level   *slog.LevelVar // the log level, changed by the verbosity command
	clock   *coarseClock
	eng     engine.Engine
	srv     *server.Server
	handler *memcache.Handler
	lns     []net.Listener
	tlsLns  map[net.Listener]bool // the listeners that serve TLS (-Z, not notls:)
	tls     *tlsCerts             // nil without -Z
	pprof   *http.Server

	metricsLn  net.Listener // --metrics-listen
	metricsSrv *http.Server
	hotKeys    *hotkeys.Tracker

	pidWritten bool // the pid file is ours to remove

	stopOnce sync.Once
	stopped  chan struct{}
	serveErr chan error
	requests chan bool // shutdown requests from the shutdown command
}

// Start opens the engine and the listeners named by cfg and starts
// serving. The caller stops the daemon with Stop. Start leaves the
// process's identity alone (-u is Run's).
func Start(cfg *config.Config, logOut io.Writer) (*Daemon, error) {
	return startServer(cfg, logOut, false)
}

// startServer is Start; asProcess (Run) also applies -u: it refuses to run as
// root without it, and drops root after binding the TCP ports.
//
// The order follows memcached's main: open-file limit, the root check,
// the TCP listeners (bound as root, so that a port below 1024 works,
// which memcached cannot do as it drops root before binding), then the
// identity of -u, then what the user must own: the unix socket (memcached
// also creates it after dropping root), the engine's files, the port and
// pid files.
func startServer(cfg *config.Config, logOut io.Writer, asProcess bool) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Unsupported(); err != nil {
		return nil, err
	}
	d := &Daemon{
		cfg:      cfg,
		level:    new(slog.LevelVar),
		clock:    newCoarseClock(),
		stopped:  make(chan struct{}),
		serveErr: make(chan error, 8),
		requests: make(chan bool, 1),
	}
	d.log = newLogger(logOut, d.level)
	setLevel(d.level, cfg.Verbose)
	for _, w := range cfg.Warnings {
		d.log.Warn(w)
	}
	if _, warning, err := fitOpenFiles(cfg.MaxConns, sysRlimit); err != nil {
		d.clock.stop()
		return nil, err
	} else if warning != "" {
		d.log.Warn(warning)
	}
	var id *identity
	if asProcess {
		var err error
		if id, err = runAs(cfg.User); err != nil {
			d.clock.stop()
			return nil, err
		}
	}
	if cfg.UDPPort != 0 {
		d.log.Warn("UDP is not served: -U " + strconv.Itoa(cfg.UDPPort) + " is accepted and ignored (memcached 1.6 has UDP off by default)")
	}
	if cfg.TLS {
		// Read before dropping root, as memcached does; refresh_certs
		// reads them again as the -u user.
		t, err := newTLSCerts(cfg.TLSOptions)
		if err != nil {
			d.clock.stop()
			return nil, &exitError{exUsage, err.Error()}
		}
		d.tls = t
		for _, w := range cfg.TLSWarnings() {
			d.log.Warn(w)
		}
	}
	listenerProtos, err := d.listenTCP()
	if err != nil {
		d.closeAll()
		return nil, err
	}
	if cfg.MetricsListen != "" {
		// Bound with the memcached ports, before -u drops root.
		if d.metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			d.closeAll()
			return nil, fmt.Errorf("mnemo: failed to listen for metrics on %s: %w", cfg.MetricsListen, err)
		}
	}
	if id != nil {
		if err := prepareDataDir(cfg, id); err != nil {
			d.closeAll()
			return nil, err
		}
		if err := id.drop(func(msg string) { d.log.Warn(msg) }); err != nil {
			d.closeAll()
			return nil, err
		}
		d.log.Info("running as", "user", id.name, "uid", id.uid, "gid", id.gid)
	}
	if err := d.listenUnix(); err != nil {
		d.closeAll()
		return nil, err
	}
	env := engine.Env{
		MemoryLimit: cfg.MemoryLimit,
		ItemSizeMax: cfg.ItemSizeMax,
		NoEvict:     cfg.NoEvict,
		NoCAS:       cfg.DisableCAS,
		Clock:       d.clock,
		Logger:      d.log,
	}
	engineConfig := cfg.EngineConfig
	if cfg.MemoryFile != "" {
		// -e: the memory engine keeps its arena in that file.
		if cfg.Engine != "memory" {
			d.closeAll()
			return nil, fmt.Errorf("mnemo: -e (restartable memory file) needs the memory engine, not %q", cfg.Engine)
		}
		if engineConfig != "" {
			engineConfig += ","
		}
		engineConfig += "file=" + cfg.MemoryFile
	}
	eng, err := engine.Open(cfg.Engine, env, engineConfig)
	if err != nil {
		d.closeAll()
		if id != nil {
			err = fmt.Errorf("%w (the engine runs as user %s, from -u)", err, id.name)
		}
		return nil, err
	}
	d.eng = eng
	c := cache.New(eng, d.clock, cache.Options{DisableCAS: cfg.DisableCAS, DisableFlush: cfg.DisableFlush})
	var ins memcache.Instruments
	if cfg.MetricsListen != "" {
		ins.Latency = metrics.NewLatency(memcache.LatencyCommands)
	}
	if cfg.HotKeys > 0 {
		d.hotKeys = hotkeys.New(hotkeys.Config{Top: cfg.HotKeys, Window: cfg.HotKeysWindow, Sample: uint32(cfg.HotKeysSample)})
		d.hotKeys.Start()
		ins.HotKeys = d.hotKeys
	}
	var authCreds *memcache.Credentials
	if cfg.AuthFile != "" {
		if authCreds, err = memcache.LoadCredentials(cfg.AuthFile); err != nil {
			d.closeAll()
			return nil, err
		}
	}
	if cfg.SASL {
		// memcached will not start with a SASL database it cannot use;
		// mnemo has no other source of users.
		if err := memcache.CheckSASLPasswordFile(cfg.SASLPwdb); err != nil {
			d.closeAll()
			return nil, err
		}
	}
	hcfg := memcache.Config{
		Cache:           c,
		ItemSizeMax:     cfg.ItemSizeMax,
		EnableShutdown:  cfg.EnableShutdown,
		Shutdown:        d.requestShutdown,
		Threads:         cfg.Threads,
		PrefixDelimiter: cfg.Delimiter,
		DetailEnabled:   cfg.DetailEnabled,
		Settings:        d.settings,
		DisableWatch:    cfg.DisableWatch,
		WatcherBufSize:  cfg.WatcherLogbufSize,
		VerboseOut:      logOut,
		DisableDumping:  cfg.DisableDumping,
		CrawlerDisabled: !cfg.LRUCrawler,
		SetVerbosity:    func(v int) { setLevel(d.level, v) },
		Logger:          d.log,

		Protocol:          cfg.Protocol,
		ListenerProtocols: listenerProtos,
		SASL:              cfg.SASL,
		SASLPasswordFile:  cfg.SASLPwdb,
		AuthCredentials:   authCreds,
		Instruments:       ins,
	}
	if d.tls != nil {
		hcfg.TLS = d.tls
	}
	d.handler = memcache.NewHandler(hcfg)
	d.handler.Verbosity.Store(int32(cfg.Verbose))
	d.srv = server.New(d.handler, server.Config{
		MaxConns:        cfg.MaxConns,
		RejectMessage:   d.handler.RejectMessage(),
		IdleTimeout:     cfg.IdleTimeout,
		MaxRequestSize:  d.handler.MaxRequestSize(),
		ReadBufMemLimit: cfg.ReadBufLimit(),
		Logger:          d.log,
	})
	d.handler.AttachServer(d.srv)
	for _, l := range d.lns {
		if d.tlsLns[l] {
			go func(l net.Listener) { d.serveErr <- d.srv.ServeTLS(l, d.tls.config) }(l)
		} else {
			go func(l net.Listener) { d.serveErr <- d.srv.Serve(l) }(l)
		}
	}
	if d.metricsLn != nil {
		d.serveMetrics(ins)
	}
	if cfg.Pprof != "" {
		if err := d.startPprof(cfg.Pprof); err != nil {
			d.closeAll()
			return nil, err
		}
	}
	if cfg.PortFile != "" {
		d.writePortFile(cfg.PortFile)
	}
	if cfg.PidFile != "" {
		d.pidWritten = d.writePidFile(cfg.PidFile)
	}
	d.log.Info("mnemo started", "engine", cfg.Engine, "addrs", d.Addrs(), "memory_limit", cfg.MemoryLimit)
	return d, nil
}

// listenUnix opens the unix socket listener, if any, and checks that
// there is something to listen on.
func (d *Daemon) listenUnix() error {
	if d.cfg.UnixSocket != "" {
		l, err := server.ListenUnix(d.cfg.UnixSocket, d.cfg.UnixMask)
		if err != nil {
			return fmt.Errorf("mnemo: failed to listen on unix socket %s: %w", d.cfg.UnixSocket, err)
		}
		d.lns = append([]net.Listener{l}, d.lns...)
	}
	if len(d.lns) == 0 {
		return errors.New("mnemo: nothing to listen on (-p 0 and no -s)")
	}
	return nil
}

// listenTCP opens the TCP listeners. It returns the protocols of the
// listeners that have their own (-l proto[...]:ADDR), keyed by their
// addresses.
func (d *Daemon) listenTCP() (map[string]string, error) {
	ls, err := d.cfg.Listeners()
	if err != nil {
		return nil, err
	}
	protos := map[string]string{}
	for _, l := range ls {
		ln, err := server.Listen(l.Network(), l.Addr)
		if err != nil {
			return nil, fmt.Errorf("mnemo: failed to listen on TCP %s: %w", l.Addr, err)
		}
		d.lns = append(d.lns, ln)
		if d.cfg.TLS && !l.NoTLS {
			if d.tlsLns == nil {
				d.tlsLns = map[net.Listener]bool{}
			}
			d.tlsLns[ln] = true
		}
		switch l.Protocol {
		case "ascii", "binary":
			protos[ln.Addr().String()] = l.Protocol
		case "auto", "negotiating":
			protos[ln.Addr().String()] = "auto"
		}
	}
	return protos, nil
}

func (d *Daemon) startPprof(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("mnemo: pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	d.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go d.pprof.Serve(ln)
	d.log.Info("pprof serving", "addr", ln.Addr().String())
	return nil
}

// serveMetrics serves /metrics on the --metrics-listen listener: the
// memcached_exporter's series from the handler's stats, the latency
// histograms and the hot keys of ins.
func (d *Daemon) serveMetrics(ins memcache.Instruments) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler(metrics.Source{
		Stats:   d.handler.StatGroup,
		Latency: ins.Latency,
		HotKeys: ins.HotKeys,
	}))
	d.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go d.metricsSrv.Serve(d.metricsLn)
	d.log.Info("metrics serving", "addr", "http://"+d.metricsLn.Addr().String()+"/metrics")
}

// MetricsAddr returns the address /metrics is served on, nil without
// --metrics-listen.
func (d *Daemon) MetricsAddr() net.Addr {
	if d.metricsLn == nil {
		return nil
	}
	return d.metricsLn.Addr()
}

// Addrs returns the addresses the daemon listens on.
func (d *Daemon) Addrs() []net.Addr {
	addrs := make([]net.Addr, len(d.lns))
	for i, l := range d.lns {
		addrs[i] = l.Addr()
	}
	return addrs
}

// requestShutdown is called by the shutdown command.
func (d *Daemon) requestShutdown(graceful bool) {
	select {
	case d.requests <- graceful:
	default:
	}
}

// Wait blocks until ctx is done or a client sends "shutdown", then stops
// the daemon gracefully.
func (d *Daemon) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		d.log.Info("signal received, shutting down")
	case <-d.requests:
		d.log.Info("shutdown command received")
	case <-d.stopped:
		return nil
	}
	return d.Stop()
}

// Stop stops accepting connections, lets every connection finish the
// batch it is executing, closes them and closes the engine.
func (d *Daemon) Stop() error {
	var err error
	d.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if e := d.srv.Shutdown(ctx); e != nil {
			err = e
		}
		if e := d.closeAll(); e != nil && err == nil {
			err = e
		}
		close(d.stopped)
	})
	return err
}

// closeAll releases everything but the server.
func (d *Daemon) closeAll() error {
	for _, l := range d.lns {
		l.Close()
	}
	if d.cfg.UnixSocket != "" {
		os.Remove(d.cfg.UnixSocket)
	}
	if d.pprof != nil {
		d.pprof.Close()
	}
	if d.metricsSrv != nil {
		d.metricsSrv.Close()
	} else if d.metricsLn != nil {
		d.metricsLn.Close()
	}
	if d.hotKeys != nil {
		d.hotKeys.Close()
	}
	var err error
	if d.eng != nil {
		err = d.eng.Close()
	}
	d.removePidFile()
	d.clock.stop()
	return err
}

// settings reports "stats settings": memcached's, then mnemo's own.
// read_buf_mem_limit shows -o read_buf_mem_limit as memcached does (0
// when not given); read_buf_mem_limit_effective the bound in force.
func (d *Daemon) settings(add func(name, value string)) {
	d.cfg.Settings(add)
	add("read_buf_mem_limit_effective", strconv.FormatInt(d.cfg.ReadBufLimit(), 10))
	metricsListen := d.cfg.MetricsListen
	if metricsListen == "" {
		metricsListen = "no"
	}
	add("metrics_listen", metricsListen)
	add("hotkeys", strconv.Itoa(d.cfg.HotKeys))
}

// EngineHelp documents each built-in engine's configuration string for
// "mnemo -h".
var EngineHelp = `    memory: no configuration needed; optional shards=<n> (a power of two)
            sets the number of index shards.
    persistent: the memory engine (same -m) in front of a durable store
            holding every item; survives restarts and crashes.
            path=<dir>          data directory (required; locked while in use)
            durability=async    ack before the disk; a crash loses at most
                                the writes of the last interval (default)
            durability=sync     ack after a group-committed fsync
            interval=100ms      write-behind commit period (async loss window)
            queue=<bytes>       write-behind queue bound; writers wait when
                                full (default -m/4, 4 MiB..64 MiB)
            sweep_interval=1s   expired/flushed items removed from disk per
            sweep_batch=10000   this many items per interval (0s: off)
            warmup=true         load items into memory in the background
            cache=16777216      disk block cache bytes (outside -m)`

// Run parses args as memcached's command line, runs the server until a
// signal or the shutdown command stops it, and returns the exit status.
//
// Signals, as memcached 1.6.18's: SIGINT and SIGTERM stop the server;
// SIGUSR1 is the graceful stop (logged "Gracefully stopping"; memcached's
// restart signal with -e, which mnemo does not have yet); SIGHUP keeps
// it serving and re-reads the -Y file, as memcached does. Every stop
// lets each connection finish the batch it is executing, closes the
// engine cleanly and exits 0.
//
// -d makes Run start a detached copy of the process and return once it
// serves (see detach). Run as root, -u is required and the process takes
// that user's identity once its TCP ports are bound.
func Run(args []string, stdout, stderr io.Writer) int {
	p := config.Parser{Stdout: stdout, Engines: engine.Names(), EngineHelp: EngineHelp}
	cfg, err := p.Parse(args)
	switch {
	case errors.Is(err, config.ErrHelp), errors.Is(err, config.ErrVersion):
		return 0
	case err != nil:
		fmt.Fprintln(stderr, err)
		return exUsage
	}
	var pipe *startPipe
	if cfg.Daemonize {
		if pipe = detachedPipe(); pipe == nil {
			return detach(args, cfg.Verbose, cfg.EnableCoredumps, stderr)
		}
	}
	// Catch the signals before anything listens: a signal sent as soon
	// as the port answers must find its handler.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGHUP)
	defer signal.Stop(sigs)
	// -t: the cores that run Go code (procs). Set here and not in Start,
	// so that a server started in-process by a test does not change its
	// process.
	if cfg.Threads > 0 {
		runtime.GOMAXPROCS(procs(cfg.Threads, runtime.GOMAXPROCS(0), cfg.Engine))
	}
	d, err := startServer(cfg, stderr, true)
	if err != nil {
		code := exitStatus(err)
		fmt.Fprintln(stderr, err)
		pipe.fail(code, err.Error()+"\n")
		return code
	}
	pipe.ready()
	if err := d.waitSignals(sigs); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// backgroundProcs is how many Ps the persistent engine's background
// work gets beside -t's: Pebble's compaction and flush, the write-behind
// flusher and the expiry sweep can all be runnable at once.
const backgroundProcs = 3

// procs is GOMAXPROCS for -t threads when the process may use usable
// cores: threads, like memcached's worker threads, but never more than
// the usable cores (more would only add scheduling on the same cores);
// with the persistent engine, backgroundProcs more for its background
// work, like memcached's background threads (LRU crawler and
// maintainer, extstore's IO and compaction threads) beside its workers.
// Go cannot keep those Ps for that work, but they matter even on one
// core: while every P has runnable goroutines the runtime looks at the
// network only from sysmon, every 10 ms or so, so during the compactions,
// flushes and commits of a mass expiry (CPU-bound goroutines, always
// runnable) a woken reader waited tens of milliseconds for a P
// (BENCHMARKS.md, "Mass expiry"). With a P to spare, an idle P's thread
// waits in the network poller and the kernel wakes it when a request
// arrives.
func procs(threads, usable int, engineName string) int {
	n := min(threads, usable)
	if engineName == config.ExtPathEngine {
		n += backgroundProcs
	}
	return n
}

// reload is SIGHUP: the server keeps serving, and the ascii
// authentication file (-Y) is read again, as memcached does; a file that
// cannot be read or parsed keeps the credentials in force (memcached
// too), with a warning.
func (d *Daemon) reload() {
	if d.cfg.AuthFile == "" {
		d.log.Info("SIGHUP received: still serving (nothing to reload)")
		return
	}
	c, err := memcache.LoadCredentials(d.cfg.AuthFile)
	if err != nil {
		d.log.Warn("SIGHUP: ascii authentication file not reloaded; the previous users stay in force", "err", err)
		return
	}
	d.handler.SetAuthCredentials(c)
	d.log.Info("SIGHUP: ascii authentication file reloaded", "users", c.Len())
}

// waitSignals serves until a stop signal, the shutdown command or Stop,
// and stops the daemon. SIGHUP reloads (see reload).
func (d *Daemon) waitSignals(sigs <-chan os.Signal) error {
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				d.reload()
				continue
			case syscall.SIGUSR1:
				// memcached prints this whatever the verbosity.
				d.log.Warn("Gracefully stopping")
			default:
				d.log.Info("Exiting normally", "signal", sig.String())
			}
		case <-d.requests:
			d.log.Info("shutdown command received")
		case <-d.stopped:
			return nil
		}
		return d.Stop()
	}
}

// newLogger returns the daemon's logger, writing text records to w at the
// level held by level.
func newLogger(w io.Writer, level *slog.LevelVar) *slog.Logger {
	if w == nil {
		w = io.Discard
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// setLevel maps memcached's verbosity onto slog levels: warnings and
// errors by default, -v info, -vv and more debug.
func setLevel(level *slog.LevelVar, verbose int) {
	switch {
	case verbose >= 2:
		level.Set(slog.LevelDebug)
	case verbose == 1:
		level.Set(slog.LevelInfo)
	default:
		level.Set(slog.LevelWarn)
	}
}

// coarseClock is an engine.Clock that reads the system clock once a second
// (memcached's current_time), so that the request path reads the time with
// one atomic load.
type coarseClock struct {
	now  atomic.Int64
	done chan struct{}
	once sync.Once
}

func newCoarseClock() *coarseClock {
	c := &coarseClock{done: make(chan struct{})}
	c.now.Store(time.Now().Unix())
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-c.done:
				return
			case now := <-t.C:
				c.now.Store(now.Unix())
			}
		}
	}()
	return c
}

// Now returns the current unix time in seconds.
func (c *coarseClock) Now() int64 { return c.now.Load() }

func (c *coarseClock) stop() { c.once.Do(func() { close(c.done) }) }
