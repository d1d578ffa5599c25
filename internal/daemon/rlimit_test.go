package daemon

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/mnemo-cache/mnemo/config"
)

// fakeRlimit is an RLIMIT_NOFILE that refuses, like the kernel, to raise
// the hard limit unless root.
type fakeRlimit struct {
	l    syscall.Rlimit
	root bool
	sets int
}

func (f *fakeRlimit) ops() rlimitOps {
	return rlimitOps{
		get: func(l *syscall.Rlimit) error { *l = f.l; return nil },
		set: func(l *syscall.Rlimit) error {
			f.sets++
			if l.Cur > l.Max || (l.Max > f.l.Max && !f.root) {
				return syscall.EPERM
			}
			f.l = *l
			return nil
		},
		root: f.root,
	}
}

func TestFitOpenFiles(t *testing.T) {
	const c = 1000
	want := uint64(c + openFilesHeadroom)
	for _, tc := range []struct {
		name      string
		cur, max  uint64
		root      bool
		wantCur   uint64
		wantMax   uint64
		wantErr   error
		wantWarn  bool
		wantNoSet bool
	}{
		{name: "enough", cur: 4096, max: 4096, wantCur: 4096, wantMax: 4096, wantNoSet: true},
		{name: "raise soft", cur: 256, max: 1 << 20, wantCur: want, wantMax: 1 << 20},
		{name: "soft to hard, short of headroom", cur: 256, max: c + 10, wantCur: c + 10, wantMax: c + 10, wantWarn: true},
		{name: "hard below -c", cur: 256, max: 512, wantCur: 512, wantMax: 512, wantErr: errSetRlimit},
		{name: "hard below -c as root", cur: 256, max: 512, root: true, wantCur: want, wantMax: want},
		{name: "never lowered", cur: 1 << 20, max: 1 << 20, root: true, wantCur: 1 << 20, wantMax: 1 << 20, wantNoSet: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRlimit{root: tc.root}
			setRlim(&f.l.Cur, tc.cur)
			setRlim(&f.l.Max, tc.max)
			soft, warning, err := fitOpenFiles(c, f.ops())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if rlim(f.l.Cur) != tc.wantCur || rlim(f.l.Max) != tc.wantMax || soft != rlim(f.l.Cur) {
				t.Errorf("limit %d/%d (reported %d), want %d/%d", f.l.Cur, f.l.Max, soft, tc.wantCur, tc.wantMax)
			}
			if (warning != "") != tc.wantWarn {
				t.Errorf("warning %q", warning)
			}
			if tc.wantNoSet && f.sets > 0 {
				t.Errorf("setrlimit called %d times", f.sets)
			}
		})
	}
}

// rlimitChildEnv marks the re-executed test binary that runs the daemon
// with a lowered hard open-file limit.
const rlimitChildEnv = "MNEMO_DAEMON_RLIMIT_CHILD"

// TestRunRefusesMaxConnsOverLimitChild lowers its hard open-file limit to
// 256, takes itself for an unprivileged process (a root one could raise
// the limit) and runs the daemon with -c 1000: Run must refuse to start.
func TestRunRefusesMaxConnsOverLimitChild(t *testing.T) {
	if os.Getenv(rlimitChildEnv) == "" {
		t.Skip("run by TestRunRefusesMaxConnsOverLimit")
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 256, Max: 256}); err != nil {
		t.Fatal(err)
	}
	sysRlimit.root = false
	os.Exit(Run([]string{"-l", "127.0.0.1:0", "-c", "1000"}, os.Stdout, os.Stderr))
}

// TestRunRefusesMaxConnsOverLimit: like memcached, a daemon whose -c does
// not fit the open-file limit it may set prints memcached's message and
// exits with EX_OSERR (71).
func TestRunRefusesMaxConnsOverLimit(t *testing.T) {
	if os.Getenv(rlimitChildEnv) != "" {
		t.Skip("in the child")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunRefusesMaxConnsOverLimitChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), rlimitChildEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 71 {
		t.Fatalf("child: %v, want exit status 71; stderr:\n%s", err, stderr.String())
	}
	if want := "failed to set rlimit for open files. Try starting as root or requesting smaller maxconns value.\n"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q lacks memcached's message %q", stderr.String(), want)
	}
}

// TestStartRaisesOpenFileLimit: Start raises this process's soft limit
// (and, as root, the hard one) to fit -c; unprivileged and over the hard
// limit, it refuses.
func TestStartRaisesOpenFileLimit(t *testing.T) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	c := int(l.Max) + 100
	if c > 1<<20-openFilesHeadroom {
		t.Skip("hard limit too high to go past")
	}
	cfg, err := config.Parse([]string{"-l", "127.0.0.1:0", "-c", strconv.Itoa(c)}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Start(cfg, io.Discard)
	if !sysRlimit.root {
		if !errors.Is(err, errSetRlimit) {
			t.Fatalf("unprivileged Start with -c %d over the hard limit %d: %v", c, l.Max, err)
		}
		return
	}
	if errors.Is(err, errSetRlimit) {
		t.Skip("root without the right to raise the hard limit")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	var got syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &got)
	if rlim(got.Cur) < uint64(c+openFilesHeadroom) {
		t.Errorf("soft limit %d after Start with -c %d", got.Cur, c)
	}
}
