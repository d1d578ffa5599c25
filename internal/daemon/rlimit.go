package daemon

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// openFilesHeadroom is how many descriptors beyond -c the daemon wants
// for its listeners, the engine's files, the server's spare descriptor and
// the process's own: memcached counts them inside -c, mnemo on top.
const openFilesHeadroom = 64

// Errors memcached prints when the open-file limit cannot hold -c; it then
// exits with EX_OSERR (71), as Run does.
var (
	errGetRlimit = errors.New("failed to getrlimit number of files")
	//lint:ignore ST1005 memcached's words, byte for byte
	errSetRlimit = errors.New("failed to set rlimit for open files. Try starting as root or requesting smaller maxconns value.")
)

// rlimitOps reads and sets RLIMIT_NOFILE; tests replace it.
type rlimitOps struct {
	get  func(*syscall.Rlimit) error
	set  func(*syscall.Rlimit) error
	root bool // the process may raise the hard limit
}

var sysRlimit = rlimitOps{
	get:  func(l *syscall.Rlimit) error { return syscall.Getrlimit(syscall.RLIMIT_NOFILE, l) },
	set:  func(l *syscall.Rlimit) error { return syscall.Setrlimit(syscall.RLIMIT_NOFILE, l) },
	root: os.Geteuid() == 0,
}

// fitOpenFiles makes the open-file limit hold maxConns connections plus
// openFilesHeadroom: it raises the soft limit (up to the hard limit, or
// the hard limit too when the process may) and never lowers either. It
// fails, with memcached's message, when the soft limit cannot reach
// maxConns; it returns a warning when it reaches maxConns but not the
// headroom. It returns the soft limit in force.
func fitOpenFiles(maxConns int, ops rlimitOps) (soft uint64, warning string, err error) {
	var l syscall.Rlimit
	if err := ops.get(&l); err != nil {
		return 0, "", errGetRlimit
	}
	need := uint64(maxConns)
	want := need + openFilesHeadroom
	if rlim(l.Cur) >= want {
		return rlim(l.Cur), "", nil
	}
	set := func(cur, hard uint64) bool {
		var nl syscall.Rlimit
		setRlim(&nl.Cur, cur)
		setRlim(&nl.Max, hard)
		if ops.set(&nl) != nil {
			return false
		}
		l = nl
		return true
	}
	if !(ops.root && rlim(l.Max) < want && set(want, want)) {
		set(min(want, rlim(l.Max)), rlim(l.Max))
	}
	switch {
	case rlim(l.Cur) < need:
		return rlim(l.Cur), "", errSetRlimit
	case rlim(l.Cur) < want:
		return rlim(l.Cur), fmt.Sprintf("open file limit %d leaves fewer than %d descriptors beyond -c %d for listeners and files; clients may be refused before -c is reached",
			l.Cur, openFilesHeadroom, maxConns), nil
	}
	return rlim(l.Cur), "", nil
}

// rlim reads a field of syscall.Rlimit, which is uint64 on Linux and
// macOS and int64 on the BSDs.
func rlim[T int64 | uint64](v T) uint64 { return uint64(v) }

// setRlim sets a field of syscall.Rlimit (see rlim).
func setRlim[T int64 | uint64](p *T, v uint64) { *p = T(v) }
