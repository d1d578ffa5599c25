package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// TLS: with -tls every connection (the load's, the fill's, the idle
// ones, the stats probe) speaks TLS; -tls-ca names the CA to verify the
// server with (without it the certificate is not verified: a benchmark,
// not a client to trust), -tls-version pins the version (1.2 or 1.3;
// default: negotiate, 1.3 with mnemo and memcached), -tls-resume keeps
// sessions for new connections, -tls-curve offers one key exchange only
// (Go's client offers the hybrid X25519MLKEM768 first: crypto/tls servers
// take it, OpenSSL 3.0 servers, which lack it, take X25519, so pin
// x25519 to compare the two on the same key exchange). -handshakes replaces the load with new
// connections: each worker (-conns of them) connects, completes the
// handshake, sends the protocol's probe, reads its reply and closes, for
// -duration (or until -requests connections); it reports connections per
// second and their latency.

// tlsConfig returns the client's TLS configuration, or nil without -tls.
func tlsConfig(opt *options) (*tls.Config, error) {
	if !opt.tls {
		return nil, nil
	}
	cfg := &tls.Config{InsecureSkipVerify: opt.tlsCA == ""}
	if host, _, err := net.SplitHostPort(opt.server); err == nil {
		cfg.ServerName = host
	}
	if opt.tlsCA != "" {
		pem, err := os.ReadFile(opt.tlsCA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-tls-ca %s: no PEM certificate", opt.tlsCA)
		}
	}
	switch opt.tlsVersion {
	case "":
	case "1.2":
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	case "1.3":
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
	default:
		return nil, fmt.Errorf("-tls-version %q: want 1.2 or 1.3", opt.tlsVersion)
	}
	switch opt.tlsCurve {
	case "":
	case "x25519":
		cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	case "p256":
		cfg.CurvePreferences = []tls.CurveID{tls.CurveP256}
	case "x25519mlkem768":
		cfg.CurvePreferences = []tls.CurveID{tls.X25519MLKEM768}
	default:
		return nil, fmt.Errorf("-tls-curve %q: want x25519, p256 or x25519mlkem768", opt.tlsCurve)
	}
	if opt.tlsResume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(opt.conns)
	}
	return cfg, nil
}

// dialServer connects to the server, with TLS (handshake completed) when
// the workload has a TLS configuration.
func dialServer(w *workload) (net.Conn, error) {
	opt := w.opt
	nc, err := net.DialTimeout("tcp", opt.server, opt.timeout)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if w.tls == nil {
		return nc, nil
	}
	tc := tls.Client(nc, w.tls)
	nc.SetDeadline(time.Now().Add(opt.timeout))
	if err := tc.Handshake(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	nc.SetDeadline(time.Time{})
	return tc, nil
}

// Handshakes reports the -handshakes mode.
type Handshakes struct {
	KeyExchange string      `json:"key_exchange,omitempty"` // of the last connection
	Conns       uint64      `json:"conns"`
	Resumed     uint64      `json:"resumed"`
	Errors      uint64      `json:"errors"`
	Seconds     float64     `json:"seconds"`
	PerSecond   float64     `json:"conns_per_sec"`
	Latency     Percentiles `json:"latency_us"`
}

// runHandshakes opens, uses once and closes connections for
// opt.duration, opt.conns at a time.
func runHandshakes(ctx context.Context, w *workload, res *Result) error {
	opt := w.opt
	var cancel context.CancelFunc
	switch {
	case opt.duration > 0:
		ctx, cancel = context.WithTimeout(ctx, opt.warmup+opt.duration)
	case opt.requests > 0:
		ctx, cancel = context.WithCancel(ctx)
	default:
		return errors.New("-handshakes needs -duration or -requests")
	}
	defer cancel()
	var started atomic.Int64
	begin := time.Now()
	warmEnd := begin.Add(opt.warmup)
	var (
		wg                     sync.WaitGroup
		mu                     sync.Mutex
		conns, resumed, failed atomic.Uint64
		curve                  atomic.Uint32
	)
	hist := newHist()
	for range opt.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newHist()
			for ctx.Err() == nil {
				if opt.requests > 0 && started.Add(1) > opt.requests {
					cancel()
					break
				}
				start := time.Now()
				nc, err := dialServer(w)
				if err == nil {
					err = w.proto.probe(nc, bufio.NewReaderSize(nc, 512), opt.timeout)
					if tc, ok := nc.(*tls.Conn); ok {
						cs := tc.ConnectionState()
						curve.Store(uint32(cs.CurveID))
						if cs.DidResume && start.After(warmEnd) {
							resumed.Add(1)
						}
					}
					nc.Close()
				}
				if !start.After(warmEnd) {
					continue
				}
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
						w.noteErr(err)
					}
					continue
				}
				conns.Add(1)
				h.RecordValue(max(time.Since(start).Microseconds(), histMin))
			}
			mu.Lock()
			hist.Merge(h)
			mu.Unlock()
		}()
	}
	wg.Wait()
	secs := time.Since(warmEnd).Seconds()
	hs := &Handshakes{KeyExchange: tls.CurveID(curve.Load()).String(), Conns: conns.Load(), Resumed: resumed.Load(), Errors: failed.Load(), Seconds: secs, Latency: percentiles(hist)}
	if secs > 0 {
		hs.PerSecond = float64(hs.Conns) / secs
	}
	res.Handshakes = hs
	res.ConnErrors = int(hs.Errors)
	return nil
}
