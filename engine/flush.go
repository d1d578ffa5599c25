package engine

// FlushMark is flush_all as a time mark instead of a scan, shared by the
// engines (memcached's settings.oldest_live and oldest_cas). Items are
// flushed when they were last stored or touched before PastAt or got a CAS
// below PastCAS, or, once the clock reaches PendAt, when they were last
// stored or touched before PendAt. Engines replace their mark whole on
// each Flush (Next) and read it with one atomic load.
type FlushMark struct {
	// PastAt is the time of the latest flush in force; 0 if none.
	PastAt int64
	// PastCAS is the CAS value an immediate flush took: items stored
	// before it, even in the same second, have smaller ones.
	PastCAS uint64
	// PendAt is the time of a delayed flush not yet in force; 0 if none.
	PendAt int64
}

// Flushed reports whether an item last stored or touched at atime, with
// CAS cas, is flushed at now. A nil mark flushes nothing.
func (f *FlushMark) Flushed(now, atime int64, cas uint64) bool {
	if f == nil {
		return false
	}
	if f.PastAt != 0 && (atime < f.PastAt || (f.PastCAS != 0 && cas < f.PastCAS)) {
		return true
	}
	return f.PendAt != 0 && f.PendAt <= now && atime < f.PendAt
}

// Next returns the mark after Engine.Flush(at) at time now (f may be nil).
// An immediate flush (at <= now) takes a CAS value from takeCAS, like
// memcached's oldest_cas = get_cas_id(). A delayed flush whose time has
// passed stays in force when a later one is scheduled, so a later flush
// never revives items an earlier one invalidated.
func (f *FlushMark) Next(now, at int64, takeCAS func() uint64) FlushMark {
	var nm FlushMark
	if f != nil {
		nm = *f
		if nm.PendAt != 0 && nm.PendAt <= now {
			nm.PastAt = max(nm.PastAt, nm.PendAt)
		}
		nm.PendAt = 0
	}
	if at <= now {
		nm.PastAt = now
		nm.PastCAS = takeCAS()
	} else {
		nm.PendAt = at
	}
	return nm
}
