// Command mnemo is a memcached-compatible cache server. It takes
// memcached 1.6's command line; run "mnemo -h" for the flags.
package main

import (
	"os"

	"github.com/mnemo-cache/mnemo/internal/daemon"
)

func main() {
	os.Exit(daemon.Run(os.Args[1:], os.Stdout, os.Stderr))
}
