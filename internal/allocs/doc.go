// Package allocs holds the end-to-end allocation tests: a whole mnemo
// server runs in-process and the tests count heap allocations per get and
// per set sent over a real loopback connection. It has no code of its own.
package allocs
