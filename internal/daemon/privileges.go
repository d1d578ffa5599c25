package daemon

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/mnemo-cache/mnemo/config"
	"github.com/mnemo-cache/mnemo/engine/persistent"
)

// Exit statuses, as memcached's (sysexits.h).
const (
	exUsage  = 64 // EX_USAGE
	exNoUser = 67 // EX_NOUSER
	exOSErr  = 71 // EX_OSERR
)

// exitError is a start-up failure with the exit status memcached gives
// it. Its message is memcached's, printed as is.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// exitStatus returns the status Run exits with when Start fails with err.
func exitStatus(err error) int {
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, config.ErrUnsupported), errors.Is(err, config.ErrInvalid), errors.Is(err, config.ErrUsage):
		return exUsage
	}
	return exOSErr
}

// identity is the user named by -u.
type identity struct {
	name     string
	uid, gid int
}

// isRoot reports whether the process runs as root (real or effective),
// memcached's test for needing -u.
var isRoot = func() bool { return os.Getuid() == 0 || os.Geteuid() == 0 }

// runAs returns the identity to assume, nil when there is none to assume
// (not root: memcached ignores -u then). As root, -u is required.
func runAs(name string) (*identity, error) {
	if !isRoot() {
		return nil, nil
	}
	if name == "" {
		return nil, &exitError{exUsage, "can't run as root without the -u switch"}
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, &exitError{exNoUser, fmt.Sprintf("can't find the user %s to switch to", name)}
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, &exitError{exNoUser, fmt.Sprintf("can't find the user %s to switch to", name)}
	}
	return &identity{name: name, uid: uid, gid: gid}, nil
}

// drop assumes id's identity as memcached does: no supplementary groups
// (EPERM is logged and ignored: the process is already unprivileged),
// then the group, then the user. Go's syscall.Setgroups, Setgid and
// Setuid apply to every thread of the process on Linux.
func (id *identity) drop(warn func(string)) error {
	if err := syscall.Setgroups(nil); err != nil {
		if !errors.Is(err, syscall.EPERM) {
			return &exitError{exOSErr, "failed to drop supplementary groups: " + err.Error()}
		}
		warn("failed to drop supplementary groups: " + err.Error())
	}
	if syscall.Setgid(id.gid) != nil || syscall.Setuid(id.uid) != nil {
		return &exitError{exOSErr, "failed to assume identity of user " + id.name}
	}
	return nil
}

// prepareDataDir makes the persistent engine's data directory usable by
// id before privileges are dropped: the engine opens it afterwards, as
// the -u user (as memcached opens its -e memory file after dropping
// root), so every file it creates belongs to that user. Directories on
// the path that do not exist yet are created here and given to id; an
// existing directory is left as it is (mnemo never changes the owner of
// what it did not create), and the engine's open reports it if the user
// cannot write it.
func prepareDataDir(cfg *config.Config, id *identity) error {
	if cfg.Engine != "persistent" {
		return nil
	}
	pc, err := persistent.ParseConfig(cfg.EngineConfig)
	if err != nil || pc.Path == "" {
		return nil // the engine's open reports it
	}
	dir, err := filepath.Abs(pc.Path)
	if err != nil {
		return nil
	}
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("mnemo: data directory %s: %w", dir, err)
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("mnemo: data directory: %w", err)
		}
		if err := os.Lchown(d, id.uid, id.gid); err != nil {
			return fmt.Errorf("mnemo: data directory: giving %s to user %s: %w", d, id.name, err)
		}
	}
	return nil
}
