package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to one minute, with
// three significant digits.
const (
	histMin = 1
	histMax = 60_000_000
	histSig = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histSig) }

// counts are one connection's (or the run's) counters.
type counts struct {
	Gets           uint64 `json:"gets"`
	Sets           uint64 `json:"sets"`
	Hits           uint64 `json:"hits"`
	Misses         uint64 `json:"misses"`
	ErrorReplies   uint64 `json:"error_replies"`
	BadValues      uint64 `json:"bad_values"`
	ProtocolErrors uint64 `json:"protocol_errors"`
}

func (c *counts) add(o *counts) {
	c.Gets += o.Gets
	c.Sets += o.Sets
	c.Hits += o.Hits
	c.Misses += o.Misses
	c.ErrorReplies += o.ErrorReplies
	c.BadValues += o.BadValues
	c.ProtocolErrors += o.ProtocolErrors
}

// workload is everything the connections share.
type workload struct {
	opt      *options
	proto    protocol
	ks       *keyspace
	vc       *valueCodec // nil when values are not checked
	vers     *versions
	chooser  keyChooser
	setPerc  float64     // probability that an op is a set
	tls      *tls.Config // nil: plain TCP
	firstErr atomic.Pointer[error]
	// badSample keeps the first bad value seen, for the report.
	badOnce   sync.Once
	badSample string
}

func (w *workload) noteErr(err error) {
	w.firstErr.CompareAndSwap(nil, &err)
}

func (w *workload) noteBad(key []byte, val []byte, err error) {
	w.badOnce.Do(func() {
		v := val
		if len(v) > 80 {
			v = v[:80]
		}
		w.badSample = fmt.Sprintf("key %s: %v: %q", key, err, v)
	})
}

// client is one connection.
type client struct {
	w       *workload
	id      int
	nc      net.Conn
	r       *bufio.Reader
	out     []byte
	keys    []byte // the batch's keys, back to back, ks.size bytes each
	kidx    []int  // the batch's key indexes
	isSet   []bool
	refill  []int  // keys that missed, to set (read-through)
	mkeys   []byte // with -multiget: each get's other keys, back to back
	mkidx   []int  // and their key indexes, multiGet-1 per get
	scratch []byte
	rng     *rand.Rand
	next    func() int
	c       counts
	getH    *hdrhistogram.Histogram
	setH    *hdrhistogram.Histogram
	seq     uint32
	slow    []slowReq // with -slow-log: the measured requests slower than -slow-us
}

// slowReq is a request slower than -slow-us: when it was (to be) sent,
// in unix µs, its latency in µs, and how late the client itself wrote it
// (µs from the intended send time to the write: the load generator's
// own delay, say its core taken by another process, not the server's).
type slowReq struct{ at, us, lag int64 }

// writeSlow writes every client's slow requests to path, in send order.
func writeSlow(path string, clients []*client) error {
	var all []slowReq
	for _, c := range clients {
		all = append(all, c.slow...)
	}
	slices.SortFunc(all, func(a, b slowReq) int { return cmp.Compare(a.at, b.at) })
	var b []byte
	for _, r := range all {
		b = strconv.AppendInt(b, r.at, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, r.us, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, r.lag, 10)
		b = append(b, '\n')
	}
	return os.WriteFile(path, b, 0o644)
}

func dial(w *workload, id int) (*client, error) {
	nc, err := dialServer(w)
	if err != nil {
		return nil, err
	}
	c := &client{w: w, id: id, nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
	if err := w.proto.probe(nc, c.r, w.opt.timeout); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *client) initRun(seed uint64) {
	c.rng = rand.New(rand.NewPCG(seed, uint64(c.id)))
	c.next = perConn(c.w.chooser, c.rng)
	c.getH, c.setH = newHist(), newHist()
}

// batch builds up to n requests into c.out.
func (c *client) batch(n int) {
	w := c.w
	c.out, c.keys, c.kidx, c.isSet = c.out[:0], c.keys[:0], c.kidx[:0], c.isSet[:0]
	c.mkeys, c.mkidx = c.mkeys[:0], c.mkidx[:0]
	for range n {
		var k int
		set := false
		if len(c.refill) > 0 {
			k = c.refill[len(c.refill)-1]
			c.refill = c.refill[:len(c.refill)-1]
			set = true
		} else {
			k = c.next()
			set = w.setPerc > 0 && c.rng.Float64() < w.setPerc
		}
		c.appendOp(k, set)
	}
}

func (c *client) appendOp(k int, set bool) {
	w := c.w
	start := len(c.keys)
	c.keys = w.ks.appendKey(c.keys, k)
	key := c.keys[start:]
	c.seq++
	if set {
		ver := w.vers.next(k)
		vstart := len(c.scratch)
		c.scratch = w.appendValue(c.scratch[:vstart], k, ver)
		c.out = w.proto.appendSet(c.out, key, c.scratch[vstart:], c.seq)
		c.scratch = c.scratch[:vstart]
	} else if w.opt.multiGet > 1 {
		c.appendMultiGet(key)
	} else {
		c.out = w.proto.appendGet(c.out, key, c.seq)
	}
	c.kidx = append(c.kidx, k)
	c.isSet = append(c.isSet, set)
}

// appendValue appends the value of version ver of key k (a checked value,
// or plain filler when checking is off).
func (w *workload) appendValue(dst []byte, k int, ver uint64) []byte {
	if w.vc != nil {
		return w.vc.appendValue(dst, k, ver)
	}
	for range w.opt.valueSize {
		dst = append(dst, 'x')
	}
	return dst
}

// exchange writes c.out and reads one reply per request, recording each
// reply's latency from start when record is true. It returns an error
// only when the connection can no longer be used.
func (c *client) exchange(start time.Time, record bool) error {
	w := c.w
	lag := time.Since(start).Microseconds()
	if _, err := c.nc.Write(c.out); err != nil {
		return err
	}
	seq := c.seq - uint32(len(c.kidx))
	ks := w.ks.size
	for i, k := range c.kidx {
		seq++
		key := c.keys[i*ks : (i+1)*ks]
		var err error
		if c.isSet[i] {
			err = w.proto.readSet(c.r, seq)
			if record {
				c.c.Sets++
			}
		} else if w.opt.multiGet > 1 {
			err = c.readMultiGet(key, k, record)
		} else {
			var val []byte
			var hit bool
			val, hit, err = w.proto.readGet(c.r, key, seq, c.scratch[:0])
			if err == nil && record {
				c.c.Gets++
				if hit {
					c.c.Hits++
				} else {
					c.c.Misses++
				}
			}
			if err == nil && hit && w.vc != nil {
				if _, cerr := w.vc.check(val, k, w.vers.max(k)); cerr != nil {
					c.c.BadValues++
					w.noteBad(key, val, cerr)
				}
			}
			if err == nil && !hit && w.opt.readThrough {
				c.refill = append(c.refill, k)
			}
		}
		if err != nil {
			var er *errReply
			if errors.As(err, &er) {
				c.c.ErrorReplies++
				w.noteErr(err)
				continue
			}
			if errors.Is(err, errProtocol) {
				c.c.ProtocolErrors++
			}
			return err
		}
		if record {
			us := time.Since(start).Microseconds()
			if w.opt.slowLog != "" && us >= w.opt.slowUs {
				c.slow = append(c.slow, slowReq{start.UnixMicro(), us, lag})
			}
			if c.isSet[i] {
				c.setH.RecordValue(max(us, histMin))
			} else {
				c.getH.RecordValue(max(us, histMin))
			}
		}
	}
	return nil
}

// runPhase runs the load on every client until ctx is done or the request
// budget is spent. Replies that complete before warmupEnd are not counted.
type phaseResult struct {
	counts
	getH, setH *hdrhistogram.Histogram
	elapsed    time.Duration
	connErrors int
}

func runPhase(ctx context.Context, w *workload, clients []*client) phaseResult {
	opt := w.opt
	var remaining atomic.Int64
	remaining.Store(opt.requests)
	if opt.requests <= 0 {
		remaining.Store(1 << 62)
	}
	begin := time.Now()
	warmEnd := begin.Add(opt.warmup)
	var interval time.Duration
	if opt.rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(len(clients)*opt.pipeline) / opt.rate)
	}
	var wg sync.WaitGroup
	ends := make([]time.Time, len(clients))
	var connErrors atomic.Int64
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { ends[i] = time.Now() }()
			next := begin.Add(time.Duration(i) * interval / time.Duration(max(1, len(clients))))
			for ctx.Err() == nil {
				n := int64(opt.pipeline)
				if left := remaining.Add(-n); left < 0 {
					n += left
					if n <= 0 {
						return
					}
				}
				start := time.Now()
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
					start = next // latency from the intended send time
					next = next.Add(interval)
				}
				c.batch(int(n))
				if err := c.exchange(start, start.After(warmEnd) || opt.warmup == 0); err != nil {
					if ctx.Err() == nil {
						w.noteErr(err)
						connErrors.Add(1)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	res := phaseResult{getH: newHist(), setH: newHist(), connErrors: int(connErrors.Load())}
	end := begin
	for i, c := range clients {
		res.add(&c.c)
		res.getH.Merge(c.getH)
		res.setH.Merge(c.setH)
		if ends[i].After(end) {
			end = ends[i]
		}
	}
	measured := end.Sub(warmEnd)
	if measured <= 0 {
		measured = end.Sub(begin)
	}
	res.elapsed = measured
	return res
}

// fill stores every key once, each client taking a contiguous range,
// pipelined depth deep.
func fill(w *workload, clients []*client, depth int) (counts, time.Duration, error) {
	n := w.ks.n
	per := (n + len(clients) - 1) / len(clients)
	var wg sync.WaitGroup
	errs := make([]error, len(clients))
	begin := time.Now()
	for i, c := range clients {
		lo, hi := i*per, min((i+1)*per, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := lo; k < hi; {
				c.out, c.keys, c.kidx, c.isSet = c.out[:0], c.keys[:0], c.kidx[:0], c.isSet[:0]
				for ; k < hi && len(c.kidx) < depth; k++ {
					c.appendOp(k, true)
				}
				if err := c.exchange(time.Now(), false); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	var total counts
	for _, c := range clients {
		total.add(&c.c)
		c.c = counts{}
	}
	total.Sets = uint64(n)
	return total, time.Since(begin), errors.Join(errs...)
}
