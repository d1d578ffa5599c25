package memcache

import (
	"strconv"
	"sync/atomic"

	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/internal/number"
	"github.com/mnemo-cache/mnemo/protocol/text"
	"github.com/mnemo-cache/mnemo/server"
)

// The lru_crawler command: memcached's key dumps (metadump, and mgdump of
// later memcached) and its crawler controls (crawl, enable, disable,
// sleep, tocrawl).
//
// # Dumps
//
// memcached streams a dump from its crawler thread, which takes the
// client connection over. mnemo streams it from the connection's own
// goroutine, over the engine's Iterate: each item is formatted into the
// connection's reply buffer, which is written out whenever it passes
// flushThreshold. Iterate calls fn with no engine lock held (see
// engine.Engine.Iterate), so a client that reads slowly holds up only its
// own dump, and reading more requests from it waits until the dump is
// written; requests pipelined after the dump are answered after its END,
// as memcached answers them. Several connections may dump at once (each
// dump costs only its own connection's buffer); memcached's single
// crawler answers BUSY to a second one.
//
// mnemo's engines have one slab class, 1 (as "stats items" and "stats
// slabs" show): every item is listed with cls=1, a class list that holds
// 1 (or "all", or "hash") dumps every item, and one without it dumps
// none.
//
// # Crawler controls
//
// mnemo has no LRU crawler thread. Expired and flushed items are
// reclaimed by the engines' own background sweeps (the memory engine's
// paced index sweep, the persistent engine's paced disk sweep), which run
// all the time and are not started, paced or stopped by these commands:
//
//   - "crawl <classes>" checks its classes as memcached does and answers
//     OK: the reclaim it asks for is already running.
//   - "disable" and "enable" turn the on-demand crawler commands (crawl,
//     metadump, mgdump) off and on, with memcached's replies ("enable"
//     when enabled is an error, as memcached's failed thread start).
//     -o no_lru_crawler starts with them off, as memcached starts
//     without its crawler thread.
//   - "sleep" and "tocrawl" check their numbers as memcached does,
//     answer OK and show in "stats settings"; mnemo's sweeps have their
//     own pacing and ignore them.

// maxCrawlerSleep is memcached's bound on "lru_crawler sleep" (one
// second, in microseconds).
const maxCrawlerSleep = 1000000

// crawlerState is one Handler's lru_crawler state.
type crawlerState struct {
	// disabled is set by "lru_crawler disable" and at start by
	// Config.CrawlerDisabled (-o no_lru_crawler).
	disabled atomic.Bool
}

// Replies of lru_crawler, memcached's words.
var (
	crawlerDisabled   = []byte("CLIENT_ERROR lru crawler disabled\r\n")
	crawlerBadClass   = []byte("BADCLASS invalid class id\r\n")
	crawlerNotStarted = []byte("NOTSTARTED no items to crawl\r\n")
	crawlerError      = []byte("ERROR an unknown error happened\r\n")
	crawlerStartFail  = []byte("ERROR failed to start lru crawler thread\r\n")
	crawlerSleepLimit = []byte("CLIENT_ERROR sleep must be one second or less\r\n")
	metadumpNotAllow  = []byte("ERROR metadump not allowed\r\n")
	mgdumpNotAllowed  = []byte("ERROR key dump not allowed\r\n")
	metadumpEnd       = []byte("END\r\n")
	mgdumpEnd         = []byte("EN\r\n")
)

// lruCrawler answers "lru_crawler <subcommand> [<argument>]" as memcached
// 1.6.18's process_lru_crawler_command, plus "mgdump" of later releases.
// A subcommand that takes an argument must have exactly one, the others
// none; anything else (noreply included) is ERROR.
func (s *session) lruCrawler(c *server.Conn, r *text.Request) error {
	cr := &s.h.crawler
	switch {
	case len(r.Args) == 1 && string(r.Args[0]) == "enable":
		if cr.disabled.CompareAndSwap(true, false) {
			s.h.st.tune("lru_crawler", "yes")
			c.Out = append(c.Out, text.OK...)
		} else {
			c.Out = append(c.Out, crawlerStartFail...)
		}
		return nil
	case len(r.Args) == 1 && string(r.Args[0]) == "disable":
		cr.disabled.Store(true)
		s.h.st.tune("lru_crawler", "no")
		c.Out = append(c.Out, text.OK...)
		return nil
	case len(r.Args) != 2:
		c.Out = append(c.Out, text.ErrorReply...)
		return nil
	}
	arg := r.Args[1]
	switch string(r.Args[0]) {
	case "crawl":
		if cr.disabled.Load() {
			c.Out = append(c.Out, crawlerDisabled...)
			return nil
		}
		switch _, res := parseClasses(arg); res {
		case classesHash:
			// memcached walks the hash table only for a dump.
			c.Out = append(c.Out, crawlerError...)
		case classesOK:
			c.Out = append(c.Out, text.OK...)
		default:
			c.Out = append(c.Out, res.reply()...)
		}
	case "metadump", "mgdump":
		mg := string(r.Args[0]) == "mgdump"
		switch {
		case cr.disabled.Load():
			c.Out = append(c.Out, crawlerDisabled...)
			return nil
		case s.h.cfg.DisableDumping && mg:
			c.Out = append(c.Out, mgdumpNotAllowed...)
			return nil
		case s.h.cfg.DisableDumping:
			c.Out = append(c.Out, metadumpNotAllow...)
			return nil
		}
		mine, res := parseClasses(arg)
		if res != classesOK && res != classesHash {
			c.Out = append(c.Out, res.reply()...)
			return nil
		}
		return s.dump(c, mg, mine)
	case "tocrawl":
		n, ok := number.ParseUint32(arg)
		if !ok {
			c.Out = text.ErrBadFormat.AppendReply(c.Out)
			return nil
		}
		s.h.st.tune("lru_crawler_tocrawl", strconv.FormatUint(uint64(n), 10))
		c.Out = append(c.Out, text.OK...)
	case "sleep":
		n, ok := number.ParseUint32(arg)
		switch {
		case !ok:
			c.Out = text.ErrBadFormat.AppendReply(c.Out)
		case n > maxCrawlerSleep:
			c.Out = append(c.Out, crawlerSleepLimit...)
		default:
			s.h.st.tune("lru_crawler_sleep", strconv.FormatUint(uint64(n), 10))
			c.Out = append(c.Out, text.OK...)
		}
	default:
		c.Out = append(c.Out, text.ErrorReply...)
	}
	return nil
}

// classesResult is what parseClasses made of a class list.
type classesResult uint8

const (
	classesOK         classesResult = iota // "all" or a list of valid ids
	classesHash                            // "hash": walk the hash table
	classesBad                             // an id that is not 1 to 63
	classesNotStarted                      // no id at all (only commas)
)

func (r classesResult) reply() []byte {
	if r == classesBad {
		return crawlerBadClass
	}
	return crawlerNotStarted
}

// parseClasses reads the class argument of lru_crawler crawl, metadump
// and mgdump as memcached's lru_crawler_crawl: "all", "hash", or ids
// separated by commas (empty ones skipped, as strtok_r does), each read
// with safe_strtoul and between 1 and 63 (MAX_NUMBER_OF_SLAB_CLASSES-1).
// mine reports whether the classes include mnemo's one class, 1.
func parseClasses(arg []byte) (mine bool, res classesResult) {
	switch string(arg) {
	case "all":
		return true, classesOK
	case "hash":
		return true, classesHash
	}
	ids := 0
	for len(arg) > 0 {
		tok := arg
		rest := []byte(nil)
		for i, b := range arg {
			if b == ',' {
				tok, rest = arg[:i], arg[i+1:]
				break
			}
		}
		arg = rest
		if len(tok) == 0 {
			continue
		}
		id, ok := number.ParseUint32(tok)
		if !ok || id < 1 || id >= maxSlabClasses {
			return false, classesBad
		}
		ids++
		mine = mine || id == 1
	}
	if ids == 0 {
		return false, classesNotStarted
	}
	return mine, classesOK
}

// dump streams every live item as a metadump line (or with mg, an
// mgdump line) and the end line; with all false it sends only the end
// line. An engine that fails in the middle (it was closed, its disk
// store failed) ends the dump without its end line: the lines sent so
// far are followed by "SERVER_ERROR <the engine's error>" and the
// connection is closed, so that the client sees that the dump is
// incomplete, and why (memcached's dumps have no such failure).
func (s *session) dump(c *server.Conn, mg, all bool) error {
	if all {
		noCAS := s.cs.Cache().Options().DisableCAS
		var werr error
		err := s.cs.Cache().Engine().Iterate(func(key []byte, it *engine.Item) bool {
			if mg {
				c.Out = appendMgdumpLine(c.Out, key)
			} else {
				c.Out = appendMetadumpLine(c.Out, key, it, noCAS)
			}
			// The write happens here, with no engine lock held.
			werr = flushIfFull(c)
			return werr == nil
		})
		if werr != nil {
			return werr
		}
		if err != nil {
			s.h.cfg.Logger.Error("memcache: lru_crawler dump ended early", "conn", c.ID(), "err", err)
			c.Out = appendServerError(c.Out, err)
			return server.ErrClose
		}
	}
	if mg {
		c.Out = append(c.Out, mgdumpEnd...)
	} else {
		c.Out = append(c.Out, metadumpEnd...)
	}
	return nil
}

// appendMetadumpLine appends memcached 1.6.18's metadump line for an
// item (crawler.c crawler_metadump_eval), which ends in a bare "\n":
//
//	key=<uri-encoded key> exp=<-1|unix time> la=<unix time> cas=<n> fetch=<yes|no> cls=<n> size=<bytes>
//
// size is the item's size as memcached counts it (engine.ItemSize); cas
// is 0 under -C, where memcached keeps none.
func appendMetadumpLine(dst, key []byte, it *engine.Item, noCAS bool) []byte {
	dst = append(dst, "key="...)
	dst = appendURIEncoded(dst, key)
	dst = append(dst, " exp="...)
	if it.Exptime == 0 {
		dst = append(dst, "-1"...)
	} else {
		dst = strconv.AppendInt(dst, it.Exptime, 10)
	}
	dst = append(dst, " la="...)
	dst = strconv.AppendInt(dst, it.Atime, 10)
	dst = append(dst, " cas="...)
	cas := it.CAS
	if noCAS {
		cas = 0
	}
	dst = strconv.AppendUint(dst, cas, 10)
	if it.Bits&engine.BitFetched != 0 {
		dst = append(dst, " fetch=yes"...)
	} else {
		dst = append(dst, " fetch=no"...)
	}
	dst = append(dst, " cls=1 size="...)
	dst = strconv.AppendInt(dst, int64(engine.ItemSize(len(key), len(it.Value), it.Flags, noCAS)), 10)
	return append(dst, '\n')
}

// appendMgdumpLine appends later memcached's mgdump line for a key:
// "mg <key>\r\n", or "mg <base64 key> b\r\n" for a key that would break
// the line (memcached marks the keys that were stored in base64; mnemo
// does not keep that mark and encodes what it must, as stats cachedump).
func appendMgdumpLine(dst, key []byte) []byte {
	dst = append(dst, "mg "...)
	if printableKey(key) {
		dst = append(dst, key...)
		return append(dst, "\r\n"...)
	}
	dst = text.AppendBase64(dst, key)
	return append(dst, " b\r\n"...)
}

// appendURIEncoded appends key as memcached's uriencode writes it: ASCII
// letters, digits and "-._~" as they are, every other byte as %XX in
// upper-case hex.
func appendURIEncoded(dst, key []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, b := range key {
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9',
			b == '-', b == '.', b == '_', b == '~':
			dst = append(dst, b)
		default:
			dst = append(dst, '%', hex[b>>4], hex[b&15])
		}
	}
	return dst
}
