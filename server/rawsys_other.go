//go:build !linux

package server

import "syscall"

// sysRead is read(2) on a non-blocking descriptor (see rawsys_linux.go).
func sysRead(fd int, b []byte) (int, error) { return syscall.Read(fd, b) }

// sysWrite is write(2) on a non-blocking descriptor.
func sysWrite(fd int, b []byte) (int, error) { return syscall.Write(fd, b) }

// sysWritev is not used elsewhere (writevSupported is false).
func sysWritev(int, []byte, []byte, []byte) (int, error) { return 0, syscall.ENOSYS }

// writevSupported: WriteThrough writes nothing here (the Session copies).
const writevSupported = false
