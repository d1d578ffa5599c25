// Package all registers every built-in engine. Import it for its side
// effects:
//
//	import _ "github.com/mnemo-cache/mnemo/engine/all"
package all

import (
	_ "github.com/mnemo-cache/mnemo/engine/memory"     // "memory", the default
	_ "github.com/mnemo-cache/mnemo/engine/persistent" // "persistent"
)
