package interop

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The standard Prometheus exporter for memcached, built from the Go module
// proxy, scraping memcached and mnemo side by side.

// exporterModule is the exporter's module and version: the release whose
// parser (its scrape of stats, stats settings, stats slabs and stats
// items) mnemo is checked against.
const exporterModule = "github.com/prometheus/memcached_exporter@v0.14.3"

// The exporter binary, built once for the tests that run it; TestMain
// removes exporterDir.
var (
	exporterOnce sync.Once
	exporterPath string
	exporterErr  error
	exporterDir  string
)

// exporterBinary builds memcached_exporter once: "go mod download" names
// the module's directory in the (read-only) module cache, which is copied
// to a temporary directory and built there. A failure fails the test: CI
// has the go command and the module proxy.
func exporterBinary(t *testing.T) string {
	t.Helper()
	exporterOnce.Do(func() {
		exporterPath, exporterErr = buildExporter()
	})
	if exporterErr != nil {
		t.Fatal(exporterErr)
	}
	return exporterPath
}

func buildExporter() (string, error) {
	var err error
	exporterDir, err = os.MkdirTemp("", "mnemo-exporter-")
	if err != nil {
		return "", err
	}
	gocmd := func(dir string, args ...string) ([]byte, error) {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		// The exporter is its own module: no workspace, its own go.sum.
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod -buildvcs=false")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, errors.New("go " + strings.Join(args, " ") + ": " + err.Error() + "\n" + stderr.String())
		}
		return out, nil
	}
	out, err := gocmd(exporterDir, "mod", "download", "-json", exporterModule)
	if err != nil {
		return "", err
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", err
	}
	if mod.Error != "" || mod.Dir == "" {
		return "", errors.New("go mod download " + exporterModule + ": " + mod.Error)
	}
	src := filepath.Join(exporterDir, "src")
	if err := copyTree(mod.Dir, src); err != nil {
		return "", err
	}
	bin := filepath.Join(exporterDir, "memcached_exporter")
	if _, err := gocmd(src, "build", "-o", bin, "./cmd/memcached_exporter"); err != nil {
		return "", err
	}
	return bin, nil
}

// copyTree copies the regular files under src to dst, writable.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// exporter is a running memcached_exporter.
type exporter struct {
	url string
	log *lockedBuffer
}

// startExporter runs the exporter against the memcached server at addr
// on a loopback port of its own, waits until it serves /metrics and stops
// it when the test ends.
func startExporter(t *testing.T, addr string) *exporter {
	t.Helper()
	port := freePort(t)
	listen := "127.0.0.1:" + strconv.Itoa(port)
	log := &lockedBuffer{}
	cmd := exec.Command(exporterBinary(t), "--memcached.address="+addr, "--web.listen-address="+listen)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited reports the exit to waitListening (which may take it); done
	// closes when the process has been waited for.
	exited, done := make(chan error, 1), make(chan struct{})
	go func() {
		exited <- cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("exporter for %s log:\n%s", addr, log.String())
		}
	})
	if err := waitListening(listen, exited); err != nil {
		t.Fatalf("memcached_exporter: %v\n%s", err, log.String())
	}
	return &exporter{url: "http://" + listen + "/metrics", log: log}
}

// scrape returns the exporter's /metrics page.
func (e *exporter) scrape(t *testing.T) string {
	t.Helper()
	client := &http.Client{Timeout: patience}
	resp, err := client.Get(e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", e.url, resp.Status, b)
	}
	return string(b)
}

// seriesLine splits a sample line: metric name, labels, value.
var seriesLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$`)

// series returns the memcached_* series of a /metrics page (name and
// labels) with their values.
func series(t *testing.T, page string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(page, "\n") {
		if !strings.HasPrefix(line, "memcached_") {
			continue
		}
		m := seriesLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unparsable sample line %q", line)
		}
		out[m[1]+m[2]] = m[3]
	}
	return out
}

// exporterSeriesExceptions are memcached series that mnemo's scrape may
// lack, with the reason. None today: the exporter reads nothing from
// memcached that mnemo does not print (extstore's series appear only with
// extstore, on neither server here).
var exporterSeriesExceptions = map[string]string{}

// TestExporter runs memcached_exporter v0.14.3 against Debian's memcached
// and against mnemo after the same commands, and checks that it reports
// mnemo up, logs no error, and exports every series for mnemo that it
// exports for memcached (the same names and labels: mnemo's one slab
// class is class 1, where the workload's small items live in memcached).
// promtool checks mnemo's page: it must parse, and its lint findings must
// be the ones memcached's page has (the exporter's own naming).
func TestExporter(t *testing.T) {
	promtool := lookPath(t, "promtool", "prometheus")
	mcAddr := startMemcached(t)
	mnAddr := startMnemo(t)
	for _, addr := range []string{mcAddr, mnAddr} {
		c := dial(t, addr)
		c.send(statsWorkload)
		for !strings.HasPrefix(c.line(), "VERSION ") {
		}
	}
	mcExp := startExporter(t, mcAddr)
	mnExp := startExporter(t, mnAddr)
	// Two scrapes each: the exporter logs a parse failure on every one.
	var mcPage, mnPage string
	for range 2 {
		mcPage, mnPage = mcExp.scrape(t), mnExp.scrape(t)
	}
	mc, mn := series(t, mcPage), series(t, mnPage)
	if mc["memcached_up"] != "1" {
		t.Fatalf("memcached_up %q for memcached itself: the test setup is broken\n%s", mc["memcached_up"], mcExp.log.String())
	}
	if mn["memcached_up"] != "1" {
		t.Errorf("memcached_up %q for mnemo, want 1", mn["memcached_up"])
	}
	for _, e := range []*exporter{mcExp, mnExp} {
		for _, line := range strings.Split(e.log.String(), "\n") {
			if strings.Contains(line, "level=error") || strings.Contains(line, "level=warn") {
				t.Errorf("exporter logged: %s", line)
			}
		}
	}
	var missing []string
	for s := range mc {
		if _, ok := mn[s]; ok {
			continue
		}
		if _, ok := exporterSeriesExceptions[s]; ok {
			continue
		}
		missing = append(missing, s)
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("series exported for memcached but not for mnemo:\n%s", strings.Join(missing, "\n"))
	}
	t.Logf("%d series for memcached, %d for mnemo", len(mc), len(mn))
	// Counters that must read the same after the same commands.
	for _, s := range []string{
		`memcached_commands_total{command="get",status="hit"}`,
		`memcached_commands_total{command="get",status="miss"}`,
		`memcached_commands_total{command="set",status="hit"}`,
		`memcached_commands_total{command="cas",status="badval"}`,
		`memcached_commands_total{command="incr",status="hit"}`,
		`memcached_commands_total{command="touch",status="hit"}`,
		`memcached_slab_commands_total{command="get",slab="1",status="hit"}`,
		`memcached_slab_commands_total{command="set",slab="1",status="hit"}`,
		`memcached_slab_commands_total{command="delete",slab="1",status="hit"}`,
		`memcached_slab_commands_total{command="cas",slab="1",status="hit"}`,
		`memcached_slab_lru_hits_total{lru="cold",slab="1"}`,
		`memcached_current_items`,
		`memcached_items_total`,
	} {
		got, want := mn[s], mc[s]
		if s == `memcached_slab_lru_hits_total{lru="cold",slab="1"}` {
			// mnemo's items are all in "cold"; memcached's move from hot
			// to warm and cold as its LRU maintainer runs.
			var sum float64
			for _, lru := range []string{"hot", "warm", "cold", "temporary"} {
				v, _ := strconv.ParseFloat(mc[`memcached_slab_lru_hits_total{lru="`+lru+`",slab="1"}`], 64)
				sum += v
			}
			want = strconv.FormatFloat(sum, 'f', -1, 64)
		}
		if got != want {
			t.Errorf("%s = %q for mnemo, %q for memcached", s, got, want)
		}
	}

	lint := func(page string) []string {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(page)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee) && ee.ExitCode() == 3:
			// Lint findings (exit status 3); 1 is a page that does not parse.
		default:
			t.Fatalf("promtool check metrics: %v\n%s", err, out.String())
		}
		var problems []string
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if l != "" {
				problems = append(problems, l)
			}
		}
		sort.Strings(problems)
		return problems
	}
	if mcLint, mnLint := lint(mcPage), lint(mnPage); !slices.Equal(mcLint, mnLint) {
		t.Errorf("promtool check metrics on mnemo's page:\n%s\nwant memcached's:\n%s",
			strings.Join(mnLint, "\n"), strings.Join(mcLint, "\n"))
	}
}

// TestExporterAfterTraffic scrapes mnemo once more after evictions and
// expiries, where more of its figures are not 0: the exporter must still
// parse everything.
func TestExporterAfterTraffic(t *testing.T) {
	mnAddr := startMnemo(t, "-m", "8")
	c := dial(t, mnAddr)
	value := strings.Repeat("v", 100<<10)
	var b strings.Builder
	for i := range 200 {
		b.WriteString("set k" + strconv.Itoa(i) + " 0 " + strconv.Itoa(i%2*-1) + " " + strconv.Itoa(len(value)) + " noreply\r\n" + value + "\r\n")
	}
	b.WriteString("get k1 k2 k3 k199\r\nversion\r\n")
	c.send(b.String())
	for !strings.HasPrefix(c.line(), "VERSION ") {
	}
	e := startExporter(t, mnAddr)
	s := series(t, e.scrape(t))
	if s["memcached_up"] != "1" {
		t.Errorf("memcached_up %q after traffic, want 1\n%s", s["memcached_up"], e.log.String())
	}
	if v, _ := strconv.ParseFloat(s[`memcached_slab_items_evicted_total{slab="1"}`], 64); v == 0 {
		t.Errorf("no evictions exported after 20 MB into 8 MB")
	}
	if strings.Contains(e.log.String(), "level=error") {
		t.Errorf("exporter logged an error:\n%s", e.log.String())
	}
}
