//go:build !invariants

package invariants

// Enabled is false: this build lacks the "invariants" tag, so invariant
// checks compile away.
const Enabled = false
