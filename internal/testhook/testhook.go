// Package testhook lets the tests of one package reach what another
// package keeps unexported, as the standard library's internal/poll
// does with its test hooks: the package that owns the thing sets a hook
// in its init, and tests elsewhere in the module call it. The hooks add
// no behaviour of their own, production code never calls them, and
// only this module can import them (it is internal), so they are no part
// of any package's API.
package testhook

import (
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mnemo-cache/mnemo/engine"
)

// OpenPersistent opens a persistent engine as engine/persistent's New
// does, with its store on fs (a test's file system, which injects
// faults) instead of the operating system's. Set by engine/persistent's
// init: a test imports that package to use it.
var OpenPersistent func(env engine.Env, config string, fs vfs.FS) (engine.Engine, error)

// InStoreCall reports whether the calling goroutine runs a call of the
// persistent engine into its store (a scan, a read, a commit), as
// opposed to the store's own background work (Pebble's flushes,
// compactions, table statistics). Set by engine/persistent's init.
var InStoreCall func() bool
