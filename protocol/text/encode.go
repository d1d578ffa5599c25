package text

import "strconv"

// Pre-built reply lines.
var (
	Stored     = []byte("STORED\r\n")
	NotStored  = []byte("NOT_STORED\r\n")
	Exists     = []byte("EXISTS\r\n")
	NotFound   = []byte("NOT_FOUND\r\n")
	Deleted    = []byte("DELETED\r\n")
	Touched    = []byte("TOUCHED\r\n")
	End        = []byte("END\r\n")
	OK         = []byte("OK\r\n")
	Reset      = []byte("RESET\r\n")
	ErrorReply = []byte("ERROR\r\n")
	// MN is the reply to the meta no-op command mn.
	MN = []byte("MN\r\n")
	// NonNumeric is the reply to incr or decr of a value that is not a
	// number.
	NonNumeric = []byte("CLIENT_ERROR cannot increment or decrement non-numeric value\r\n")
	// OutOfMemoryStoring is the reply to a storage command the engine has no
	// room for.
	OutOfMemoryStoring = []byte("SERVER_ERROR out of memory storing object\r\n")
	// OutOfMemory is the reply to an incr or decr the engine has no room
	// for.
	OutOfMemory = []byte("SERVER_ERROR out of memory\r\n")
	// TooLarge is the reply of ErrTooLarge, for the cache layer when the
	// engine refuses an item (for instance after append).
	TooLarge = []byte("SERVER_ERROR object too large for cache\r\n")
)

// Reply lines of memcached's cache_memlimit.
var (
	MemlimitTooSmall = []byte("MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n")
	MemlimitNotBytes = []byte("MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n")
	MemlimitFailed   = []byte("MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust\r\n")
)

// AppendValue appends one item of a get reply to dst:
// "VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n".
func AppendValue(dst, key []byte, flags uint32, data []byte, cas uint64, withCAS bool) []byte {
	dst = AppendValueHeader(dst, key, flags, len(data), cas, withCAS)
	dst = append(dst, data...)
	return append(dst, "\r\n"...)
}

// AppendValueHeader appends the line "VALUE <key> <flags> <bytes>[ <cas>]\r\n"
// that precedes a value of n bytes (and its "\r\n") in a get reply.
func AppendValueHeader(dst, key []byte, flags uint32, n int, cas uint64, withCAS bool) []byte {
	dst = append(dst, "VALUE "...)
	dst = append(dst, key...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(flags), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(n), 10)
	if withCAS {
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, cas, 10)
	}
	return append(dst, "\r\n"...)
}

// AppendStat appends the line "STAT <name> <value>\r\n".
func AppendStat(dst []byte, name, value string) []byte {
	dst = append(dst, "STAT "...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// AppendUint appends v in decimal.
func AppendUint(dst []byte, v uint64) []byte {
	return strconv.AppendUint(dst, v, 10)
}

// AppendUintLine appends v in decimal and "\r\n" (the reply to incr and
// decr).
func AppendUintLine(dst []byte, v uint64) []byte {
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, "\r\n"...)
}

// AppendVersion appends "VERSION <version>\r\n".
func AppendVersion(dst []byte, version string) []byte {
	dst = append(dst, "VERSION "...)
	dst = append(dst, version...)
	return append(dst, "\r\n"...)
}
