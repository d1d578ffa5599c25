// Package engine owns mnemo's storage-engine interface: the Engine a cache
// server runs on, the errors engines return, and the registry through which
// engines are chosen by name at start.
//
// The interface follows memcached's engine interface: an engine is created
// and initialized with a configuration string by Open (memcached's
// create_instance and initialize) and destroyed by Close. The server core
// never knows which engine it runs.
//
// # Primitives
//
// The core interface is small: Get (with or without touching recency),
// Update (an atomic per-key read-modify-write), Delete, Flush (with a time),
// Iterate, Stats and Close. Every cache command (add, replace, cas, append,
// incr, touch, gat, the meta commands) is built once, above the engines, on
// top of these primitives; see package cache.
//
// # Blocking
//
// Engine calls may block (a persistent engine reads from disk on a miss).
// The server runs one goroutine per connection, so a blocking call stalls
// only its own connection. An engine should not hold a lock that other
// connections need while it waits on I/O; where it must (the persistent
// engine reads a key under its stripe lock after three reads in a row
// lost a race with writes to the same stripe, and a sync-durability write
// waits for its group commit after releasing it), it says so and bounds
// the wait.
//
// # Time
//
// All times are absolute unix seconds read from Env.Clock. An Exptime of 0
// means the item never expires. An item whose Exptime is not 0 and not
// after the clock's now is expired: engines treat it as absent.
package engine

import (
	"errors"
	"log/slog"
	"time"
)

// KeyMax is the longest key, in bytes, that engines accept (memcached's
// KEY_MAX_LENGTH).
const KeyMax = 250

// Errors returned by engines. Callers test them with errors.Is.
var (
	// ErrTooLarge: the item is larger than the engine's item size limit.
	ErrTooLarge = errors.New("engine: object too large for cache")
	// ErrNoMemory: the item does not fit and the engine may not evict
	// (memcached's -M), or eviction could not free enough room.
	ErrNoMemory = errors.New("engine: out of memory storing object")
	// ErrBadKey: the key is empty or longer than KeyMax.
	ErrBadKey = errors.New("engine: invalid key")
	// ErrClosed: the engine has been closed.
	ErrClosed = errors.New("engine: closed")
	// ErrUnknownEngine: Open was given a name no engine registered.
	ErrUnknownEngine = errors.New("engine: unknown engine")
	// ErrBadConfig: the configuration string is malformed or names an
	// unknown key; the wrapping error says which.
	ErrBadConfig = errors.New("engine: bad configuration")
)

// Item bits, stored by the engine with an item and set or cleared by the
// cache semantics above it (package cache). The engine itself only sets
// BitFetched, on a Get with GetTouch.
const (
	// BitFetched: the item was read at least once since it was stored.
	BitFetched uint8 = 1 << iota
	// BitStale: the item was invalidated (meta protocol I flag) and is
	// served as stale until replaced.
	BitStale
	// BitWinSent: a client has already been handed the "win" token to
	// recache this item (meta protocol W/Z flags).
	BitWinSent
)

// Meta is the metadata of an item.
type Meta struct {
	// Flags are the client's opaque 32-bit flags.
	Flags uint32
	// Exptime is the absolute expiry time in unix seconds; 0 means never.
	Exptime int64
	// CAS is the item's unique 64-bit compare-and-swap value, never 0 for a
	// stored item.
	CAS uint64
	// Atime is the unix time of the item's last store or touching read.
	Atime int64
	// Bits holds the Bit* flags above.
	Bits uint8
}

// Item is an item's metadata and value.
type Item struct {
	Meta
	Value []byte
}

// GetFlags modify a Get.
type GetFlags uint8

const (
	// GetTouch counts the read as an access: it bumps the item's recency
	// for eviction, sets Atime to now and sets BitFetched. The Meta that
	// Get returns is the one from before the access.
	GetTouch GetFlags = 1 << iota
	// GetNoValue skips copying the value; Get returns dst unchanged.
	GetNoValue
)

// Op is what a Mutator decides to do with a key.
type Op uint8

const (
	// OpNone leaves the key as it is.
	OpNone Op = iota
	// OpStore stores next (value and metadata) as the key's item. The engine
	// assigns a fresh CAS unless next.CAS is not 0.
	OpStore
	// OpMeta keeps the current value and replaces the metadata with
	// next.Meta (touch, stale marks). next.Value is ignored. The CAS is
	// next.CAS (set it to cur.CAS to keep it) unless that is 0, in which
	// case a fresh CAS is assigned.
	OpMeta
	// OpDelete removes the key.
	OpDelete
)

// A Mutator decides, atomically with respect to every other operation on
// the same key, what happens to a key given its current item.
//
// Mutate gets the current item in cur (found is false when the key is
// absent, expired or flushed; cur is then zero) and fills next when it
// returns OpStore or OpMeta. cur.Value aliases engine memory: it is valid
// only during the call and must not be written to or retained. next.Value
// may alias memory the Mutator owns; it must stay unchanged until Update
// returns, and the engine copies it before then. Mutate runs with engine
// locks held: it must not block and must not call the engine.
//
// An engine may call Mutate more than once for one Update and applies only
// the last call's decision: the memory engine retries when a concurrent
// writer won; the persistent engine first calls it with found == false
// when memory has no item, and then, unless the Mutator is blind (see
// BlindMutator), drops that decision, reads the disk and calls it again
// with the disk item. So every call must start from the Mutator's inputs
// alone, overwriting any result an earlier call left (a pure function of
// cur, found and the inputs), and the caller reads results only after
// Update returns. For OpMeta on a key that is not found the engine does
// nothing (OpNone).
type Mutator interface {
	Mutate(cur *Item, found bool, next *Item) Op
}

// A BlindMutator is a Mutator that may declare, for one Update, that its
// decision does not depend on the current item at all (a plain set): it
// decides the same whether the key is found or not. An engine with a slow
// tier may then skip loading the current item.
type BlindMutator interface {
	Mutator
	Blind() bool
}

// IsBlind reports whether m is a BlindMutator that is blind now.
func IsBlind(m Mutator) bool {
	b, ok := m.(BlindMutator)
	return ok && b.Blind()
}

// Engine is a storage engine. All methods are safe for concurrent use.
type Engine interface {
	// Get looks up key. When found it appends the value to dst (unless
	// flags has GetNoValue) and returns the extended slice and the item's
	// metadata. A missing, expired or flushed key returns found == false.
	Get(key, dst []byte, flags GetFlags) (meta Meta, value []byte, found bool, err error)

	// View looks up key as Get does and, when it is found, calls fn
	// once, before View returns, with the item's metadata (as Get
	// returns it) and its value, or a nil value with GetNoValue. The
	// value aliases engine memory: it is valid only during the call
	// and must not be written to or retained. fn may run with engine
	// locks held: it must not block and must not call the engine. View
	// lets a caller that frames the value (a protocol reply with the
	// value's length in a header) write the frame first and copy the
	// value once, straight behind it.
	View(key []byte, flags GetFlags, fn func(m Meta, value []byte)) (meta Meta, found bool, err error)

	// Update runs m against the key's current item and applies its
	// decision atomically. It returns the decision and, for OpStore and
	// OpMeta, the metadata now stored (with the CAS that was assigned).
	// Storing may fail with ErrTooLarge or ErrNoMemory; the key is then
	// left as it was.
	Update(key []byte, m Mutator) (op Op, meta Meta, err error)

	// Delete removes key. It reports whether a live item was removed.
	Delete(key []byte) (bool, error)

	// Flush invalidates items. With at <= now every item stored before the
	// call is invalid from now on (items stored after the call are not,
	// even within the same second). With at > now, every item whose Atime
	// is before at becomes invalid once the clock reaches at. A later Flush
	// replaces an earlier pending one.
	Flush(at int64) error

	// Iterate calls fn for every live item, in no particular order, until
	// fn returns false. The item passed to fn (value included) is valid
	// only during the call. Items stored or deleted while Iterate runs may
	// or may not be seen; none is seen twice. fn must not call the engine.
	//
	// fn is called with no lock held that other calls wait for (engines
	// copy an item, or a bounded batch of items, out under their locks and
	// release them before calling fn), so fn may block, as a metadump
	// writing to a slow client does: that delays only the iteration, and
	// Close still proceeds (Iterate then returns ErrClosed).
	Iterate(fn func(key []byte, it *Item) bool) error

	// Stats reports the engine's general statistics with memcached's names
	// where one exists (curr_items, bytes, limit_maxbytes, evictions,
	// total_items, expired_unfetched, evicted_unfetched, reclaimed, ...).
	// get_expired and get_flushed count the lookups (Get, Update, Delete)
	// that met an expired or a flushed item (memcached's do_item_get
	// counts them; a Get only reports a miss), flushed first when both.
	Stats(add func(name, value string))

	// Close releases the engine (memcached's destroy). Calls after Close
	// return ErrClosed.
	Close() error
}

// GroupStater is implemented by engines that answer memcached's stats
// groups such as "items", "slabs" and "sizes". GroupStats reports whether
// the engine knows the group.
//
// The per-class command counters of memcached's "stats slabs" (get_hits,
// cmd_set, delete_hits, incr_hits, decr_hits, cas_hits, cas_badval,
// touch_hits) and "stats items" (hits_to_hot, hits_to_warm, hits_to_cold,
// hits_to_temp) are counted above the engine, where the commands run: an
// engine leaves them out, and shows one slab class, 1, to which the
// server attributes them (after N:free_chunks_end and
// items:N:direct_reclaims).
type GroupStater interface {
	GroupStats(group string, add func(name, value string)) bool
}

// StatsResetter is implemented by engines whose counters "stats reset"
// clears.
type StatsResetter interface {
	ResetStats()
}

// CASCounter is implemented by engines that hand out CAS values from one
// counter: LastCAS is the last value handed out, so every item stored
// later has a greater CAS (unless a client sets its own, as the meta
// protocol's E flag does). "stats sizes_enable" uses it to count only the
// items stored after it, as memcached does.
type CASCounter interface {
	LastCAS() uint64
}

// EvictionNotifier is implemented by engines that can tell who evicts
// (memcached's "watch evictions"). The engine calls fn for each item it
// evicts to make room (not for expired or flushed items it reclaims),
// with the item's key, metadata and value length, while it holds its own
// locks: fn must be quick, must not block and must not call the engine.
// The key is only valid during the call. A nil fn stops the calls.
type EvictionNotifier interface {
	NotifyEvictions(fn func(key []byte, m *Meta, vlen int))
}

// MemoryLimiter is implemented by engines whose memory budget can change at
// run time (memcached's cache_memlimit command).
type MemoryLimiter interface {
	SetMemoryLimit(bytes int64) error
}

// Clock tells the time in unix seconds. Servers pass a coarse clock that
// ticks once a second; tests pass one they move by hand.
type Clock interface {
	Now() int64
}

// SystemClock reads the system clock.
type SystemClock struct{}

// Now returns the current unix time in seconds.
func (SystemClock) Now() int64 { return time.Now().Unix() }

// Env is what the server hands every engine it opens: the settings from
// memcached's command line that engines must honour, and services.
// The zero value of each field has the documented meaning.
type Env struct {
	// MemoryLimit is the memory budget for items in bytes (memcached -m).
	// 0 means 64 MiB.
	MemoryLimit int64
	// ItemSizeMax is the largest item in bytes (memcached -I). 0 means
	// 1 MiB.
	ItemSizeMax int
	// NoEvict makes a store that does not fit fail with ErrNoMemory instead
	// of evicting (memcached -M).
	NoEvict bool
	// NoCAS tells the engine that the server hides CAS values (memcached
	// -C), so that ItemSize leaves out the 8 bytes of a CAS, as memcached
	// does. The engine still assigns CAS values.
	NoCAS bool
	// Clock tells the time. nil means SystemClock.
	Clock Clock
	// Logger receives the engine's log records. nil means slog.Default().
	Logger *slog.Logger
}

// Defaults of Env's zero values.
const (
	DefaultMemoryLimit = 64 << 20
	DefaultItemSizeMax = 1 << 20
)

// WithDefaults returns env with its zero fields replaced by their defaults.
func (env Env) WithDefaults() Env {
	if env.MemoryLimit == 0 {
		env.MemoryLimit = DefaultMemoryLimit
	}
	if env.ItemSizeMax == 0 {
		env.ItemSizeMax = DefaultItemSizeMax
	}
	if env.Clock == nil {
		env.Clock = SystemClock{}
	}
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	return env
}

// Expired reports whether an item with metadata m is expired at now.
func (m *Meta) Expired(now int64) bool {
	return m.Exptime != 0 && m.Exptime <= now
}

// ItemSize is the size memcached counts for an item against its item size
// limit (-I, Env.ItemSizeMax): its 48-byte header, the key and a NUL, the
// value and its "\r\n", 4 bytes for non-zero client flags, and 8 for the
// CAS unless noCAS (-C). Engines refuse an item whose ItemSize exceeds
// ItemSizeMax with ErrTooLarge, so that an item fits exactly when it would
// fit in memcached; the protocol decoders apply the same rule to a
// request's declared length before the value arrives.
func ItemSize(nkey, nvalue int, flags uint32, noCAS bool) int {
	size := 48 + nkey + 1 + nvalue + 2
	if flags != 0 {
		size += 4
	}
	if !noCAS {
		size += 8
	}
	return size
}

// ValidKey reports whether an engine accepts key.
func ValidKey(key []byte) bool {
	return len(key) > 0 && len(key) <= KeyMax
}
