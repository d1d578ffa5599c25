// Package memcache is the memcached application on mnemo's server
// framework: it plugs memcached's protocols into package server and
// executes every request with package cache, so that all protocols share
// memcached's rules and every engine gets them.
//
// # Protocols
//
// A connection speaks the text protocol with its meta commands (package
// protocol/text) or the binary protocol (package protocol/binary), chosen
// from its first byte as memcached does (0x80 starts a binary session), or
// fixed by -B and per listener. Memcached's ascii authentication (-Y) sits
// in front of a text session; SASL (-S) authenticates binary sessions and
// turns the text protocol off.
//
// # Sessions
//
// One Handler serves every connection; each connection gets a session that
// decodes every complete request already buffered, executes it and appends
// its reply, so that the framework answers a pipelined batch with one
// write.
//
// # Memory per connection
//
// A session writes its pending replies out (server.Conn.Flush) as soon as
// they pass flushThreshold (256 KB): before each request of a batch, and
// within a command whose own reply can pass it (a multi-key get, stats
// detail dump, stats conns). A client that does not read its replies
// blocks only its own goroutine in that write, and nothing more is read
// from it meanwhile, so its replies never hold more than flushThreshold
// plus one reply: one item, or one stats cachedump (2 MB at most; the
// engine's iteration cannot pause for a write). Sessions keep no value
// buffer: a text get learns the value's size from the engine first
// (cache.Session.View) and copies the value once, behind its header line,
// into the reply buffer; the last value of a get, from 64 KiB on (from
// 8 KiB when the get is the last request buffered, whose replies are
// written next anyway: pipeline 1, or a batch's end), goes from item
// memory straight to the socket behind the pending replies, in one
// non-blocking writev (server.Conn.WriteThrough), and only what the
// socket does not take is copied. An idle connection holds no copy of
// what it last read.
//
// # Logging
//
// The watch command turns a connection into a log stream (watch.go): the
// request path checks one atomic word (the union of what watchers want)
// before it formats a line, and appends a line to each interested
// watcher's bounded buffer, dropping it (and counting it for the
// "skipped=N" line) when the buffer is full; the watcher's own goroutine
// writes the buffer out. Verbosity 2 (-vv) writes memcached's command and
// reply lines to Config.VerboseOut (verbose.go), checked once per batch.
//
// # Files
//
//	memcache.go   Handler, Config, session construction
//	detect.go     protocol detection on the first byte
//	session.go    text protocol: storage, retrieval, delete, incr, touch
//	meta.go       meta commands (mg ms md ma mn me)
//	admin.go      flush_all, version, verbosity, quit, shutdown, cache_memlimit
//	stats.go      stats and its groups, cachedump, stats conns
//	detail.go     per-prefix statistics (stats detail, -D)
//	binary.go     binary protocol
//	sasl.go       SASL mechanisms and the password database
//	asciiauth.go  ascii authentication (-Y)
//	failure.go    how each protocol answers a failed command (cache.Failure)
//	statgroup.go  StatGroup: a stats group run in-process (for /metrics)
//	instruments.go  latency and hot keys on the request path; stats hotkeys
//	watch.go      watch: memcached's log streams, bounded per watcher
//	verbose.go    -vv: each command and reply written as memcached does
package memcache
