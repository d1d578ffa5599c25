package main

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/mnemo-cache/mnemo/config"
	"github.com/mnemo-cache/mnemo/internal/testserver"
)

// The files under contrib/ that this package's binary is installed with.
const (
	unitPath = "../../contrib/systemd/mnemo.service"
	confPath = "../../contrib/mnemo.conf"
	// installedConf is where the unit expects confPath.
	installedConf = "/etc/mnemo.conf"
	// installedBin is where the unit expects the binary.
	installedBin = "/usr/bin/mnemo"
	// openFilesHeadroom is the daemon's: descriptors beyond -c.
	openFilesHeadroom = 64
)

// readUnit parses a systemd unit file into section -> key -> values (a
// key may repeat). It knows what the shipped unit uses: comments,
// sections, key=value lines, no line continuations.
func readUnit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unit := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasSuffix(line, "\\"):
			t.Fatalf("%s:%d: line continuation: extend readUnit", path, n)
		case line[0] == '[':
			section = strings.Trim(line, "[]")
			unit[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not key=value in a section: %q", path, n, line)
			}
			unit[section][k] = append(unit[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return unit
}

// execStart returns the unit's ExecStart arguments after the binary, with
// the conf file's path replaced by contrib's.
func execStart(t *testing.T, unit map[string]map[string][]string) []string {
	t.Helper()
	es := unit["Service"]["ExecStart"]
	if len(es) != 1 {
		t.Fatalf("ExecStart = %q, want one", es)
	}
	words := strings.Fields(es[0])
	if len(words) == 0 || words[0] != installedBin {
		t.Fatalf("ExecStart %q does not run %s", es[0], installedBin)
	}
	args := words[1:]
	found := false
	for i, a := range args {
		if a == installedConf {
			args[i], found = confPath, true
		}
	}
	if !found {
		t.Fatalf("ExecStart %q does not read %s", es[0], installedConf)
	}
	return args
}

// TestSystemdUnit: the unit is hardened as documented, its ExecStart is a
// command line mnemo accepts with the shipped conf file, and its open-file
// limit holds that file's -c.
func TestSystemdUnit(t *testing.T) {
	unit := readUnit(t, unitPath)
	svc := unit["Service"]
	for key, want := range map[string]string{
		"Type":                   "simple",
		"DynamicUser":            "yes",
		"CapabilityBoundingSet":  "",
		"AmbientCapabilities":    "",
		"NoNewPrivileges":        "yes",
		"ProtectSystem":          "strict",
		"ProtectHome":            "yes",
		"PrivateTmp":             "yes",
		"StateDirectory":         "mnemo",
		"RuntimeDirectory":       "mnemo",
		"Restart":                "on-failure",
		"RestartSec":             "2s",
		"MemoryDenyWriteExecute": "yes",
		"SystemCallFilter":       "@system-service",
	} {
		if got := svc[key]; len(got) != 1 || got[0] != want {
			t.Errorf("[Service] %s = %q, want %q", key, got, want)
		}
	}
	if got := unit["Install"]["WantedBy"]; len(got) != 1 || got[0] != "multi-user.target" {
		t.Errorf("[Install] WantedBy = %q", got)
	}

	args := execStart(t, unit)
	c, err := config.Parse(args, nil)
	if err != nil {
		t.Fatalf("ExecStart's arguments %q: %v", args, err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("ExecStart's arguments %q: %v", args, err)
	}
	if err := c.Unsupported(); err != nil {
		t.Fatalf("ExecStart's arguments %q: %v", args, err)
	}
	if c.Daemonize {
		t.Error("ExecStart daemonizes: Type=simple wants the foreground")
	}
	nofile, err := strconv.Atoi(svc["LimitNOFILE"][0])
	if err != nil {
		t.Fatalf("LimitNOFILE %q: %v", svc["LimitNOFILE"], err)
	}
	if need := c.MaxConns + openFilesHeadroom; nofile < need {
		t.Errorf("LimitNOFILE=%d cannot hold the conf's -c %d plus %d", nofile, c.MaxConns, openFilesHeadroom)
	}
}

// buildMnemo builds this package into a test directory.
func buildMnemo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mnemo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestSystemdAnalyzeVerify runs systemd's own checker on the unit, with
// ExecStart pointing at a freshly built mnemo (verify checks that it is
// executable). Any complaint fails the test.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze := testserver.LookPath(t, "systemd-analyze", "systemd")
	bin := buildMnemo(t)
	text, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	text = bytes.ReplaceAll(text, []byte("ExecStart="+installedBin+" "), []byte("ExecStart="+bin+" "))
	unit := filepath.Join(t.TempDir(), "mnemo.service")
	if err := os.WriteFile(unit, text, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	// The checker itself catches what it should: a setting it cannot read.
	bad := filepath.Join(t.TempDir(), "mnemo.service")
	if err := os.WriteFile(bad, bytes.Replace(text, []byte("DynamicUser=yes"), []byte("DynamicUser=yess"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", bad).CombinedOutput(); err == nil || !bytes.Contains(out, []byte("yess")) {
		t.Errorf("systemd-analyze verify does not notice DynamicUser=yess: %v %s", err, out)
	}
}

// TestExecStartServes starts the built binary with the unit's ExecStart
// arguments and the shipped conf file (moved to a free port by a -p after
// it, which also shows that the command line wins), checks that it
// serves with the conf's settings, and stops it with the unit's
// KillSignal.
func TestExecStartServes(t *testing.T) {
	bin := buildMnemo(t)
	args := execStart(t, readUnit(t, unitPath))
	port := testserver.FreePort(t)
	args = append(args, "-p", strconv.Itoa(port), "-U", "0")
	args = append(args, testserver.AsRoot()...)
	cmd := exec.Command(bin, args...)
	logs := &testserver.LockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("mnemo log:\n%s", logs.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := testserver.WaitListening(addr, exited); err != nil {
		t.Fatal(err)
	}
	conn := testserver.Dial(t, addr)
	if _, err := conn.Write([]byte("stats settings\r\n")); err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stats settings: %v", err)
		}
		if line == "END\r\n" {
			break
		}
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "STAT" {
			settings[f[1]] = f[2]
		}
	}
	for k, want := range map[string]string{
		"maxbytes": strconv.Itoa(64 << 20), "maxconns": "1024", "tcpport": strconv.Itoa(port),
	} {
		if settings[k] != want {
			t.Errorf("stats settings %s = %q, want %q (conf file and command line)", k, settings[k], want)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := <-exited
	stopped = true
	if err != nil {
		t.Errorf("after SIGTERM: %v", err)
	}
}
