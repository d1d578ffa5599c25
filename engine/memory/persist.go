package memory

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// arenaFile is an open restartable arena file (config file=, the
// daemon's -e): the whole file mapped MAP_SHARED. See format.go for the
// layout and the package documentation for the crash model.
type arenaFile struct {
	path   string
	f      *os.File
	m      []byte // the whole mapping
	lay    fileLayout
	mu     sync.Mutex // serializes meta writes
	meta   fileMeta   // the newest meta written or read
	copyNo int        // which copy holds it
}

// restartInfo says how the last start went, for stats.
type restartInfo struct {
	file     string
	restored int           // items indexed by the scan
	clean    bool          // the previous run closed the file gracefully
	reason   string        // why the file was (re)initialized, or ""
	took     time.Duration // open and scan
	scan     scanStats
}

func (a *arenaFile) page(n int) []byte { return a.m[n*filePage : (n+1)*filePage] }
func (a *arenaFile) tab() []byte {
	return a.m[a.lay.segTabOff() : a.lay.segTabOff()+8*int64(a.lay.nsegs)]
}
func (a *arenaFile) segs() []byte { return a.m[a.lay.segBase():] }

// openArenaFile opens or creates path for the geometry lay and the
// must-match settings in want (segSize, nsegs, itemMax, settings). It
// returns the file and the meta found in it, or a reason (non-empty) why
// the file was initialized empty instead.
func openArenaFile(path string, lay fileLayout, want fileMeta) (*arenaFile, string, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("memory: open arena file: %w", err)
	}
	// One server per file: a second one would corrupt it. The lock goes
	// with the descriptor (at close, or when the process dies).
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, "", fmt.Errorf("memory: arena file %s is in use by another process: %w", path, err)
	}
	a := &arenaFile{path: path, f: f, lay: lay}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, "", fmt.Errorf("memory: arena file: %w", err)
	}
	reason := ""
	if fi.Size() == 0 {
		reason = "new file"
	} else if fi.Size() != lay.size() {
		reason = fmt.Sprintf("file size %d, want %d for this -m and -I", fi.Size(), lay.size())
	}
	if reason == "" {
		if err := a.mmap(); err != nil {
			f.Close()
			return nil, "", err
		}
		reason = a.check(want)
		if reason != "" {
			_ = unix.Munmap(a.m)
			a.m = nil
		}
	}
	if reason != "" {
		if err := a.initialize(want); err != nil {
			f.Close()
			return nil, "", err
		}
	}
	return a, reason, nil
}

func (a *arenaFile) mmap() error {
	// Reserve the file's blocks now: a sparse file on a full tmpfs would
	// otherwise kill the process with SIGBUS at the first store to a page
	// that cannot be allocated. A file system without fallocate keeps
	// the sparse file.
	switch err := reserveFile(int(a.f.Fd()), a.lay.size()); {
	case err == nil, errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS):
	default:
		return fmt.Errorf("memory: arena file needs %d bytes: %w", a.lay.size(), err)
	}
	m, err := unix.Mmap(int(a.f.Fd()), 0, int(a.lay.size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("memory: mmap arena file: %w", err)
	}
	a.m = m
	return nil
}

// check validates the header and metas against want; "" if reusable.
func (a *arenaFile) check(want fileMeta) string {
	if err := decodeFileHeader(a.page(0)); err != nil {
		return err.Error()
	}
	m, which, err := pickMeta(a.page(metaPage0), a.page(metaPage1))
	if err != nil {
		return err.Error()
	}
	switch {
	case m.segSize != want.segSize || m.itemMax != want.itemMax:
		return fmt.Sprintf("item size max %d (segments of %d bytes), now %d (%d)", m.itemMax, m.segSize, want.itemMax, want.segSize)
	case m.nsegs != want.nsegs:
		return fmt.Sprintf("memory limit of %d segments, now %d", m.nsegs, want.nsegs)
	case m.settings != want.settings:
		return fmt.Sprintf("settings %#x (bit 0: -C), now %#x", m.settings, want.settings)
	}
	a.meta, a.copyNo = m, which
	return ""
}

// initialize empties the file and writes a fresh header and meta.
func (a *arenaFile) initialize(want fileMeta) error {
	if err := a.f.Truncate(0); err != nil {
		return fmt.Errorf("memory: arena file: %w", err)
	}
	if err := a.f.Truncate(a.lay.size()); err != nil {
		return fmt.Errorf("memory: arena file: %w", err)
	}
	if err := a.mmap(); err != nil {
		return err
	}
	encodeFileHeader(a.page(0))
	a.meta, a.copyNo = want, 1
	a.meta.txid = 0
	return a.writeMeta(func(*fileMeta) {})
}

// writeMeta applies fn to a copy of the current meta and commits it to
// the other meta page.
func (a *arenaFile) writeMeta(fn func(*fileMeta)) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.meta
	fn(&m)
	m.txid++
	to := nextMetaCopy(a.copyNo)
	storeMeta(a.page(metaPage0+to), &m)
	a.meta, a.copyNo = m, to
	return nil
}

// close unmaps and closes the file.
func (a *arenaFile) close() error {
	err := unix.Munmap(a.m)
	a.m = nil
	return errors.Join(err, a.f.Close())
}

// recoverLocked rebuilds the index and the segment lists from the file's
// segments (called by New before the engine is shared, with amu held).
func (e *Engine) recoverLocked() scanStats {
	used := make([]int64, len(e.segs))
	st := scanArena(e.mem, e.file.tab(), e.segSize, len(e.segs), used, func(key []byte, off int64) (int64, bool) {
		h := e.hash(key)
		tag := h & tagMask
		sh := e.shardOf(h)
		size := recAt(e.mem, off).size()
		sh.bytes += size
		e.segs[off/e.segSize].live.Add(size)
		nent := makeEntry(tag, off)
		if slot, ent := sh.find(e.mem, tag, key); slot >= 0 {
			old := entryOff(ent)
			osize := recAt(e.mem, old).size()
			sh.bytes -= osize
			e.segs[old/e.segSize].live.Add(-osize)
			sh.tab[slot] = nent
			return old, true
		}
		sh.insert(nent)
		return 0, false
	})
	// Segments with live records close in generation order; the rest
	// (never used, or holding only dead records, like the spare a reclaim
	// emptied) are free: their chains are reset when they are reused.
	tab := e.file.tab()
	e.free = e.free[:0]
	e.fifo = e.fifo[:0]
	e.reserve = -1
	var closed []int32
	for id := range e.segs {
		s := &e.segs[id]
		// The file's pages of every segment may be resident.
		s.resident = true
		if s.live.Load() > 0 {
			s.used = used[id]
			s.state = segClosed
			closed = append(closed, int32(id))
		} else {
			s.used = 0
			s.state = segFree
			e.free = append(e.free, int32(id))
		}
	}
	if e.compactAt > 0 {
		// Free segments beyond a few give their pages back (punched out
		// of the file: they hold no live record, and zeros are an empty
		// chain).
		for i := len(e.free) - 1 - e.keepWarm; i >= 0; i-- {
			e.dropPages(e.free[i])
		}
	}
	e.sortFreeLocked()
	slices.SortFunc(closed, func(a, b int32) int {
		ga, gb := segGen(tab, int(a)), segGen(tab, int(b))
		switch {
		case ga < gb:
			return -1
		case ga > gb:
			return 1
		}
		return int(a - b)
	})
	e.fifo = append(e.fifo, closed...)
	e.reserve = e.popFreeLocked()
	return st
}
