// Package testbin builds a Go command once per test binary, for the tests
// that run it as a process: privileges, signals, -d, the files a process
// writes, real tools such as the Prometheus exporter.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Build is one command to build. The zero value is not usable: set Pkg
// and Name.
type Build struct {
	// Pkg is what "go build" is given: an import path, or "." with Dir.
	Pkg string
	// Name is the binary's file name.
	Name string
	// Dir, when set, is the directory "go build" runs in (a module other
	// than the one of the test).
	Dir string
	// Env, when set, is added to the build's environment
	// ("CGO_ENABLED=0", say).
	Env []string

	once sync.Once
	dir  string
	path string
	err  error
}

// Path builds the command the first time it is called, into a temporary
// directory that every user may read and search (so that a test may run
// the binary as nobody), and returns the binary's path. It fails tb when
// the build failed, this time or the first time.
func (b *Build) Path(tb testing.TB) string {
	tb.Helper()
	path, err := b.Built()
	if err != nil {
		tb.Fatal(err)
	}
	return path
}

// Built is Path for a caller without a testing.TB (a TestMain): it
// builds the command once and returns its path or the build's error.
func (b *Build) Built() (string, error) {
	b.once.Do(b.build)
	return b.path, b.err
}

func (b *Build) build() {
	if b.dir, b.err = os.MkdirTemp("", "mnemo-testbin-"+b.Name+"-"); b.err != nil {
		return
	}
	if b.err = os.Chmod(b.dir, 0o755); b.err != nil {
		return
	}
	b.path = filepath.Join(b.dir, b.Name)
	cmd := exec.Command("go", "build", "-o", b.path, b.Pkg)
	cmd.Dir = b.Dir
	if b.Env != nil {
		cmd.Env = append(os.Environ(), b.Env...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		b.err = fmt.Errorf("go build %s: %v\n%s", b.Pkg, err, out)
	}
}

// Remove deletes what Path built; call it from TestMain after the tests.
func (b *Build) Remove() {
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}
