package memcache

import (
	"bytes"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/mnemo-cache/mnemo/protocol/text"
	"github.com/mnemo-cache/mnemo/server"
)

// Per-prefix statistics, memcached's "stats detail" (-D): when on, every
// get, set and delete of a key that holds the delimiter counts against the
// key's prefix; "stats detail dump" lists the counts.

// detailStats are memcached's per-prefix counters ("stats detail").
type detailStats struct {
	delim  byte
	on     atomic.Bool
	mu     sync.Mutex // guards prefix
	prefix map[string]*prefixCounts
}

type prefixCounts struct{ get, hit, set, del uint64 }

func (d *detailStats) setEnabled(on bool) { d.on.Store(on) }

func (d *detailStats) record(key []byte, f func(*prefixCounts)) {
	if !d.on.Load() {
		return
	}
	i := bytes.IndexByte(key, d.delim)
	if i < 0 {
		return
	}
	d.mu.Lock()
	if d.prefix == nil {
		d.prefix = map[string]*prefixCounts{}
	}
	p := d.prefix[string(key[:i])]
	if p == nil {
		p = &prefixCounts{}
		d.prefix[string(key[:i])] = p
	}
	f(p)
	d.mu.Unlock()
}

func (d *detailStats) recordGet(key []byte, hit bool) {
	d.record(key, func(p *prefixCounts) {
		p.get++
		if hit {
			p.hit++
		}
	})
}

func (d *detailStats) recordSet(key []byte)    { d.record(key, func(p *prefixCounts) { p.set++ }) }
func (d *detailStats) recordDelete(key []byte) { d.record(key, func(p *prefixCounts) { p.del++ }) }

// detailDump is a copy of the per-prefix counters, sorted by prefix, for
// "stats detail dump" to write without holding the lock.
type detailDump []detailLine

type detailLine struct {
	prefix string
	prefixCounts
}

// snapshot copies the counters, sorted by prefix.
func (d *detailStats) snapshot() detailDump {
	d.mu.Lock()
	lines := make(detailDump, 0, len(d.prefix))
	for n, p := range d.prefix {
		lines = append(lines, detailLine{n, *p})
	}
	d.mu.Unlock()
	sort.Slice(lines, func(i, j int) bool { return lines[i].prefix < lines[j].prefix })
	return lines
}

// appendLine appends one line of the dump: "PREFIX <prefix> get <n> hit
// <n> set <n> del <n>\r\n". A prefix that would break the line (a binary
// or base64 key's control bytes or spaces) is shown in base64 with " b"
// at the end of the line, as in stats cachedump.
func (l *detailLine) appendLine(dst []byte) []byte {
	dst = append(dst, "PREFIX "...)
	b64 := !printableKey(l.prefix)
	if b64 {
		dst = text.AppendBase64(dst, []byte(l.prefix))
	} else {
		dst = append(dst, l.prefix...)
	}
	dst = append(dst, " get "...)
	dst = strconv.AppendUint(dst, l.get, 10)
	dst = append(dst, " hit "...)
	dst = strconv.AppendUint(dst, l.hit, 10)
	dst = append(dst, " set "...)
	dst = strconv.AppendUint(dst, l.set, 10)
	dst = append(dst, " del "...)
	dst = strconv.AppendUint(dst, l.del, 10)
	if b64 {
		dst = append(dst, " b"...)
	}
	return append(dst, "\r\n"...)
}

// size is the length of the dump's lines.
func (d detailDump) size() int {
	var buf [128]byte
	n := 0
	for i := range d {
		l := &d[i]
		n += len(l.appendLine(buf[:0]))
	}
	return n
}

// write appends the dump's lines to c.Out, writing them out as they pass
// flushThreshold.
func (d detailDump) write(c *server.Conn) error {
	for i := range d {
		if err := flushIfFull(c); err != nil {
			return err
		}
		c.Out = d[i].appendLine(c.Out)
	}
	return nil
}

// printableKey reports whether key can be shown as it is in a line of
// text: it has no control bytes, spaces or DEL (bytes from 0x80 are
// shown raw, as memcached does).
func printableKey[K ~string | ~[]byte](key K) bool {
	for i := 0; i < len(key); i++ {
		if b := key[i]; b <= ' ' || b == 0x7f {
			return false
		}
	}
	return true
}

// reset forgets every prefix ("stats reset").
func (d *detailStats) reset() {
	d.mu.Lock()
	d.prefix = nil
	d.mu.Unlock()
}
