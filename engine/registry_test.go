package engine_test

import (
	"errors"
	"reflect"
	"strings"
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

func TestRegistry(t *testing.T) {
	var gotEnv engine.Env
	var gotConfig string
	engine.Register("test-registry", engine.DriverFunc(func(env engine.Env, config string) (engine.Engine, error) {
		if config == "fail" {
			return nil, engine.ErrBadConfig
		}
		gotEnv, gotConfig = env, config
		return nopEngine{}, nil
	}))
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
