package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
)

// DefaultUnixMode is the permission mode of a unix socket created with
// mode 0: its owner only.
const DefaultUnixMode os.FileMode = 0o700

// ErrNotSocket is returned by ListenUnix when its path names an existing
// file that is not a socket: it is left alone.
var ErrNotSocket = errors.New("server: path exists and is not a socket")

// Listen listens on a TCP address. network is "tcp", "tcp4" or "tcp6";
// the socket gets Go's defaults (SO_REUSEADDR, TCP_NODELAY and keep-alive
// on accepted connections). TCP_NODELAY and keep-alive are set on the
// listening socket too, from the start, so that the connections the
// server accepts itself (see bare.go) inherit them.
func Listen(network, addr string) (net.Listener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("server: listen: unsupported network %q", network)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { setConnOptions(int(fd)) })
		return nil
	}}
	return lc.Listen(context.Background(), network, addr)
}

// ListenUnix listens on a unix stream socket at path with permission mode
// mode (0 means DefaultUnixMode). A stale socket file at path is removed
// first; any other kind of file there makes ListenUnix fail with
// ErrNotSocket. Closing the listener removes the socket file.
func ListenUnix(path string, mode os.FileMode) (net.Listener, error) {
	if mode == 0 {
		mode = DefaultUnixMode
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("server: listen unix %s: %w", path, ErrNotSocket)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("server: listen unix %s: removing stale socket: %w", path, err)
		}
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, mode.Perm()); err != nil {
		l.Close()
		return nil, fmt.Errorf("server: listen unix %s: %w", path, err)
	}
	return l, nil
}
