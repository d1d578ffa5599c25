package engine_test

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    [][2]string
		wantErr bool
	}{
		{"", nil, false},
		{"   ", nil, false},
		{"path=/var/lib/mnemo", [][2]string{{"path", "/var/lib/mnemo"}}, false},
		{"path=/x, durability = sync", [][2]string{{"path", "/x"}, {"durability", "sync"}}, false},
		{"verbose", [][2]string{{"verbose", "true"}}, false},
		{"a=1=2", [][2]string{{"a", "1=2"}}, false},
		{"a=", [][2]string{{"a", ""}}, false},
		{"=1", nil, true},
		{"a=1,,b=2", nil, true},
		{"a=1,a=2", nil, true},
	} {
		got, err := engine.ParseConfig(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseConfig(%q) error %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err != nil {
			if !errors.Is(err, engine.ErrBadConfig) {
				t.Errorf("ParseConfig(%q) error %v does not wrap ErrBadConfig", tc.in, err)
			}
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseConfig(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

type nopEngine struct{ engine.Engine }

// The registry is process-wide and refuses a second Register of a name, so
// the test driver is registered once (go test -count=N runs the test N
// times in one process) and reports what it was opened with through these.
var (
	registerTestDriver sync.Once
	gotEnv             engine.Env
	gotConfig          string
)

func TestRegistry(t *testing.T) {
	registerTestDriver.Do(func() {
		engine.Register("test-registry", engine.DriverFunc(func(env engine.Env, config string) (engine.Engine, error) {
			if config == "fail" {
				return nil, engine.ErrBadConfig
			}
			gotEnv, gotConfig = env, config
			return nopEngine{}, nil
		}))
	})
	gotEnv, gotConfig = engine.Env{}, ""
	if e, err := engine.Open("test-registry", engine.Env{}, "x=1"); err != nil || e == nil {
		t.Fatalf("Open: %v", err)
	}
	if gotConfig != "x=1" || gotEnv.MemoryLimit != engine.DefaultMemoryLimit || gotEnv.ItemSizeMax != engine.DefaultItemSizeMax || gotEnv.Clock == nil || gotEnv.Logger == nil {
		t.Errorf("driver got env %+v config %q: defaults not applied", gotEnv, gotConfig)
	}
	if _, err := engine.Open("test-registry", engine.Env{}, "fail"); !errors.Is(err, engine.ErrBadConfig) || !strings.Contains(err.Error(), "test-registry") {
		t.Errorf("Open with a failing config: %v", err)
	}
	_, err := engine.Open("no-such-engine", engine.Env{}, "")
	if !errors.Is(err, engine.ErrUnknownEngine) || !strings.Contains(err.Error(), "test-registry") {
		t.Errorf("Open of an unknown engine: %v (must list the known ones)", err)
	}
	found := false
	for _, n := range engine.Names() {
		found = found || n == "test-registry"
	}
	if !found {
		t.Errorf("Names() = %v lacks test-registry", engine.Names())
	}
	for _, bad := range []func(){
		func() { engine.Register("test-registry", engine.DriverFunc(nil)) },
		func() {
			engine.Register("", engine.DriverFunc(func(engine.Env, string) (engine.Engine, error) { return nil, nil }))
		},
		func() { engine.Register("x", nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("Register misuse did not panic")
				}
			}()
			bad()
		}()
	}
}

func TestExpired(t *testing.T) {
	for _, tc := range []struct {
		exp, now int64
		want     bool
	}{{0, 100, false}, {1, 100, true}, {100, 100, true}, {101, 100, false}} {
		m := engine.Meta{Exptime: tc.exp}
		if got := m.Expired(tc.now); got != tc.want {
			t.Errorf("Expired(exp %d, now %d) = %v", tc.exp, tc.now, got)
		}
	}
}

func TestFlushMark(t *testing.T) {
	var cas uint64 = 100
	take := func() uint64 { cas++; return cas }
	var none *engine.FlushMark
	if none.Flushed(10, 1, 1) {
		t.Fatal("a nil mark flushed an item")
	}
	// An immediate flush at 100 takes CAS 101: older items are flushed,
	// an item stored after it in the same second is not.
	m := none.Next(100, 100, take)
	for _, tc := range []struct {
		now, atime int64
		cas        uint64
		want       bool
	}{
		{100, 99, 50, true},
		{100, 100, 100, true},
		{100, 100, 102, false},
		{200, 150, 300, false},
	} {
		if got := m.Flushed(tc.now, tc.atime, tc.cas); got != tc.want {
			t.Errorf("immediate: Flushed(now %d, atime %d, cas %d) = %v", tc.now, tc.atime, tc.cas, got)
		}
	}
	// A delayed flush at 150: nothing until 150, then what was last
	// stored before 150; the earlier flush stays in force.
	d := m.Next(120, 150, take)
	if d.Flushed(149, 140, 500) || !d.Flushed(150, 140, 500) || d.Flushed(150, 150, 500) || !d.Flushed(149, 99, 50) {
		t.Errorf("delayed mark %+v", d)
	}
	// A later delayed flush replaces the pending one, but one whose time
	// has passed stays in force.
	later := d.Next(160, 300, take)
	if !later.Flushed(170, 140, 500) || later.Flushed(170, 155, 500) || !later.Flushed(300, 299, 900) {
		t.Errorf("replaced mark %+v", later)
	}
	if cas != 101 {
		t.Errorf("delayed flushes took a CAS: %d", cas)
	}
}

type fakeEngine struct{ engine.Engine }

func TestConstructorNeverReturnsTypedNil(t *testing.T) {
	d := engine.Constructor(func(env engine.Env, config string) (*fakeEngine, error) {
		if config == "fail" {
			return nil, engine.ErrBadConfig
		}
		return &fakeEngine{}, nil
	})
	e, err := d.Open(engine.Env{}, "fail")
	if err == nil || e != nil {
		t.Fatalf("failed Open returned engine %#v (nil interface wanted), err %v", e, err)
	}
	if e, err := d.Open(engine.Env{}, ""); err != nil || e == nil {
		t.Fatalf("Open: %v, %v", e, err)
	}
}
