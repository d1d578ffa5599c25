package main

import (
	"bytes"
)

// Multi-key gets (-multiget N, text protocol): a get request names the
// op's key and N-1 more drawn from the same distribution,
// "get k1 k2 ... kN"; memcached answers a VALUE block for each key it
// holds, in the order asked, then END. The request counts as one get and
// one op (its latency is the whole reply's); each key counts as a hit or
// a miss.

// appendMultiGet appends "get key k2 ... kN\r\n" and notes k2..kN.
func (c *client) appendMultiGet(key []byte) {
	w := c.w
	c.out = append(c.out, "get "...)
	c.out = append(c.out, key...)
	for range w.opt.multiGet - 1 {
		k := c.next()
		start := len(c.mkeys)
		c.mkeys = w.ks.appendKey(c.mkeys, k)
		c.mkidx = append(c.mkidx, k)
		c.out = append(c.out, ' ')
		c.out = append(c.out, c.mkeys[start:]...)
	}
	c.out = append(c.out, "\r\n"...)
}

// readMultiGet reads the reply to the multi-get whose first key is key
// (index k): VALUE blocks for the keys found, in request order, then END.
// The gets of a batch are read in order, so the other keys are the
// first multiGet-1 of c.mkidx not yet consumed.
func (c *client) readMultiGet(key []byte, k int, record bool) error {
	w := c.w
	n := w.opt.multiGet
	ks := w.ks.size
	// This get's other keys: consumed from the front of mkeys/mkidx.
	others, oidx := c.mkeys[:(n-1)*ks], c.mkidx[:n-1]
	c.mkeys, c.mkidx = c.mkeys[(n-1)*ks:], c.mkidx[n-1:]
	keyAt := func(i int) ([]byte, int) {
		if i == 0 {
			return key, k
		}
		return others[(i-1)*ks : i*ks], oidx[i-1]
	}
	hits, next := 0, 0 // next: the first key not yet answered or skipped
	for {
		line, err := readLine(c.r)
		if err != nil {
			return err
		}
		if string(line) == "END" {
			break
		}
		if isErrorLine(line) {
			return &errReply{string(line)}
		}
		if string(field(line, 0)) != "VALUE" || field(line, 4) != nil {
			return protoErr("unexpected get reply %q", line)
		}
		got := field(line, 1)
		for next < n {
			if kb, _ := keyAt(next); bytes.Equal(kb, got) {
				break
			}
			next++ // asked for and not found
		}
		if next == n {
			return protoErr("multi-get answered key %q out of order or not asked for", got)
		}
		size, ok := atoi(field(line, 3))
		if !ok {
			return protoErr("bad length in %q", line)
		}
		val, err := readData(c.r, size, c.scratch[:0])
		if err != nil {
			return err
		}
		if w.vc != nil {
			kb, ki := keyAt(next)
			if _, cerr := w.vc.check(val, ki, w.vers.max(ki)); cerr != nil {
				c.c.BadValues++
				w.noteBad(kb, val, cerr)
			}
		}
		hits++
		next++
	}
	if record {
		c.c.Gets++
		c.c.Hits += uint64(hits)
		c.c.Misses += uint64(n - hits)
	}
	return nil
}
