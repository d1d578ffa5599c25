// Package interop owns mnemo's end-to-end interoperability tests: it runs
// real clients (memccapable, gomemcache, pymemcache) against an in-process
// mnemo, replays scripted text-protocol sessions against both mnemo and
// Debian's memcached 1.6.18 and compares the replies byte for byte, and
// checks the mnemo binary's command line, signals and shutdown.
//
// The package has no API: everything is in its tests. Normalisations
// applies to the differential comparison: it lists every deliberate
// difference from memcached that the comparison tolerates.
//
// # Requirements
//
// The tests need Debian's memcached (package memcached), memccapable
// (package libmemcached-tools), python3 with pymemcache (package
// python3-pymemcache) and promtool (package prometheus), and the go
// command with the Go module proxy, from which TestExporter builds
// memcached_exporter. A missing tool fails the test that needs it; none
// is skipped.
package interop
