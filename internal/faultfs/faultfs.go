// Package faultfs is a file system for the persistent engine's store
// (a Pebble vfs.FS) that injects the faults tests need: a read of the
// store's tables that blocks, caught inside the store when it fails,
// and write-ahead log writes that fail. The engine's own tests and the
// tests of the layers above it (a server over a failing store) share
// it; it reaches the engine through internal/testhook.
package faultfs

import (
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mnemo-cache/mnemo/internal/testhook"
)

// ErrIO is the error of an injected write failure.
var ErrIO = &os.PathError{Op: "write", Path: "(injected)", Err: syscall.EIO}

// FS wraps a file system. While BlockReads is set, every read of a
// table (.sst) made by a call of the engine into its store
// (testhook.InStoreCall: a scan, a read-through, not Pebble's own
// goroutines) sends on Entered, if it has room, and then waits until
// Release. While FailLogWrites is set, writes to write-ahead logs
// (.log) fail with ErrIO.
type FS struct {
	vfs.FS
	BlockReads    atomic.Bool
	FailLogWrites atomic.Bool
	// Entered receives a value when a blocked read starts waiting
	// (capacity 1: later ones are dropped while it is full).
	Entered chan struct{}

	gate    chan struct{}
	release sync.Once
}

// New wraps fs (vfs.Default: the operating system's).
func New(fs vfs.FS) *FS {
	return &FS{FS: fs, Entered: make(chan struct{}, 1), gate: make(chan struct{})}
}

// Release lets the blocked reads go on, and every later one not wait.
// It may be called more than once.
func (fs *FS) Release() {
	fs.release.Do(func() { close(fs.gate) })
}

// Open implements vfs.FS.
func (fs *FS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.Open(name, opts...)
	if err != nil || !strings.HasSuffix(name, ".sst") {
		return f, err
	}
	return &tableFile{File: f, fs: fs}, nil
}

// Create implements vfs.FS.
func (fs *FS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, cat)
	return fs.wrapLog(name, f, err)
}

// ReuseForWrite implements vfs.FS (Pebble recycles its logs).
func (fs *FS) ReuseForWrite(old, new string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(old, new, cat)
	return fs.wrapLog(new, f, err)
}

func (fs *FS) wrapLog(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &logFile{File: f, fs: fs}, nil
}

// tableFile is a table file of the store.
type tableFile struct {
	vfs.File
	fs *FS
}

func (f *tableFile) ReadAt(p []byte, off int64) (int, error) {
	if f.fs.BlockReads.Load() && testhook.InStoreCall() {
		select {
		case f.fs.Entered <- struct{}{}:
		default:
		}
		<-f.fs.gate
	}
	return f.File.ReadAt(p, off)
}

// logFile is a write-ahead log file of the store.
type logFile struct {
	vfs.File
	fs *FS
}

func (f *logFile) Write(p []byte) (int, error) {
	if f.fs.FailLogWrites.Load() {
		return 0, ErrIO
	}
	return f.File.Write(p)
}
