package interop

import (
	"os"
	"path/filepath"
	"testing"
)

// Tests that expose mnemo bugs reported to the lead. They run only with
// MNEMO_KNOWN_BUGS set; when a bug is fixed, remove its entry (and the
// guard once the list is empty) so that the test runs by default.

// knownBugScripts are testdata/diff scripts on which mnemo differs from
// memcached because of a bug in mnemo. TestDifferential leaves them out.
var knownBugScripts = map[string]string{}

func skipUnlessKnownBugs(t *testing.T) {
	t.Helper()
	if os.Getenv("MNEMO_KNOWN_BUGS") == "" {
		t.Skip("known mnemo bug, reported; set MNEMO_KNOWN_BUGS=1 to run")
	}
}

func TestKnownBugScripts(t *testing.T) {
	skipUnlessKnownBugs(t)
	for name, bug := range knownBugScripts {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			t.Logf("bug: %s", bug)
			runScriptFile(t, filepath.Join("testdata", "diff", name+".txt"))
		})
	}
}

// knownStatsOrderBugs are stats groups whose shared names mnemo prints in
// another order than memcached. TestStatsNames does not check their order.
var knownStatsOrderBugs = map[string]string{}

// knownStatsCounterBugs are general stats whose values differ from
// memcached's after statsWorkload. TestStatsNames does not compare them.
var knownStatsCounterBugs = map[string]string{}

func TestKnownBugStats(t *testing.T) {
	skipUnlessKnownBugs(t)
	mc, mn := statsPair(t)
	for group, bug := range knownStatsOrderBugs {
		t.Logf("bug: %s", bug)
		compareStats(t, mc, mn, group, false, nil)
	}
	var counters []string
	for n, bug := range knownStatsCounterBugs {
		t.Logf("bug: %s", bug)
		counters = append(counters, n)
	}
	compareStats(t, mc, mn, "", true, counters)
}
