package server

import "math/bits"

// Grown read buffers
//
// A request larger than the read buffer (a large value being set) is
// read into a buffer grown to fit it. Making one for each such request
// cost a large allocation, zeroed, and garbage for the collector on
// every large set (at 256 KiB values, zeroing the new buffer alone took
// as long as copying the value into the cache). So grown buffers come
// from pools by size class and go back when the request is consumed: a
// size is rounded up to a multiple of 4 KiB up to 32 KiB, and above to an
// eighth of its power of two (at most 12.5% more than needed), up to
// maxGrowPooled (64 MiB); the pools give their buffers
// up to the garbage collector over two collections, like any sync.Pool.
// The ReadBufMemLimit budget counts a buffer while a connection holds it.

const (
	// minGrowShift: up to 1<<minGrowShift bytes (32 KiB) the classes are
	// the multiples of 4 KiB; above, eighths of each power of two.
	minGrowShift = 15
	// maxGrowPooled: larger buffers are made and dropped as before.
	maxGrowPooled = 1 << 26
	// classesPerDoubling size classes between two powers of two.
	classesPerDoubling = 8
	// growClasses: 8 classes of multiples of 4 KiB, then 8 for each
	// doubling up to maxGrowPooled.
	growClasses = 8 + (26-minGrowShift)*classesPerDoubling
)

// growSize returns the size of the grown buffer for want bytes and its
// class (-1: not pooled).
func growSize(want int) (size, class int) {
	switch {
	case want > maxGrowPooled:
		return (want + 4095) &^ 4095, -1
	case want <= 1<<minGrowShift:
		size = max((want+4095)&^4095, 4096)
		return size, size>>12 - 1
	}
	// want is in (2^k, 2^(k+1)]: steps of 2^k/8.
	k := bits.Len(uint(want-1)) - 1
	step := 1 << (k - 3)
	j := (want - (1 << k) + step - 1) / step // 1..8
	return 1<<k + j*step, 8 + (k-minGrowShift)*classesPerDoubling + j - 1
}

// getGrown returns a buffer of size bytes (of undefined content) and its
// pool box, nil when size is not a pooled class.
func (s *Server) getGrown(size, class int) ([]byte, *[]byte) {
	if class < 0 {
		return make([]byte, size), nil
	}
	p, _ := s.gpool[class].Get().(*[]byte)
	if p == nil {
		b := make([]byte, size)
		p = &b
	}
	return *p, p
}

// putGrown gives a grown buffer back to its pool (p is its box; nil: the
// buffer was not pooled and goes to the garbage collector).
func (s *Server) putGrown(b []byte, p *[]byte) {
	if p == nil {
		return
	}
	if size, class := growSize(cap(b)); class >= 0 && size == cap(b) {
		*p = b[:cap(b)]
		s.gpool[class].Put(p)
	}
}
