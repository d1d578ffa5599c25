package server

import (
	"syscall"
	"unsafe"
)

// Raw system calls
//
// A connection's reads and writes go to its non-blocking socket with
// syscall.RawSyscall, not syscall.Read and syscall.Write, which tell the
// scheduler that the goroutine enters a system call (entersyscall). That
// bookkeeping is for calls that may block, so that the runtime's sysmon
// thread can hand the P to another thread; a non-blocking socket call
// never blocks (it copies at most a socket buffer, tens of
// microseconds), and the bookkeeping has a cost that dominates a server
// that goes idle between requests: once every P has been idle, sysmon
// sleeps deeply, and the next system call's entersyscall wakes it (a
// futex wake-up), after which it polls every 20 µs for a millisecond
// before it backs off. On one core (-t 1, 16 KB values, pipeline 1)
// that was half of the server's context switches: 1.56 per request
// against 0.39 with raw calls, and memcached's 0.63 (BENCHMARKS.md,
// "Large values"). Other platforms use syscall.Read and syscall.Write.

// sysRead is read(2) on a non-blocking descriptor.
func sysRead(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// sysWrite is write(2) on a non-blocking descriptor.
func sysWrite(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// sysWritev is writev(2) of up to three buffers on a non-blocking
// descriptor; empty buffers are left out.
func sysWritev(fd int, a, b, c []byte) (int, error) {
	var iov [3]syscall.Iovec
	n := 0
	for _, p := range [3][]byte{a, b, c} {
		if len(p) > 0 {
			iov[n].Base = &p[0]
			iov[n].SetLen(len(p))
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// writevSupported: WriteThrough writes without a copy here.
const writevSupported = true
