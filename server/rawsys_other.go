//go:build !linux

package server

import "syscall"

// sysRead is read(2) on a non-blocking descriptor (see rawsys_linux.go).
func sysRead(fd int, b []byte) (int, error) { return syscall.Read(fd, b) }

// sysWrite is write(2) on a non-blocking descriptor.
func sysWrite(fd int, b []byte) (int, error) { return syscall.Write(fd, b) }
