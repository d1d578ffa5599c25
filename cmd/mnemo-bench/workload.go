package main

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
)

// keyspace names the keys key 0 .. n-1 as fixed-width strings: a prefix
// and the zero-padded index, size bytes in all.
type keyspace struct {
	n      int
	size   int
	prefix string
}

func newKeyspace(n, size int, prefix string) (*keyspace, error) {
	if n < 1 {
		return nil, errors.New("-keys must be at least 1")
	}
	digits := len(strconv.Itoa(n - 1))
	if size > 250 {
		return nil, fmt.Errorf("-key-size %d exceeds memcached's 250", size)
	}
	if len(prefix)+digits > size {
		return nil, fmt.Errorf("-key-size %d cannot hold prefix %q and %d digits for %d keys", size, prefix, digits, n)
	}
	return &keyspace{n: n, size: size, prefix: prefix}, nil
}

// appendKey appends the name of key i.
func (ks *keyspace) appendKey(dst []byte, i int) []byte {
	dst = append(dst, ks.prefix...)
	var num [20]byte
	d := strconv.AppendUint(num[:0], uint64(i), 10)
	for pad := ks.size - len(ks.prefix) - len(d); pad > 0; pad-- {
		dst = append(dst, '0')
	}
	return append(dst, d...)
}

// parseKey returns the index of a key named by appendKey, or -1.
func (ks *keyspace) parseKey(key []byte) int {
	if len(key) != ks.size || string(key[:len(ks.prefix)]) != ks.prefix {
		return -1
	}
	n := 0
	for _, c := range key[len(ks.prefix):] {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
		if n >= ks.n {
			return -1
		}
	}
	return n
}

// Values. Every value the generator writes names its key and a version:
//
//	<key> '#' <version, decimal> '#' <filler ...>
//
// padded to the value size with filler bytes that are a function of the
// key index, the version and the position, so that a value returned for
// the wrong key, a truncated value, a value spliced from two writes or a
// corrupted byte is detected.
const minValueOverhead = 2 + 20 // two '#' and a uint64 version

// valueCodec builds and checks values of one size for one keyspace.
type valueCodec struct {
	ks   *keyspace
	size int
}

func newValueCodec(ks *keyspace, size int) (*valueCodec, error) {
	if size < ks.size+minValueOverhead {
		return nil, fmt.Errorf("-value-size %d is too small to embed a %d-byte key and a version (need %d; or turn checking off with -check=false)", size, ks.size, ks.size+minValueOverhead)
	}
	return &valueCodec{ks: ks, size: size}, nil
}

func filler(key int, ver uint64, j int) byte {
	return 'a' + byte((uint64(key)*7+ver%26*13+uint64(j))%26)
}

// appendValue appends the value of version ver of key i.
func (vc *valueCodec) appendValue(dst []byte, i int, ver uint64) []byte {
	start := len(dst)
	dst = vc.ks.appendKey(dst, i)
	dst = append(dst, '#')
	dst = strconv.AppendUint(dst, uint64(ver), 10)
	dst = append(dst, '#')
	for j := len(dst) - start; j < vc.size; j++ {
		dst = append(dst, filler(i, ver, j))
	}
	return dst
}

// Value check failures.
var (
	errValueSize    = errors.New("value has the wrong length")
	errValueKey     = errors.New("value belongs to another key")
	errValueFormat  = errors.New("value is not one the generator writes")
	errValueFiller  = errors.New("value is corrupted")
	errValueVersion = errors.New("value has a version never written for its key")
)

// check verifies that v is a value the generator wrote for key i, with a
// version no later than maxVer, and returns that version.
func (vc *valueCodec) check(v []byte, i int, maxVer uint64) (uint64, error) {
	if len(v) != vc.size {
		return 0, errValueSize
	}
	var kb [256]byte
	k := vc.ks.appendKey(kb[:0], i)
	if string(v[:len(k)]) != string(k) {
		return 0, errValueKey
	}
	p := len(k)
	if v[p] != '#' {
		return 0, errValueFormat
	}
	p++
	var ver uint64
	digits := 0
	for p < len(v) && v[p] >= '0' && v[p] <= '9' {
		ver = ver*10 + uint64(v[p]-'0')
		p++
		digits++
		if digits > 19 {
			return 0, errValueFormat
		}
	}
	if digits == 0 || p >= len(v) || v[p] != '#' {
		return 0, errValueFormat
	}
	p++
	for j := p; j < len(v); j++ {
		if v[j] != filler(i, ver, j) {
			return 0, errValueFiller
		}
	}
	if ver > maxVer {
		return 0, errValueVersion
	}
	return ver, nil
}

// versions hands out, per key, the versions written: base plus a per-key
// count. A write takes the next version before it is sent, so a value read
// back can never carry a version above the key's latest. The base is the
// run's start in microseconds, so values left in the server by earlier
// runs (which are values the generator writes for the key) carry smaller
// versions and pass, while a version never handed out does not.
type versions struct {
	base uint64
	n    []atomic.Uint32
}

func newVersions(keys int, base uint64) *versions {
	return &versions{base: base, n: make([]atomic.Uint32, keys)}
}

func (vs *versions) next(i int) uint64 { return vs.base + uint64(vs.n[i].Add(1)) }
func (vs *versions) max(i int) uint64  { return vs.base + uint64(vs.n[i].Load()) }

// keyChooser picks key indexes.
type keyChooser interface {
	next(r *rand.Rand) int
}

type uniform struct{ n int }

func (u uniform) next(r *rand.Rand) int { return r.IntN(u.n) }

// zipf draws ranks 0..n-1 with P(rank k) proportional to 1/(k+1)^theta,
// for 0 < theta < 1, by the method of Gray et al., "Quickly Generating
// Billion-Record Synthetic Databases" (SIGMOD 1994), as YCSB does. Rank 0
// is the most popular key. For theta > 1 it uses math/rand's Zipf.
type zipf struct {
	n                   int
	theta, alpha, eta   float64
	zetan, halfPowTheta float64
}

func newZipf(n int, theta float64) (keyChooser, error) {
	switch {
	case theta <= 0 || math.IsNaN(theta) || math.IsInf(theta, 0):
		return nil, fmt.Errorf("-zipf %v: the parameter must be positive", theta)
	case theta == 1:
		return nil, errors.New("-zipf 1 is not supported: use 0.99 or 1.01")
	case theta > 1:
		return &zipfLarge{n: n, s: theta}, nil
	}
	zetan := zeta(n, theta)
	zeta2 := zeta(2, theta)
	z := &zipf{
		n:            n,
		theta:        theta,
		alpha:        1 / (1 - theta),
		zetan:        zetan,
		halfPowTheta: 1 + math.Pow(0.5, theta),
	}
	z.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta2/zetan)
	return z, nil
}

func zeta(n int, theta float64) float64 {
	s := 0.0
	for i := 1; i <= n; i++ {
		s += 1 / math.Pow(float64(i), theta)
	}
	return s
}

func (z *zipf) next(r *rand.Rand) int {
	u := r.Float64()
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < z.halfPowTheta && z.n > 1 {
		return 1
	}
	k := int(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(max(k, 0), z.n-1)
}

// zipfLarge is Zipf with theta > 1 (math/rand/v2's generator, one per
// source, made lazily since it keeps state tied to its *rand.Rand).
type zipfLarge struct {
	n int
	s float64
}

func (z *zipfLarge) next(r *rand.Rand) int {
	// rand.Zipf is cheap to build but binds a source; callers keep one
	// chooser per connection (see newChooser), so build it per call only
	// through perConn.
	return int(rand.NewZipf(r, z.s, 1, uint64(z.n-1)).Uint64())
}

// perConn returns a chooser for one connection's source.
func perConn(c keyChooser, r *rand.Rand) func() int {
	if zl, ok := c.(*zipfLarge); ok {
		g := rand.NewZipf(r, zl.s, 1, uint64(zl.n-1))
		return func() int { return int(g.Uint64()) }
	}
	return func() int { return c.next(r) }
}
