package memcache

import (
	"net"
)

// parseUint32 parses a decimal uint32 as memcached's safe_strtoul does for
// command arguments: digits only, no sign, no overflow.
func parseUint32(b []byte) (uint32, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
		if v > 1<<32-1 {
			return 0, false
		}
	}
	return uint32(v), true
}

// parseInt32 parses a decimal int32 with an optional minus sign, as
// memcached's safe_strtol does for exptime arguments.
func parseInt32(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
		if v > 1<<31 {
			return 0, false
		}
	}
	if neg {
		v = -v
	}
	if v > 1<<31-1 || v < -(1<<31) {
		return 0, false
	}
	return v, true
}

// addrString formats a connection address the way memcached's
// "stats conns" does: "tcp:host:port" or "unix:path".
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	switch a.Network() {
	case "unix":
		return "unix:" + a.String()
	default:
		return "tcp:" + a.String()
	}
}
