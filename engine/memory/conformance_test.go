package memory_test

import (
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
