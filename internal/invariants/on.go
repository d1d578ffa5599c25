//go:build invariants

package invariants

// Enabled is true: this build has the "invariants" tag, so invariant
// checks run.
const Enabled = true
