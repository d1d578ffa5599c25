package memory_test

import (
	"path/filepath"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/engine/enginetest"
	"github.com/mnemo-cache/mnemo/engine/memory"
)

func TestConformance(t *testing.T) {
	enginetest.Run(t, func(t *testing.T, env engine.Env) engine.Engine {
		e, err := memory.New(env, "")
		if err != nil {
			t.Fatal(err)
		}
		return e
	})
}

// TestConformanceFile runs the suite on a restartable arena file (-e).
func TestConformanceFile(t *testing.T) {
	enginetest.Run(t, func(t *testing.T, env engine.Env) engine.Engine {
		e, err := memory.New(env, "file="+filepath.Join(t.TempDir(), "arena"))
		if err != nil {
			t.Fatal(err)
		}
		return e
	})
}

// TestConformanceReopen runs the reopen phase on a restartable arena file.
func TestConformanceReopen(t *testing.T) {
	enginetest.RunReopen(t, func(t *testing.T, env engine.Env, dir string) engine.Engine {
		e, err := memory.New(env, "sweep_interval=0,file="+filepath.Join(dir, "arena"))
		if err != nil {
			t.Fatal(err)
		}
		return e
	})
}
