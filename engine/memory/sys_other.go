//go:build !linux

package memory

import "golang.org/x/sys/unix"

// mapNoReserve: Linux's MAP_NORESERVE has no portable counterpart; other
// systems commit anonymous memory lazily anyway.
const mapNoReserve = 0

// punchPages has no portable system call; the caller falls back to
// MADV_DONTNEED, which unmaps the pages but leaves a file's blocks.
func punchPages([]byte) error { return unix.ENOSYS }

// reserveFile has no portable system call; the arena file stays sparse.
func reserveFile(int, int64) error { return unix.ENOSYS }

// yieldThread has no portable system call: runtime.Gosched alone yields.
func yieldThread() {}
