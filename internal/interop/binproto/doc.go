// Package binproto holds the end-to-end tests of memcached's binary
// protocol and of authentication (binary SASL and ascii -Y): memccapable
// against mnemo started in-process, a differential test of scripted binary
// sessions against Debian's memcached 1.6.18, pipelining, SASL and bad
// input. It has no code of its own outside tests.
package binproto
