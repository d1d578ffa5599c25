package persistent

import (
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/engine/enginetest"
)

// TestConformance runs the engine suite in both durability modes. In sync
// mode the store skips the fsync itself (the suite tests the engine's
// logic; the crash test in internal/interop/persist tests real fsync), or
// the suite's thousands of writes would take minutes.
func TestConformance(t *testing.T) {
	t.Run("async", func(t *testing.T) {
		enginetest.Run(t, func(t *testing.T, env engine.Env) engine.Engine {
			e, err := engine.Open("persistent", env, "path="+t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return e
		})
	})
	t.Run("sync", func(t *testing.T) {
		enginetest.Run(t, func(t *testing.T, env engine.Env) engine.Engine {
			dir := t.TempDir()
			cfg, err := ParseConfig("durability=sync,path=" + dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(env.MemoryLimit); err != nil {
				t.Fatal(err)
			}
			p, err := openPebble(dir, cfg.CacheSize, env.Logger, nil)
			if err != nil {
				t.Fatal(err)
			}
			e, err := newEngine(env, cfg, &faultKV{kv: p, noSync: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return e
		})
	})
}

// TestReopen runs the suite's reopen phase: what the engine held before
// Close is there after it, deletes, overwrites and flushes included.
func TestReopen(t *testing.T) {
	for _, durability := range []string{"async", "sync"} {
		t.Run(durability, func(t *testing.T) {
			enginetest.RunReopen(t, func(t *testing.T, env engine.Env, dir string) engine.Engine {
				e, err := engine.Open("persistent", env, "sweep_interval=0,durability="+durability+",path="+dir)
				if err != nil {
					t.Fatal(err)
				}
				return e
			})
		})
	}
}
