package interop

import (
	"bytes"
	"regexp"
)

// Normalisation is one deliberate difference between mnemo's and
// memcached's replies that the differential test tolerates: Apply rewrites
// a whole reply stream (of either server) so that the difference
// disappears. Nothing else is normalised; any other difference fails.
type Normalisation struct {
	// Name is a short identifier.
	Name string
	// Why says what differs and why the difference is deliberate.
	Why string
	// Apply rewrites a reply stream.
	Apply func(reply []byte) []byte
}

var versionLine = regexp.MustCompile(`(?m)^VERSION [^\r\n]*\r$`)

// Normalisations lists every deliberate difference from memcached 1.6.18
// that the differential test tolerates, in the order they are applied.
// testdata/diff/README.md lists the same ones for readers.
var Normalisations = []Normalisation{
	{
		Name: "version",
		Why: `"version" answers "VERSION 1.6.18-mnemo" where memcached answers ` +
			`"VERSION 1.6.18": mnemo names itself after the memcached release it follows.`,
		Apply: func(b []byte) []byte {
			return versionLine.ReplaceAll(b, []byte("VERSION <version>\r"))
		},
	},
}

// Normalise applies every Normalisation to reply, in order.
func Normalise(reply []byte) []byte {
	out := bytes.Clone(reply)
	for _, n := range Normalisations {
		out = n.Apply(out)
	}
	return out
}
