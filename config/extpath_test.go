package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExtPath(t *testing.T) {
	file := filepath.Join(t.TempDir(), "extstore")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args         []string
		engine, conf string // the mapping
		err          string // or the error it contains
		warning      string
	}{
		{args: []string{"-o", "ext_path=/d/e:64m"}, engine: "persistent", conf: "path=/d/e,disk_size=67108864"},
		{args: []string{"-o", "ext_path=/d/e:2G"}, engine: "persistent", conf: "path=/d/e,disk_size=2147483648"},
		{args: []string{"-o", "ext_path=/d/e:1t"}, engine: "persistent", conf: "path=/d/e,disk_size=1099511627776"},
		{args: []string{"-o", "ext_path=/d/e:8192k"}, engine: "persistent", conf: "path=/d/e,disk_size=8388608"},
		{args: []string{"--engine", "persistent", "--engine-config", "durability=sync", "-o", "ext_path=/d/e:64m"},
			engine: "persistent", conf: "path=/d/e,disk_size=67108864,durability=sync"},
		{args: []string{"-o", "ext_path=/d/e:64m:compact"}, engine: "persistent", conf: "path=/d/e,disk_size=67108864", warning: "compact ignored"},
		{args: []string{"-o", "ext_path=/d/e:64m", "-o", "ext_path=/d/f:64m"}, err: "given 2 times"},
		{args: []string{"--engine", "memory", "-o", "ext_path=/d/e:64m"}, err: "cannot be combined with --engine memory"},
		{args: []string{"-o", "ext_path=/d/e:64m", "--engine=memory"}, err: "cannot be combined with --engine memory"},
		{args: []string{"-o", "ext_path=/d/e"}, err: "must supply size"},
		{args: []string{"-o", "ext_path=/d/e:big"}, err: "could not parse size"},
		{args: []string{"-o", "ext_path=/d/e:0m"}, err: "could not parse size"},
		{args: []string{"-o", "ext_path=/d/e:1m"}, err: "below"},
		{args: []string{"-o", "ext_path=:64m"}, err: "must supply size"},
		{args: []string{"--engine-config", "path=/x", "-o", "ext_path=/d/e:64m"}, err: "must not set path"},
		{args: []string{"--engine-config", "disk_size=8m", "-o", "ext_path=/d/e:64m"}, err: "must not set disk_size"},
		{args: []string{"-o", "ext_path=" + file + ":64m"}, err: "is a file"},
		{args: []string{"-o", "ext_item_size=100"}, engine: "memory", conf: ""},
	} {
		c, err := Parse(tc.args, nil)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want one with %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if c.Engine != tc.engine || c.EngineConfig != tc.conf {
			t.Errorf("%q: engine %q config %q, want %q %q", tc.args, c.Engine, c.EngineConfig, tc.engine, tc.conf)
		}
		if got := strings.Join(c.Warnings, "|"); !strings.Contains(got, tc.warning) || (tc.warning == "" && got != "") {
			t.Errorf("%q: warnings %q, want %q", tc.args, got, tc.warning)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%q: Validate: %v", tc.args, err)
		}
		if err := c.Unsupported(); err != nil {
			t.Errorf("%q: Unsupported: %v", tc.args, err)
		}
	}
}
