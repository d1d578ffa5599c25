package memory

import (
	"cmp"
	"slices"
)

// scanStats counts what a recovery scan met in the segments' chains.
type scanStats struct {
	live     int    // live, checksummed records indexed
	replaced int    // of those, superseded by a later record of their key (stored dead)
	pending  int    // allocations never published (or abandoned)
	dead     int    // records stored dead
	torn     int    // records marked live whose CRC fails (stored dead)
	corrupt  int    // chains cut short by an impossible frame
	casHigh  uint64 // the largest CAS of a checksummed record
	genHigh  uint64 // the largest segment generation
}

// publishRecord makes the pending record at arena offset off live and,
// if hasOld, the record it replaces (at old) dead, in that order: the
// commit of a store or a move under the restartable format (see the
// package documentation). Called under the key's shard lock.
func publishRecord(mem []byte, off, old int64, hasOld bool) {
	recAt(mem, off).setState(stLive)
	if hasOld {
		recAt(mem, old).setState(stDead)
	}
}

// scanArena rebuilds an index from a restartable arena image: mem holds
// nsegs segments of segSize bytes (segment i at i×segSize) and tab their
// generations (the file's segment table). It walks every segment's chain,
// segments in generation order (ties by number), records in chain order,
// and calls place for each record that is live and whose CRC checks.
// place indexes the key at the record's offset and returns the offset of
// the record of the same key it replaced, if any; scanArena stores that
// one dead, so the later record wins now and after the next crash too.
// used[i] is set to the end of segment i's chain (its bump offset).
//
// The scan reads mem through the same views the engine uses (rec), so it
// needs no mapping: a test can hand it a copy of an image taken at any
// point of a write.
func scanArena(mem, tab []byte, segSize int64, nsegs int, used []int64, place func(key []byte, off int64) (int64, bool)) scanStats {
	var st scanStats
	order := make([]int, nsegs)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(segGen(tab, a), segGen(tab, b)), cmp.Compare(a, b))
	})
	for _, id := range order {
		st.genHigh = max(st.genHigh, segGen(tab, id))
		base := int64(id) * segSize
		seg := mem[base : base+segSize : base+segSize]
		p := int64(0)
		for segSize-p >= hdrMin {
			r := rec{b: seg[p:]}
			w := r.info()
			if w == 0 {
				break // the chain's end
			}
			f := infoForm(w)
			h := int64(formHdr(f))
			if infoKlen(w) == 0 || h > segSize-p {
				st.corrupt++
				break
			}
			size := r.size()
			if size > segSize-p {
				st.corrupt++
				break
			}
			// Every record a file's engine writes has a CRC; one
			// without is damage.
			ok := r.hasCRC() && r.valid(int(size))
			if ok {
				st.casHigh = max(st.casHigh, r.cas())
			}
			switch s := r.state(); {
			case s == stLive && ok:
				st.live++
				if old, had := place(r.key(), base+p); had {
					recAt(mem, old).setState(stDead)
					st.replaced++
				}
			case s == stLive:
				// A record is made live only once complete, so this is
				// damage, not a crash: never serve it.
				r.setState(stDead)
				st.torn++
			case s == stDead:
				st.dead++
			default:
				st.pending++
			}
			p += size
		}
		if used != nil {
			used[id] = p
		}
	}
	return st
}
