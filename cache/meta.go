package cache

import (
	"strconv"

	"github.com/mnemo-cache/mnemo/engine"
)

// The meta protocol's semantics (memcached 1.6's mg, ms, md, ma and me),
// on the same engine primitives as the classic commands: a meta set and a
// classic get see the same item, CAS and flags. Stale-while-revalidate uses
// the engine's item bits: engine.BitStale marks an invalidated item,
// engine.BitWinSent records that one client has been told to recache it.
//
// TTL-like arguments (T, N, R) are exptimes as clients send them; the
// results report absolute unix times, like engine.Meta.

// MetaGetOpts are the flags of an mg that change what it does.
type MetaGetOpts struct {
	// Value copies the item's value (v).
	Value bool
	// NoBump leaves the item's access time, fetched bit and recency alone
	// (u).
	NoBump bool
	// TTL sets the item's exptime to TTLValue (T).
	TTL      bool
	TTLValue int64
	// Vivify creates an empty item with exptime VivifyTTL on a miss and
	// hands this client the win (N).
	Vivify    bool
	VivifyTTL int64
	// Recache hands this client the win when the item's remaining TTL is
	// below RecacheTTL (R).
	Recache    bool
	RecacheTTL int64
	// Seq lists 'T', 'N' and 'R' in the order the flags were sent (0 for
	// the unused places): memcached applies them in that order.
	Seq [3]byte
	// NewCAS is the CAS of an item created by Vivify (E); 0 assigns one.
	NewCAS uint64
}

// MetaGetResult is the outcome of an mg.
type MetaGetResult struct {
	// Found: the item exists (or was created by Vivify).
	Found bool
	// Created: the item was created by Vivify.
	Created bool
	// Meta is the item's metadata before this request (its Atime and
	// fetched bit as they were before the access); its CAS is the current
	// one.
	Meta engine.Meta
	// TTLExptime and VivifyExptime are the absolute exptimes that T and N
	// set.
	TTLExptime, VivifyExptime int64
	// Won: this client won the right to recache the item (reply flag W).
	// Stale: the item is stale (X). WinSent: another client had already
	// won (Z).
	Won, Stale, WinSent bool
	// Now is the time the request ran at.
	Now int64
}

// MetaGet runs an mg: it appends the value to dst when o.Value is set and
// returns the result, counting memcached's statistics (a hit with T counts
// as a touch, otherwise as a get).
func (s *Session) MetaGet(key, dst []byte, o MetaGetOpts) (MetaGetResult, []byte, error) {
	now := s.c.clock.Now()
	var r MetaGetResult
	if !o.TTL && !o.Vivify && !o.Recache {
		// No change requested: a plain read, unless the item turns out
		// to be stale and the win is still to be handed out.
		flags := engine.GetTouch
		if o.NoBump {
			flags = 0
		}
		if !o.Value {
			flags |= engine.GetNoValue
		}
		m, out, ok, err := s.c.eng.Get(key, dst, flags)
		if err != nil {
			return r, out, err
		}
		r = MetaGetResult{Found: ok, Meta: m, Now: now}
		if ok {
			r.Stale = m.Bits&engine.BitStale != 0
			r.WinSent = m.Bits&engine.BitWinSent != 0
			if r.Stale && !r.WinSent {
				cl := &s.metaClaim
				*cl = claimMutator{cas: m.CAS}
				if _, _, err := s.c.eng.Update(key, cl); err != nil {
					return r, out, err
				}
				// Another client may have claimed it in between.
				r.Won, r.WinSent = cl.won, !cl.won
			}
		}
		s.countMetaGet(&r, false)
		r.Meta = s.cas(r.Meta)
		return r, out, nil
	}
	g := &s.metaGet
	*g = metaGetMutator{o: o, now: now, dst: dst}
	_, meta, err := s.c.eng.Update(key, g)
	out := g.dst
	g.dst = nil
	if err != nil {
		return g.res, out, err
	}
	r = g.res
	if r.Created {
		r.Meta.CAS = meta.CAS
	}
	s.countMetaGet(&r, o.TTL)
	r.Meta = s.cas(r.Meta)
	return r, out, nil
}

func (s *Session) countMetaGet(r *MetaGetResult, ttl bool) {
	switch {
	case r.Found && ttl:
		s.CmdTouch.Add(1)
		s.TouchHits.Add(1)
	case r.Found:
		s.CmdGet.Add(1)
		s.GetHits.Add(1)
	default:
		s.CmdGet.Add(1)
		s.GetMisses.Add(1)
	}
}

// metaGetMutator implements an mg that changes the item.
type metaGetMutator struct {
	o       MetaGetOpts
	now     int64
	dst     []byte
	dstLen  int
	started bool
	res     MetaGetResult
}

func (m *metaGetMutator) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	if !m.started {
		m.started, m.dstLen = true, len(m.dst)
	}
	m.dst = m.dst[:m.dstLen]
	o := &m.o
	r := &m.res
	*r = MetaGetResult{Now: m.now}
	if o.TTL {
		r.TTLExptime = Expiry(o.TTLValue, m.now)
	}
	if o.Vivify {
		r.VivifyExptime = Expiry(o.VivifyTTL, m.now)
	}
	if !found {
		if !o.Vivify {
			return engine.OpNone
		}
		exp := int64(0)
		for _, f := range o.Seq {
			switch f {
			case 'T':
				exp = r.TTLExptime
			case 'N':
				exp = r.VivifyExptime
			}
		}
		r.Found, r.Created, r.Won = true, true, true
		r.Meta = engine.Meta{Atime: m.now}
		bits := engine.BitWinSent
		if !o.NoBump {
			bits |= engine.BitFetched
		}
		next.Meta = engine.Meta{Exptime: exp, CAS: o.NewCAS, Bits: bits}
		next.Value = m.dst[m.dstLen:] // empty
		return engine.OpStore
	}
	r.Found = true
	r.Meta = cur.Meta
	if o.Value {
		m.dst = append(m.dst, cur.Value...)
	}
	exp := cur.Exptime
	r.WinSent = cur.Bits&engine.BitWinSent != 0
	r.Stale = cur.Bits&engine.BitStale != 0
	for _, f := range o.Seq {
		switch f {
		case 'T':
			exp = r.TTLExptime
		case 'R':
			if !r.WinSent && exp != 0 && exp < Expiry(o.RecacheTTL, m.now) {
				r.Won = true
			}
		}
	}
	if r.Stale && !r.WinSent {
		r.Won = true
	}
	bits := cur.Bits
	if r.Won {
		bits |= engine.BitWinSent
	}
	if !o.NoBump {
		bits |= engine.BitFetched
	}
	if o.NoBump && exp == cur.Exptime && bits == cur.Bits {
		return engine.OpNone
	}
	next.Meta = cur.Meta
	next.Exptime = exp
	next.Bits = bits
	if !o.NoBump {
		next.Atime = m.now
	}
	return engine.OpMeta
}

// claimMutator hands out the win of a stale item whose CAS is still cas.
type claimMutator struct {
	cas uint64
	won bool
}

func (m *claimMutator) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	m.won = false
	if !found || cur.CAS != m.cas || cur.Bits&engine.BitStale == 0 || cur.Bits&engine.BitWinSent != 0 {
		return engine.OpNone
	}
	m.won = true
	next.Meta = cur.Meta
	next.Bits |= engine.BitWinSent
	return engine.OpMeta
}

// MetaSetOpts are the flags of an ms.
type MetaSetOpts struct {
	// Mode is ModeSet, ModeAdd, ModeReplace, ModeAppend or ModePrepend
	// (M flag S, E, R, A, P).
	Mode StoreMode
	// Flags (F) and Exptime (T) of the new item.
	Flags   uint32
	Exptime int64
	// HasCAS: compare with CAS (C); set and replace then act as cas.
	HasCAS bool
	CAS    uint64
	// Invalidate (I): with HasCAS, a CAS older than the item's still
	// stores, keeping the item's exptime and marking it stale.
	Invalidate bool
	// NewCAS is the stored item's CAS (E); 0 assigns one.
	NewCAS uint64
	// Vivify (N): append or prepend to a missing key stores the value as
	// a new item with exptime VivifyTTL.
	Vivify    bool
	VivifyTTL int64
}

// MetaSet runs an ms with value. It returns the outcome, the stored item's
// metadata (when Stored) and the length of the stored value (the request's
// when not stored). An append or prepend whose combined item cannot be
// allocated is NOT_STORED; in every other mode an item that cannot be
// allocated (ErrTooLarge, ErrNoMemory) is an error, and the key's old item
// is dropped, as memcached's ms does.
func (s *Session) MetaSet(key, value []byte, o MetaSetOpts) (Status, engine.Meta, int, error) {
	s.CmdSet.Add(1)
	now := s.c.clock.Now()
	m := &s.metaStore
	*m = metaStoreMutator{o: o, value: value, noCAS: s.c.opts.DisableCAS, scratch: s.scratch}
	m.exptime = Expiry(o.Exptime, now)
	if o.Vivify {
		m.vivExptime = Expiry(o.VivifyTTL, now)
	}
	_, meta, err := s.c.eng.Update(key, m)
	s.scratch = m.scratch
	m.value = nil
	if err != nil && outOfRoom(err) {
		if o.Mode == ModeAppend || o.Mode == ModePrepend {
			return NotStored, meta, len(value), nil
		}
		s.countRefused(err)
		s.dropStale(key)
	}
	if err != nil {
		return StatusNone, meta, len(value), err
	}
	if m.casMode {
		switch m.status {
		case Stored:
			s.CasHits.Add(1)
		case Exists:
			s.CasBadval.Add(1)
		case NotFound:
			s.CasMisses.Add(1)
		}
	}
	return m.status, s.cas(meta), m.size, nil
}

// metaStoreMutator implements ms (memcached's do_store_item with the meta
// protocol's modes).
type metaStoreMutator struct {
	o          MetaSetOpts
	value      []byte
	exptime    int64
	vivExptime int64
	noCAS      bool
	scratch    []byte
	casMode    bool
	status     Status
	size       int
}

func (m *metaStoreMutator) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	o := &m.o
	mode := o.Mode
	m.casMode = o.HasCAS && (mode == ModeSet || mode == ModeReplace)
	m.size = len(m.value)
	store := func(flags uint32, exptime int64, value []byte, bits uint8) engine.Op {
		m.status = Stored
		m.size = len(value)
		next.Meta = engine.Meta{Flags: flags, Exptime: exptime, CAS: o.NewCAS, Bits: bits}
		next.Value = value
		return engine.OpStore
	}
	if !found {
		switch {
		case m.casMode:
			m.status = NotFound
		case mode == ModeSet || mode == ModeAdd:
			return store(o.Flags, m.exptime, m.value, 0)
		case (mode == ModeAppend || mode == ModePrepend) && o.Vivify:
			return store(o.Flags, m.vivExptime, m.value, 0)
		default:
			m.status = NotStored
		}
		return engine.OpNone
	}
	curCAS := cur.CAS
	if m.noCAS {
		curCAS = 0
	}
	itCAS := uint64(0)
	if o.HasCAS {
		itCAS = o.CAS
	}
	const (
		casNone = iota
		casMatch
		casStale
		casBad
	)
	res := casBad
	switch {
	case itCAS == 0:
		res = casNone
	case itCAS == curCAS:
		res = casMatch
	case o.Invalidate && itCAS < curCAS:
		res = casStale
	}
	switch {
	case mode == ModeAdd:
		m.status = NotStored
		return engine.OpNone
	case m.casMode:
		switch res {
		case casMatch:
			return store(o.Flags, m.exptime, m.value, 0)
		case casStale:
			// A late write: store it, but keep the item's TTL and mark it
			// stale, keeping a win already handed out.
			return store(o.Flags, cur.Exptime, m.value, engine.BitStale|cur.Bits&engine.BitWinSent)
		}
		m.status = Exists
		return engine.OpNone
	case mode == ModeAppend || mode == ModePrepend:
		if res != casNone && res != casMatch {
			m.status = Exists
			return engine.OpNone
		}
		buf := m.scratch[:0]
		if mode == ModeAppend {
			buf = append(append(buf, cur.Value...), m.value...)
		} else {
			buf = append(append(buf, m.value...), cur.Value...)
		}
		m.scratch = buf
		return store(cur.Flags, cur.Exptime, buf, 0)
	}
	return store(o.Flags, m.exptime, m.value, 0)
}

// MetaDeleteOpts are the flags of an md.
type MetaDeleteOpts struct {
	// HasCAS: delete only if the item's CAS is CAS (C).
	HasCAS bool
	CAS    uint64
	// Invalidate marks the item stale instead of deleting it, with a new
	// CAS, and makes its win available again (I).
	Invalidate bool
	// TTL sets the exptime to Exptime, with Invalidate or RemoveValue (T).
	TTL     bool
	Exptime int64
	// NewCAS is the CAS the item gets (E); 0 assigns one.
	NewCAS uint64
	// RemoveValue empties the value instead of deleting the item; the item
	// gets client flags Flags (x, F).
	RemoveValue bool
	Flags       uint32
}

// MetaDelete runs an md. It returns Deleted (HD), NotFound (NF) or Exists
// (EX).
func (s *Session) MetaDelete(key []byte, o MetaDeleteOpts) (Status, error) {
	d := &s.metaDel
	*d = metaDeleteMutator{o: o, noCAS: s.c.opts.DisableCAS}
	if o.TTL {
		d.exptime = Expiry(o.Exptime, s.c.clock.Now())
	}
	if _, _, err := s.c.eng.Update(key, d); err != nil {
		return StatusNone, err
	}
	switch {
	case d.status != Deleted:
		s.DeleteMisses.Add(1)
	case !o.Invalidate:
		s.DeleteHits.Add(1)
	}
	return d.status, nil
}

// metaDeleteMutator implements md.
type metaDeleteMutator struct {
	o       MetaDeleteOpts
	exptime int64
	noCAS   bool
	status  Status
}

func (m *metaDeleteMutator) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	o := &m.o
	if !found {
		m.status = NotFound
		return engine.OpNone
	}
	curCAS := cur.CAS
	if m.noCAS {
		curCAS = 0
	}
	if o.HasCAS && o.CAS != curCAS {
		m.status = Exists
		return engine.OpNone
	}
	m.status = Deleted
	switch {
	case o.RemoveValue:
		// A new, empty item; with Invalidate it is stale too.
		next.Meta = engine.Meta{Flags: o.Flags, Exptime: m.exptime, CAS: o.NewCAS}
		if o.NewCAS == 0 && !o.Invalidate {
			next.CAS = cur.CAS
		}
		if o.Invalidate {
			next.Bits = engine.BitStale
		}
		next.Value = cur.Value[:0]
		return engine.OpStore
	case o.Invalidate:
		next.Meta = cur.Meta
		if o.TTL {
			next.Exptime = m.exptime
		}
		next.Bits = (cur.Bits | engine.BitStale) &^ engine.BitWinSent
		next.CAS = o.NewCAS // 0: a fresh one
		return engine.OpMeta
	}
	return engine.OpDelete
}

// MetaArithOpts are the flags of an ma.
type MetaArithOpts struct {
	// Incr increments (mode I or +, the default); otherwise decrement.
	Incr bool
	// Delta is the amount (D).
	Delta uint64
	// CAS, when not 0, must match the item's (C).
	CAS uint64
	// Vivify creates a missing item with value Initial and exptime
	// VivifyTTL (N, J).
	Vivify    bool
	VivifyTTL int64
	Initial   uint64
	// TTL sets the exptime to TTLValue (T).
	TTL      bool
	TTLValue int64
	// Seq lists 'T' and 'N' in the order the flags were sent.
	Seq [3]byte
	// NewCAS is the item's new CAS (E); 0 assigns one.
	NewCAS uint64
}

// MetaArithResult is the outcome of an ma.
type MetaArithResult struct {
	// Status is Stored, NotFound, Exists or NonNumeric.
	Status Status
	// Created: the item was created by Vivify.
	Created bool
	// Value is the new value.
	Value uint64
	// Meta is the item's metadata after the command.
	Meta engine.Meta
	// Exptime is the item's exptime before T and N applied;
	// TTLExptime and VivifyExptime are the exptimes they set.
	Exptime, TTLExptime, VivifyExptime int64
	// Now is the time the request ran at.
	Now int64
}

// MetaArith runs an ma.
func (s *Session) MetaArith(key []byte, o MetaArithOpts) (MetaArithResult, error) {
	now := s.c.clock.Now()
	a := &s.metaArith
	*a = metaArithMutator{o: o, now: now, noCAS: s.c.opts.DisableCAS, scratch: s.scratch}
	_, meta, err := s.c.eng.Update(key, a)
	s.scratch = a.scratch
	r := a.res
	if err != nil {
		return r, err
	}
	r.Meta = s.cas(meta)
	switch {
	case r.Status == Stored && r.Created:
	case r.Status == Stored && o.Incr:
		s.IncrHits.Add(1)
	case r.Status == Stored:
		s.DecrHits.Add(1)
	case r.Status == NotFound && o.Incr:
		s.IncrMisses.Add(1)
	case r.Status == NotFound:
		s.DecrMisses.Add(1)
	}
	return r, nil
}

// metaArithMutator implements ma (memcached's do_add_delta, plus the
// vivify, TTL and CAS flags).
type metaArithMutator struct {
	o       MetaArithOpts
	now     int64
	noCAS   bool
	scratch []byte
	res     MetaArithResult
}

func (m *metaArithMutator) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	o := &m.o
	r := &m.res
	*r = MetaArithResult{Now: m.now}
	if o.TTL {
		r.TTLExptime = Expiry(o.TTLValue, m.now)
	}
	if o.Vivify {
		r.VivifyExptime = Expiry(o.VivifyTTL, m.now)
	}
	if !found {
		if !o.Vivify {
			r.Status = NotFound
			return engine.OpNone
		}
		exp := int64(0)
		for _, f := range o.Seq {
			switch f {
			case 'T':
				exp = r.TTLExptime
			case 'N':
				exp = r.VivifyExptime
			}
		}
		r.Status, r.Created, r.Value = Stored, true, o.Initial
		m.scratch = strconv.AppendUint(m.scratch[:0], o.Initial, 10)
		next.Meta = engine.Meta{Exptime: exp, CAS: o.NewCAS}
		next.Value = m.scratch
		return engine.OpStore
	}
	curCAS := cur.CAS
	if m.noCAS {
		curCAS = 0
	}
	if len(cur.Value) == 0 {
		r.Status = NonNumeric
		return engine.OpNone
	}
	if o.CAS != 0 && o.CAS != curCAS {
		r.Status = Exists
		return engine.OpNone
	}
	buf, v, _, ok := addDelta(m.scratch, cur.Value, o.Incr, o.Delta)
	if !ok {
		r.Status = NonNumeric
		return engine.OpNone
	}
	r.Status, r.Value, r.Exptime = Stored, v, cur.Exptime
	m.scratch = buf
	exp := cur.Exptime
	if o.TTL {
		exp = r.TTLExptime
	}
	next.Meta = engine.Meta{Flags: cur.Flags, Exptime: exp, CAS: o.NewCAS, Bits: cur.Bits}
	next.Value = buf
	return engine.OpStore
}

// MetaDebug looks key up for me without touching it, appending its value
// to dst, and counts cmd_meta.
func (s *Session) MetaDebug(key, dst []byte) (engine.Meta, []byte, bool, error) {
	s.CmdMeta.Add(1)
	m, dst, ok, err := s.c.eng.Get(key, dst, 0)
	return s.cas(m), dst, ok, err
}
