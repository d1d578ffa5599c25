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
package memcache
