package cache

import (
	"strconv"

	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/internal/number"
)

// StoreMode selects a storage command.
type StoreMode uint8

// The storage commands.
const (
	ModeSet StoreMode = iota
	ModeAdd
	ModeReplace
	ModeAppend
	ModePrepend
	ModeCAS
)

// Session executes commands for one connection. It is not safe for
// concurrent use.
type Session struct {
	Counters

	c       *Cache
	store   storeMutator
	arith   arithMutator
	touch   touchMutator
	del     deleteMutator
	scratch []byte // values built by mutators (append, incr)

	// View with CAS disabled: the caller's function, and s.hideCAS.
	viewFn, viewNoCAS func(engine.Meta, []byte)

	// The meta commands' mutators (meta.go).
	metaGet   metaGetMutator
	metaClaim claimMutator
	metaStore metaStoreMutator
	metaDel   metaDeleteMutator
	metaArith metaArithMutator
}

// maxPooledScratch is the largest scratch buffer a closed session keeps
// for its next user.
const maxPooledScratch = 4 << 10

// Close ends the session and folds its counters into the cache's totals,
// at once, so that the totals stay exact. The session must not be used
// after Close: it goes back to the cache for NewSession to reuse.
func (s *Session) Close() {
	c := s.c
	c.mu.Lock()
	delete(c.sessions, s)
	cf := c.closed.fields()
	for i, f := range s.Counters.fields() {
		cf[i].v.Add(f.v.Swap(0))
	}
	c.mu.Unlock()
	scratch := s.scratch
	if cap(scratch) > maxPooledScratch {
		scratch = nil
	}
	s.clear()
	s.c, s.scratch = c, scratch[:0]
	c.pool.Put(s)
}

// clear zeroes everything but the counters (which Close has zeroed),
// so that a pooled session keeps no reference to keys or values.
func (s *Session) clear() {
	s.c, s.scratch = nil, nil
	s.store = storeMutator{}
	s.arith = arithMutator{}
	s.touch = touchMutator{}
	s.del = deleteMutator{}
	s.metaGet = metaGetMutator{}
	s.metaClaim = claimMutator{}
	s.metaStore = metaStoreMutator{}
	s.metaDel = metaDeleteMutator{}
	s.metaArith = metaArithMutator{}
}

// Cache returns the cache the session belongs to.
func (s *Session) Cache() *Cache { return s.c }

// cas hides CAS values when CAS is disabled (-C).
func (s *Session) cas(m engine.Meta) engine.Meta {
	if s.c.opts.DisableCAS {
		m.CAS = 0
	}
	return m
}

// Get appends key's value to dst, counting a get (cmd_get, get_hits,
// get_misses) and touching the item.
func (s *Session) Get(key, dst []byte) (engine.Meta, []byte, bool, error) {
	s.CmdGet.Add(1)
	m, dst, ok, err := s.c.eng.Get(key, dst, engine.GetTouch)
	if err != nil {
		return m, dst, false, err
	}
	if ok {
		s.GetHits.Add(1)
	} else {
		s.GetMisses.Add(1)
	}
	return s.cas(m), dst, ok, nil
}

// View is Get for a caller that frames the value: when key is found, fn
// is called once with the item's metadata (as Get returns it) and its
// value, which aliases engine memory and runs under engine locks (see
// engine.Engine.View: fn must not block, retain the value or call the
// cache). It counts a get as Get does.
func (s *Session) View(key []byte, fn func(engine.Meta, []byte)) (engine.Meta, bool, error) {
	s.CmdGet.Add(1)
	if s.c.opts.DisableCAS {
		if s.viewNoCAS == nil {
			s.viewNoCAS = s.hideCAS // once per Session (pooled): no allocation per call
		}
		s.viewFn = fn
		fn = s.viewNoCAS
	}
	m, ok, err := s.c.eng.View(key, engine.GetTouch, fn)
	s.viewFn = nil
	if err != nil {
		return m, false, err
	}
	if ok {
		s.GetHits.Add(1)
	} else {
		s.GetMisses.Add(1)
	}
	return s.cas(m), ok, nil
}

// hideCAS passes a View on to s.viewFn with the CAS hidden (-C).
func (s *Session) hideCAS(m engine.Meta, v []byte) { s.viewFn(s.cas(m), v) }

// GetAndTouch appends key's value to dst and sets its exptime (gat),
// counting a touch (cmd_touch, touch_hits, touch_misses) as memcached does.
// The returned Meta carries the new exptime.
func (s *Session) GetAndTouch(key, dst []byte, exptime int64) (engine.Meta, []byte, bool, error) {
	s.CmdTouch.Add(1)
	t := &s.touch
	*t = touchMutator{exptime: Expiry(exptime, s.c.clock.Now()), dst: dst, copyValue: true}
	_, m, err := s.c.eng.Update(key, t)
	dst = t.dst
	t.dst = nil
	if err != nil {
		return m, dst, false, err
	}
	if !t.found {
		s.TouchMisses.Add(1)
		return m, dst, false, nil
	}
	s.TouchHits.Add(1)
	return s.cas(m), dst, true, nil
}

// Touch sets key's exptime (touch).
func (s *Session) Touch(key []byte, exptime int64) (Status, error) {
	s.CmdTouch.Add(1)
	t := &s.touch
	*t = touchMutator{exptime: Expiry(exptime, s.c.clock.Now())}
	if _, _, err := s.c.eng.Update(key, t); err != nil {
		return StatusNone, err
	}
	if !t.found {
		s.TouchMisses.Add(1)
		return NotFound, nil
	}
	s.TouchHits.Add(1)
	return Touched, nil
}

// Store executes a storage command. exptime is as the client sent it. A
// non-zero cas turns set, add and replace into a cas command, as memcached
// does for the binary protocol; ModeCAS requires it; append and prepend
// with a cas must match it too. It returns the outcome and, when stored,
// the new item's metadata.
//
// A set whose item cannot be allocated (too large, out of memory) drops
// the key's old item; an append or prepend whose combined item cannot be
// allocated is NOT_STORED, as in memcached.
func (s *Session) Store(mode StoreMode, key []byte, flags uint32, exptime int64, value []byte, cas uint64) (Status, engine.Meta, error) {
	s.CmdSet.Add(1)
	eff := mode
	if cas != 0 && (mode == ModeSet || mode == ModeAdd || mode == ModeReplace) {
		eff = ModeCAS
	}
	m := &s.store
	*m = storeMutator{
		mode:    eff,
		flags:   flags,
		exptime: Expiry(exptime, s.c.clock.Now()),
		value:   value,
		cas:     cas,
		noCAS:   s.c.opts.DisableCAS,
		scratch: s.scratch,
	}
	_, meta, err := s.c.eng.Update(key, m)
	s.scratch = m.scratch
	m.value = nil
	if err != nil && outOfRoom(err) {
		if eff == ModeAppend || eff == ModePrepend {
			// memcached: an append that cannot allocate the combined
			// item is NOT_STORED.
			return NotStored, meta, nil
		}
		s.countRefused(err)
		if mode == ModeSet {
			s.dropStale(key)
		}
	}
	if err != nil {
		return StatusNone, meta, err
	}
	if m.status == Stored {
		s.TotalItems.Add(1)
	}
	if eff == ModeCAS {
		switch m.status {
		case Stored:
			s.CasHits.Add(1)
		case Exists:
			s.CasBadval.Add(1)
		case NotFound:
			s.CasMisses.Add(1)
		}
	}
	return m.status, s.cas(meta), nil
}

// Delete removes key. A non-zero cas must match the item's (binary and
// meta protocols).
func (s *Session) Delete(key []byte, cas uint64) (Status, error) {
	var ok bool
	if cas == 0 {
		var err error
		if ok, err = s.c.eng.Delete(key); err != nil {
			return StatusNone, err
		}
	} else {
		d := &s.del
		*d = deleteMutator{cas: cas}
		if _, _, err := s.c.eng.Update(key, d); err != nil {
			return StatusNone, err
		}
		if d.status == Exists {
			return Exists, nil
		}
		ok = d.status == Deleted
	}
	if !ok {
		s.DeleteMisses.Add(1)
		return NotFound, nil
	}
	s.DeleteHits.Add(1)
	return Deleted, nil
}

// Arith describes an incr or decr.
type Arith struct {
	Incr  bool
	Delta uint64
	// CAS, when not 0, must match the item's.
	CAS uint64
	// Create makes a missing key be created with Initial and Exptime
	// (binary protocol, meta ma with N).
	Create  bool
	Initial uint64
	Exptime int64
}

// Arith executes incr or decr: incr wraps at 2^64, decr stops at 0. It
// returns the new value; a shorter result is padded with spaces to the old
// length, as memcached stores it in place.
func (s *Session) Arith(key []byte, a Arith) (Status, uint64, engine.Meta, error) {
	m := &s.arith
	*m = arithMutator{a: a, scratch: s.scratch}
	if a.Create {
		m.a.Exptime = Expiry(a.Exptime, s.c.clock.Now())
	}
	_, meta, err := s.c.eng.Update(key, m)
	s.scratch = m.scratch
	if err != nil {
		return StatusNone, 0, meta, err
	}
	switch {
	case m.status == NotFound && a.Incr:
		s.IncrMisses.Add(1)
	case m.status == NotFound:
		s.DecrMisses.Add(1)
	}
	if m.status == Stored && m.linked {
		s.TotalItems.Add(1)
	}
	switch {
	case m.status == Stored && a.Incr:
		s.IncrHits.Add(1)
	case m.status == Stored:
		s.DecrHits.Add(1)
	}
	return m.status, m.result, s.cas(meta), nil
}

// storeMutator implements the storage commands (memcached's
// do_store_item).
type storeMutator struct {
	mode    StoreMode
	flags   uint32
	exptime int64
	value   []byte
	cas     uint64
	noCAS   bool
	scratch []byte
	status  Status
}

var _ engine.BlindMutator = (*storeMutator)(nil)

// Blind reports that a plain set (no CAS) ignores the current item, so
// that an engine need not load it (engine.BlindMutator).
func (m *storeMutator) Blind() bool { return m.mode == ModeSet && m.cas == 0 }

func (m *storeMutator) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	if !found {
		switch {
		case m.mode == ModeCAS:
			m.status = NotFound
		case m.mode == ModeSet || m.mode == ModeAdd:
			m.status = Stored
			next.Meta = engine.Meta{Flags: m.flags, Exptime: m.exptime}
			next.Value = m.value
			return engine.OpStore
		default:
			// replace, and append or prepend with or without a CAS
			// (memcached compares an append's CAS only with an item
			// that exists).
			m.status = NotStored
		}
		return engine.OpNone
	}
	if m.cas != 0 && (m.noCAS || m.cas != cur.CAS) {
		m.status = Exists
		return engine.OpNone
	}
	switch m.mode {
	case ModeAdd:
		m.status = NotStored
		return engine.OpNone
	case ModeCAS:
		if m.cas == 0 {
			m.status = Exists
			return engine.OpNone
		}
	case ModeAppend, ModePrepend:
		// Appends keep the item's flags and exptime.
		buf := m.scratch[:0]
		if m.mode == ModeAppend {
			buf = append(append(buf, cur.Value...), m.value...)
		} else {
			buf = append(append(buf, m.value...), cur.Value...)
		}
		m.scratch = buf
		m.status = Stored
		next.Meta = engine.Meta{Flags: cur.Flags, Exptime: cur.Exptime}
		next.Value = buf
		return engine.OpStore
	}
	m.status = Stored
	next.Meta = engine.Meta{Flags: m.flags, Exptime: m.exptime}
	next.Value = m.value
	return engine.OpStore
}

// touchMutator changes an item's exptime, keeping its CAS, and optionally
// copies its value out (gat).
type touchMutator struct {
	exptime   int64
	copyValue bool
	dst       []byte
	dstLen    int
	found     bool
	started   bool
}

func (m *touchMutator) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	if !m.started {
		m.started, m.dstLen = true, len(m.dst)
	}
	m.found = found
	if !found {
		return engine.OpNone
	}
	if m.copyValue {
		m.dst = append(m.dst[:m.dstLen], cur.Value...)
	}
	next.Meta = cur.Meta
	next.Exptime = m.exptime
	next.Bits |= engine.BitFetched
	return engine.OpMeta
}

// deleteMutator deletes an item when its CAS matches.
type deleteMutator struct {
	cas    uint64
	status Status
}

func (m *deleteMutator) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	switch {
	case !found:
		m.status = NotFound
		return engine.OpNone
	case m.cas != cur.CAS:
		m.status = Exists
		return engine.OpNone
	}
	m.status = Deleted
	return engine.OpDelete
}

// arithMutator implements incr and decr (memcached's do_add_delta).
type arithMutator struct {
	a       Arith
	scratch []byte
	status  Status
	result  uint64
	linked  bool // a new item was made: created, or too long to rewrite in place
}

func (m *arithMutator) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	if !found {
		if !m.a.Create {
			m.status = NotFound
			return engine.OpNone
		}
		m.result = m.a.Initial
		m.scratch = strconv.AppendUint(m.scratch[:0], m.a.Initial, 10)
		m.status, m.linked = Stored, true
		next.Meta = engine.Meta{Exptime: m.a.Exptime}
		next.Value = m.scratch
		return engine.OpStore
	}
	if m.a.CAS != 0 && m.a.CAS != cur.CAS {
		m.status = Exists
		return engine.OpNone
	}
	buf, v, grew, ok := addDelta(m.scratch, cur.Value, m.a.Incr, m.a.Delta)
	if !ok {
		m.status = NonNumeric
		return engine.OpNone
	}
	m.result, m.linked = v, grew
	m.scratch = buf
	m.status = Stored
	next.Meta = engine.Meta{Flags: cur.Flags, Exptime: cur.Exptime, Bits: cur.Bits}
	next.Value = buf
	return engine.OpStore
}

// addDelta applies an incr (wrapping at 2^64) or a decr (stopping at 0) to
// a counter value, as memcached's do_add_delta: it formats the result into
// scratch, padded with spaces to the old length when it fits (memcached
// rewrites such a value in place), and reports whether it grew longer (a
// new item). ok is false when value is not a number.
func addDelta(scratch, value []byte, incr bool, delta uint64) (buf []byte, v uint64, grew, ok bool) {
	v, ok = number.ParseUint64(value) // memcached: safe_strtoull
	if !ok {
		return scratch, 0, false, false
	}
	switch {
	case incr:
		v += delta
	case delta > v:
		v = 0
	default:
		v -= delta
	}
	buf = strconv.AppendUint(scratch[:0], v, 10)
	grew = len(buf) > len(value)
	for len(buf) < len(value) {
		buf = append(buf, ' ')
	}
	return buf, v, grew, true
}
