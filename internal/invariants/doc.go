// Package invariants owns mnemo's switch for expensive self-checks: the
// constant Enabled, true only in builds with the "invariants" build tag
// (go test -tags invariants), after pebble's internal/invariants.
//
// Code guards its consistency checks with it:
//
//	if invariants.Enabled {
//		e.checkInvariants()
//	}
//
// Enabled is a constant, so in an ordinary build the compiler removes the
// guarded code entirely: the checks cost nothing where they are off. A
// failed check is a programmer error, so it panics (with a Violation, see
// Failf); it never returns an error to a client.
package invariants

import "fmt"

// Violation is the value a failed invariant check panics with.
type Violation string

func (v Violation) Error() string { return "invariant violated: " + string(v) }

// Failf panics with a Violation formatted from format and args. Call it
// only once a check has failed: its arguments are boxed, which allocates.
func Failf(format string, args ...any) {
	panic(Violation(fmt.Sprintf(format, args...)))
}
