// Command mnemo-bench is mnemo's load generator: it drives a memcached
// compatible server (mnemo or memcached) with a configurable mix of gets
// and sets and reports throughput and latency percentiles from an HDR
// histogram, as text or JSON.
//
// It is a correct client: every reply is parsed and checked. Each value it
// writes embeds its key and a version ("<key>#<version>#<filler>", the
// filler a function of both), so a get hit that returns another key's
// value, a truncated or corrupted value, or a version never written for
// that key is counted as a bad value. Error replies and unparseable
// replies are counted too, and any of them makes the exit status 1.
//
// Usage:
//
//	mnemo-bench -server 127.0.0.1:11211 -conns 50 -pipeline 16 \
//	    -ratio 1:10 -keys 100000 -value-size 100 -duration 10s -fill
//
// Modes besides the timed load:
//
//   - -fill stores every key once before the load; with -duration 0 and
//     -requests 0 it only fills (the memory measurement).
//   - -read-through sets a key after its get misses, the way a cache-aside
//     client does; the hit ratio then measures the server's eviction.
//   - -rate paces the load (ops/s in all) and measures latency from each
//     request's intended send time, so stalls are not hidden.
//   - -idle N opens N connections, sends one request on each and leaves
//     them idle, and with -server-pid reports the server's memory per idle
//     connection.
//   - -tls speaks TLS on every connection (-tls-ca, -tls-version,
//     -tls-resume); -handshakes measures new connections per second
//     instead of a load (see tls.go).
//
// With -server-pid (a server on this machine) it also reports the
// server's RSS and CPU time.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type options struct {
	server      string
	protocol    string
	conns       int
	pipeline    int
	ratio       string
	keys        int
	keySize     int
	keyPrefix   string
	dist        string
	zipf        float64
	valueSize   int
	duration    time.Duration
	warmup      time.Duration
	requests    int64
	rate        float64
	fill        bool
	ttl         int64
	fillDepth   int
	readThrough bool
	multiGet    int // keys per get (text protocol); 1: plain gets
	check       bool
	seed        uint64
	jsonOut     bool
	serverPID   int
	idle        int
	idleHold    time.Duration
	idleSettle  time.Duration
	timeout     time.Duration
	label       string
	cpuProfile  string
	slowLog     string
	slowUs      int64
	tls         bool
	tlsCA       string
	tlsVersion  string
	tlsResume   bool
	tlsCurve    string
	handshakes  bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("mnemo-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.server, "server", "127.0.0.1:11211", "server address host:port")
	fs.StringVar(&o.protocol, "protocol", "text", "protocol: text, meta or binary")
	fs.IntVar(&o.conns, "conns", 50, "connections")
	fs.IntVar(&o.pipeline, "pipeline", 1, "requests in flight per connection (sent together)")
	fs.StringVar(&o.ratio, "ratio", "1:10", "set:get ratio")
	fs.IntVar(&o.keys, "keys", 100000, "number of distinct keys")
	fs.IntVar(&o.keySize, "key-size", 15, "key length in bytes (prefix + zero-padded index)")
	fs.StringVar(&o.keyPrefix, "key-prefix", "key:", "key prefix")
	fs.StringVar(&o.dist, "dist", "uniform", "key distribution: uniform or zipf")
	fs.Float64Var(&o.zipf, "zipf", 0.99, "Zipf parameter (with -dist zipf)")
	fs.IntVar(&o.valueSize, "value-size", 100, "value size in bytes")
	fs.Int64Var(&o.ttl, "ttl", 0, "exptime of every set in seconds (0: never expire; over 30 days: a unix time, as memcached)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of the load (0 with -requests: until the requests are done)")
	fs.DurationVar(&o.warmup, "warmup", 0, "initial part of the load that is not measured")
	fs.Int64Var(&o.requests, "requests", 0, "total requests (0: run for -duration)")
	fs.Float64Var(&o.rate, "rate", 0, "target ops/s in all (0: as fast as the server answers)")
	fs.BoolVar(&o.fill, "fill", false, "store every key once before the load")
	fs.IntVar(&o.fillDepth, "fill-pipeline", 64, "pipeline depth of the fill")
	fs.BoolVar(&o.readThrough, "read-through", false, "set a key after its get misses (cache-aside)")
	fs.IntVar(&o.multiGet, "multiget", 1, "keys per get request (text protocol: \"get k1 ... kN\"); each request counts as one op")
	fs.BoolVar(&o.check, "check", true, "embed keys in values and check every value read")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed")
	fs.BoolVar(&o.jsonOut, "json", false, "print the result as JSON")
	fs.IntVar(&o.serverPID, "server-pid", 0, "pid of the server (on this machine) to report its RSS and CPU time")
	fs.IntVar(&o.idle, "idle", 0, "open this many idle connections instead of running a load")
	fs.DurationVar(&o.idleHold, "idle-hold", 0, "keep the idle connections open this long after measuring")
	fs.DurationVar(&o.idleSettle, "idle-settle", 2*time.Second, "wait this long after opening idle connections before measuring")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "dial timeout")
	fs.StringVar(&o.label, "label", "", "label copied into the result")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the generator's own CPU profile to this file")
	fs.StringVar(&o.slowLog, "slow-log", "", "write each measured request slower than -slow-us to this file: its unix send time in µs, its latency in µs and the client's own delay in writing it in µs, a line each")
	fs.Int64Var(&o.slowUs, "slow-us", 1000, "latency threshold of -slow-log in µs")
	fs.BoolVar(&o.tls, "tls", false, "speak TLS on every connection")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "PEM CA to verify the server with (default: no verification)")
	fs.StringVar(&o.tlsVersion, "tls-version", "", "TLS version, 1.2 or 1.3 (default: negotiated)")
	fs.BoolVar(&o.tlsResume, "tls-resume", false, "resume TLS sessions on new connections (-handshakes)")
	fs.StringVar(&o.tlsCurve, "tls-curve", "", "offer only this key exchange: x25519, p256 or x25519mlkem768 (default: Go's)")
	fs.BoolVar(&o.handshakes, "handshakes", false, "instead of a load: open, use once and close connections for -duration (-conns at a time)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	switch {
	case o.conns < 1:
		return nil, errors.New("-conns must be at least 1")
	case o.pipeline < 1:
		return nil, errors.New("-pipeline must be at least 1")
	case o.fillDepth < 1:
		return nil, errors.New("-fill-pipeline must be at least 1")
	case o.valueSize < 0 || o.valueSize > 64<<20:
		return nil, errors.New("-value-size out of range")
	case o.ttl < 0 || o.ttl > math.MaxUint32:
		return nil, errors.New("-ttl out of range")
	case o.duration < 0 || o.warmup < 0 || o.requests < 0 || o.rate < 0:
		return nil, errors.New("negative -duration, -warmup, -requests or -rate")
	case o.multiGet < 1 || o.multiGet > 1000:
		return nil, errors.New("-multiget must be 1 to 1000")
	case o.multiGet > 1 && (o.protocol != "text" || o.readThrough):
		return nil, errors.New("-multiget needs -protocol text and no -read-through")
	case o.dist != "uniform" && o.dist != "zipf":
		return nil, fmt.Errorf("-dist %q: want uniform or zipf", o.dist)
	case (o.tlsCA != "" || o.tlsVersion != "" || o.tlsResume || o.tlsCurve != "") && !o.tls:
		return nil, errors.New("-tls-ca, -tls-version, -tls-resume and -tls-curve need -tls")
	}
	return o, nil
}

// parseRatio parses "S:G" into the probability that an op is a set.
func parseRatio(s string) (float64, error) {
	a, b, ok := strings.Cut(s, ":")
	sv, err1 := strconv.ParseUint(a, 10, 32)
	gv, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil || sv+gv == 0 {
		return 0, fmt.Errorf("-ratio %q: want SETS:GETS, such as 1:10", s)
	}
	return float64(sv) / float64(sv+gv), nil
}

// Result is what a run reports (the JSON output).
type Result struct {
	Label     string  `json:"label,omitempty"`
	Server    string  `json:"server"`
	Protocol  string  `json:"protocol"`
	Conns     int     `json:"conns"`
	Pipeline  int     `json:"pipeline"`
	Ratio     string  `json:"ratio"`
	Keys      int     `json:"keys"`
	KeySize   int     `json:"key_size"`
	Dist      string  `json:"dist"`
	Zipf      float64 `json:"zipf,omitempty"`
	ValueSize int     `json:"value_size"`
	Rate      float64 `json:"rate,omitempty"`
	Checked   bool    `json:"checked"`
	ReadThru  bool    `json:"read_through,omitempty"`
	MultiGet  int     `json:"multiget,omitempty"` // keys per get request, when more than 1
	Fill      *Fill   `json:"fill,omitempty"`
	Ops       uint64  `json:"ops"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_sec"`
	HitRatio  float64 `json:"hit_ratio"`
	counts
	ConnErrors int         `json:"conn_errors"`
	FirstError string      `json:"first_error,omitempty"`
	BadSample  string      `json:"bad_value_sample,omitempty"`
	Latency    Percentiles `json:"latency_us"`
	GetLatency Percentiles `json:"get_latency_us"`
	SetLatency Percentiles `json:"set_latency_us"`
	ClientCPU  float64     `json:"client_cpu_seconds"`
	Server_    *ServerInfo `json:"server_process,omitempty"`
	Idle       *Idle       `json:"idle,omitempty"`
	TLS        string      `json:"tls,omitempty"` // the version and key exchange negotiated, with -tls
	Handshakes *Handshakes `json:"handshakes,omitempty"`
}

// Fill reports the -fill phase.
type Fill struct {
	Items     int     `json:"items"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_sec"`
	Errors    uint64  `json:"errors"`
}

// Percentiles of a latency histogram, in microseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   int64   `json:"p50"`
	P99   int64   `json:"p99"`
	P999  int64   `json:"p99_9"`
	Max   int64   `json:"max"`
}

// ServerInfo is what -server-pid reads about the server process.
type ServerInfo struct {
	PID          int     `json:"pid"`
	RSSAfterFill int64   `json:"rss_after_fill_bytes,omitempty"`
	RSSAfter     int64   `json:"rss_bytes"`
	CPUSeconds   float64 `json:"cpu_seconds_during_load"`
	// CPUMicrosPerOp is the server's CPU time per request: its capacity
	// on one core even when the load generator is the bottleneck.
	CPUMicrosPerOp float64           `json:"cpu_us_per_op"`
	CPUPerSecond   float64           `json:"cpu_utilization"`
	ClientPerSec   float64           `json:"client_cpu_utilization"`
	Stats          map[string]string `json:"stats,omitempty"`
}

// Idle reports the -idle mode.
type Idle struct {
	Conns        int     `json:"conns"`
	RSSBefore    int64   `json:"rss_before_bytes"`
	RSSAfter     int64   `json:"rss_after_bytes"`
	BytesPerConn float64 `json:"bytes_per_conn"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	opt, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "mnemo-bench:", err)
		return 2
	}
	if opt.cpuProfile != "" {
		f, err := os.Create(opt.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "mnemo-bench:", err)
			return 2
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := execute(ctx, opt)
	if err != nil {
		fmt.Fprintln(stderr, "mnemo-bench:", err)
		return 1
	}
	if opt.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else {
		printText(stdout, res)
	}
	if res.BadValues > 0 || res.ProtocolErrors > 0 || res.ConnErrors > 0 || res.ErrorReplies > 0 {
		return 1
	}
	return 0
}

func newWorkload(opt *options) (*workload, error) {
	proto, err := newProtocol(opt.protocol, opt.ttl)
	if err != nil {
		return nil, err
	}
	ks, err := newKeyspace(opt.keys, opt.keySize, opt.keyPrefix)
	if err != nil {
		return nil, err
	}
	setp, err := parseRatio(opt.ratio)
	if err != nil {
		return nil, err
	}
	tc, err := tlsConfig(opt)
	if err != nil {
		return nil, err
	}
	w := &workload{opt: opt, proto: proto, ks: ks, setPerc: setp, vers: newVersions(opt.keys, uint64(time.Now().UnixMicro())), tls: tc}
	if opt.check {
		if w.vc, err = newValueCodec(ks, opt.valueSize); err != nil {
			return nil, err
		}
	}
	if opt.dist == "zipf" {
		if w.chooser, err = newZipf(opt.keys, opt.zipf); err != nil {
			return nil, err
		}
	} else {
		w.chooser = uniform{opt.keys}
	}
	return w, nil
}

func execute(ctx context.Context, opt *options) (*Result, error) {
	w, err := newWorkload(opt)
	if err != nil {
		return nil, err
	}
	res := &Result{
		Label: opt.label, Server: opt.server, Protocol: opt.protocol, Conns: opt.conns,
		Pipeline: opt.pipeline, Ratio: opt.ratio, Keys: opt.keys, KeySize: opt.keySize,
		Dist: opt.dist, ValueSize: opt.valueSize, Rate: opt.rate, Checked: opt.check,
		ReadThru: opt.readThrough,
	}
	if opt.multiGet > 1 {
		res.MultiGet = opt.multiGet
	}
	if opt.dist == "zipf" {
		res.Zipf = opt.zipf
	}
	if opt.idle > 0 {
		return res, runIdle(ctx, w, res)
	}
	if opt.handshakes {
		var scpu0 float64
		if opt.serverPID > 0 {
			scpu0, _ = procCPU(opt.serverPID)
		}
		if err := runHandshakes(ctx, w, res); err != nil {
			return nil, err
		}
		if opt.serverPID > 0 {
			scpu1, _ := procCPU(opt.serverPID)
			si := &ServerInfo{PID: opt.serverPID, CPUSeconds: scpu1 - scpu0}
			si.RSSAfter, _ = procRSS(opt.serverPID)
			if hs := res.Handshakes; hs.Conns > 0 {
				// The CPU of the warm-up's connections too: an upper
				// bound per connection.
				si.CPUMicrosPerOp = si.CPUSeconds * 1e6 / float64(hs.Conns)
			}
			res.Server_ = si
		}
		if p := w.firstErr.Load(); p != nil {
			res.FirstError = (*p).Error()
		}
		return res, nil
	}
	clients := make([]*client, 0, opt.conns)
	defer func() {
		for _, c := range clients {
			c.nc.Close()
		}
	}()
	for i := range opt.conns {
		c, err := dial(w, i)
		if err != nil {
			return nil, fmt.Errorf("connection %d to %s: %w", i, opt.server, err)
		}
		c.scratch = make([]byte, 0, opt.valueSize+4096)
		c.initRun(opt.seed)
		clients = append(clients, c)
	}
	var si *ServerInfo
	if opt.serverPID > 0 {
		si = &ServerInfo{PID: opt.serverPID}
		res.Server_ = si
	}
	if opt.fill {
		fc, d, err := fill(w, clients, opt.fillDepth)
		if err != nil {
			return nil, fmt.Errorf("fill: %w", err)
		}
		res.Fill = &Fill{Items: opt.keys, Seconds: d.Seconds(), OpsPerSec: float64(opt.keys) / d.Seconds(), Errors: fc.ErrorReplies + fc.ProtocolErrors}
		if si != nil {
			si.RSSAfterFill, _ = procRSS(opt.serverPID)
		}
	}
	if opt.duration > 0 || opt.requests > 0 {
		lctx := ctx
		if opt.duration > 0 {
			var cancel context.CancelFunc
			lctx, cancel = context.WithTimeout(ctx, opt.duration+opt.warmup)
			defer cancel()
			// A connection blocked in a read ends when the load does.
			go func() {
				<-lctx.Done()
				time.Sleep(opt.timeout)
				for _, c := range clients {
					c.nc.SetDeadline(time.Now())
				}
			}()
		}
		// CPU times are sampled when the warm-up ends.
		var cpu0, scpu0 float64
		var sampled sync.WaitGroup
		sampled.Add(1)
		time.AfterFunc(opt.warmup, func() {
			defer sampled.Done()
			cpu0 = selfCPU()
			if si != nil {
				scpu0, _ = procCPU(opt.serverPID)
			}
		})
		pr := runPhase(lctx, w, clients)
		sampled.Wait()
		if opt.slowLog != "" {
			if err := writeSlow(opt.slowLog, clients); err != nil {
				return nil, err
			}
		}
		res.ClientCPU = selfCPU() - cpu0
		res.counts = pr.counts
		res.ConnErrors = pr.connErrors
		res.Ops = pr.Gets + pr.Sets
		res.Seconds = pr.elapsed.Seconds()
		if res.Seconds > 0 {
			res.OpsPerSec = float64(res.Ops) / res.Seconds
		}
		if pr.Hits+pr.Misses > 0 {
			// per key: a multi-get's keys each hit or miss
			res.HitRatio = float64(pr.Hits) / float64(pr.Hits+pr.Misses)
		}
		all := newHist()
		all.Merge(pr.getH)
		all.Merge(pr.setH)
		res.Latency, res.GetLatency, res.SetLatency = percentiles(all), percentiles(pr.getH), percentiles(pr.setH)
		if si != nil {
			scpu1, _ := procCPU(opt.serverPID)
			si.CPUSeconds = scpu1 - scpu0
			if res.Seconds > 0 {
				si.CPUPerSecond = si.CPUSeconds / res.Seconds
				si.ClientPerSec = res.ClientCPU / res.Seconds
			}
			if res.Ops > 0 {
				si.CPUMicrosPerOp = si.CPUSeconds * 1e6 / float64(res.Ops)
			}
		}
	}
	if si != nil {
		si.RSSAfter, _ = procRSS(opt.serverPID)
	}
	if len(clients) > 0 {
		if tc, ok := clients[0].nc.(interface{ ConnectionState() tls.ConnectionState }); ok {
			cs := tc.ConnectionState()
			res.TLS = tls.VersionName(cs.Version) + " " + cs.CurveID.String()
		}
	}
	if opt.protocol != "binary" {
		if si == nil {
			si = &ServerInfo{}
			res.Server_ = si
		}
		si.Stats = serverStats(w, "curr_items", "total_items", "evictions", "bytes", "limit_maxbytes", "threads", "version",
			"memory_arena_resident_bytes", "memory_compactions", "memory_compacted")
	}
	if p := w.firstErr.Load(); p != nil {
		res.FirstError = (*p).Error()
	}
	res.BadSample = w.badSample
	return res, nil
}

func percentiles(h interface {
	TotalCount() int64
	Mean() float64
	ValueAtQuantile(float64) int64
	Max() int64
}) Percentiles {
	return Percentiles{
		Count: h.TotalCount(),
		Mean:  float64(int64(h.Mean()*10)) / 10,
		P50:   h.ValueAtQuantile(50),
		P99:   h.ValueAtQuantile(99),
		P999:  h.ValueAtQuantile(99.9),
		Max:   h.Max(),
	}
}

func printText(w io.Writer, r *Result) {
	if h := r.Handshakes; h != nil {
		fmt.Fprintf(w, "handshakes (%s): %d connections in %.2fs: %.0f per second (%d resumed, %d errors); latency (µs): p50 %d  p99 %d  max %d\n",
			h.KeyExchange, h.Conns, h.Seconds, h.PerSecond, h.Resumed, h.Errors, h.Latency.P50, h.Latency.P99, h.Latency.Max)
		if s := r.Server_; s != nil && s.PID > 0 {
			fmt.Fprintf(w, "server pid %d: CPU %.2fs (%.1f µs per connection)\n", s.PID, s.CPUSeconds, s.CPUMicrosPerOp)
		}
		if r.FirstError != "" {
			fmt.Fprintf(w, "first error: %s\n", r.FirstError)
		}
		return
	}
	if r.Idle != nil {
		fmt.Fprintf(w, "idle: %d connections; server RSS %d -> %d bytes: %.0f bytes per connection\n",
			r.Idle.Conns, r.Idle.RSSBefore, r.Idle.RSSAfter, r.Idle.BytesPerConn)
		return
	}
	fmt.Fprintf(w, "server %s  protocol %s  conns %d  pipeline %d  ratio %s  keys %d (%s", r.Server, r.Protocol, r.Conns, r.Pipeline, r.Ratio, r.Keys, r.Dist)
	if r.Dist == "zipf" {
		fmt.Fprintf(w, " %.2f", r.Zipf)
	}
	fmt.Fprintf(w, ")  value %d B", r.ValueSize)
	if r.TLS != "" {
		fmt.Fprintf(w, "  %s", r.TLS)
	}
	fmt.Fprintln(w)
	if r.Fill != nil {
		fmt.Fprintf(w, "fill: %d items in %.2fs (%.0f ops/s), %d errors\n", r.Fill.Items, r.Fill.Seconds, r.Fill.OpsPerSec, r.Fill.Errors)
	}
	if r.Ops > 0 {
		fmt.Fprintf(w, "ops %d in %.2fs: %.0f ops/s  (gets %d, sets %d, hit ratio %.4f)\n", r.Ops, r.Seconds, r.OpsPerSec, r.Gets, r.Sets, r.HitRatio)
		for _, l := range []struct {
			name string
			p    Percentiles
		}{{"all", r.Latency}, {"get", r.GetLatency}, {"set", r.SetLatency}} {
			fmt.Fprintf(w, "latency %-3s (µs): p50 %d  p99 %d  p99.9 %d  max %d  mean %.1f\n", l.name, l.p.P50, l.p.P99, l.p.P999, l.p.Max, l.p.Mean)
		}
	}
	fmt.Fprintf(w, "errors: %d error replies, %d bad values, %d protocol errors, %d broken connections\n", r.ErrorReplies, r.BadValues, r.ProtocolErrors, r.ConnErrors)
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error: %s\n", r.FirstError)
	}
	if r.BadSample != "" {
		fmt.Fprintf(w, "first bad value: %s\n", r.BadSample)
	}
	if s := r.Server_; s != nil {
		if s.PID > 0 {
			fmt.Fprintf(w, "server pid %d: RSS %d bytes", s.PID, s.RSSAfter)
			if s.RSSAfterFill > 0 {
				fmt.Fprintf(w, " (after fill %d)", s.RSSAfterFill)
			}
			fmt.Fprintf(w, "; CPU %.2fs (%.2f cores, %.2f µs/op; client %.2f cores)\n", s.CPUSeconds, s.CPUPerSecond, s.CPUMicrosPerOp, s.ClientPerSec)
		}
		if len(s.Stats) > 0 {
			fmt.Fprintf(w, "server stats: %v\n", s.Stats)
		}
	}
}
