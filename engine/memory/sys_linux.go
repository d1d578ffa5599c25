package memory

import "golang.org/x/sys/unix"

// mapNoReserve maps the arena without reserving swap for it.
const mapNoReserve = unix.MAP_NORESERVE

// punchPages frees the pages of b, a range of a restartable arena file,
// from the file itself (MADV_REMOVE).
func punchPages(b []byte) error { return unix.Madvise(b, unix.MADV_REMOVE) }

// reserveFile allocates the blocks of the file's first size bytes.
func reserveFile(fd int, size int64) error { return unix.Fallocate(fd, 0, 0, size) }

// yieldThread gives the calling thread's core to another runnable thread
// of the core, if there is one (sched_yield); see sweepYield.
func yieldThread() { unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }
