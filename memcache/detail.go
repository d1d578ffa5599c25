package memcache

import (
	"bytes"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
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

func (d *detailStats) dump(dst []byte) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	names := make([]string, 0, len(d.prefix))
	for n := range d.prefix {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := d.prefix[n]
		dst = fmt.Appendf(dst, "PREFIX %s get %d hit %d set %d del %d\r\n", n, p.get, p.hit, p.set, p.del)
	}
	return dst
}

// reset forgets every prefix ("stats reset").
func (d *detailStats) reset() {
	d.mu.Lock()
	d.prefix = nil
	d.mu.Unlock()
}
