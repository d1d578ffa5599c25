package memcache

import (
	"strconv"
	"time"

	"github.com/mnemo-cache/mnemo/internal/hotkeys"
	"github.com/mnemo-cache/mnemo/internal/metrics"
	"github.com/mnemo-cache/mnemo/protocol/binary"
	"github.com/mnemo-cache/mnemo/protocol/text"
	"github.com/mnemo-cache/mnemo/server"
)

// Instruments are the request path's optional measurements, off when nil.
//
// The cost when on: Latency reads the monotonic clock once per request
// (the end of one request is the start of the next in the same batch)
// plus once per batch, and does two atomic adds; HotKeys samples 1 in
// hotkeys.Config.Sample keys and updates its sketches under its mutex.
// Neither allocates. When off, each costs a nil check per request.
type Instruments struct {
	// Latency receives one observation per request, under the index of
	// its command in LatencyCommands (a binary request counts as the
	// text command it matches: GETK as get, SETQ as set).
	Latency *metrics.Latency
	// HotKeys receives each key of a request, with the value bytes it
	// moved (for mg and binary retrievals, estimated from the reply).
	HotKeys *hotkeys.Tracker
}

// LatencyCommands are the label values of the latency histograms:
// the text protocol's commands, "other" for the administrative ones.
var LatencyCommands = []string{
	"get", "gets", "gat", "gats",
	"set", "add", "replace", "append", "prepend", "cas",
	"delete", "incr", "decr", "touch",
	"mg", "ms", "md", "ma", "mn", "me",
	"flush_all", "stats", "other",
}

// latencyIndex maps a text command to its index in LatencyCommands.
var latencyIndex = func() [256]uint8 {
	var idx [256]uint8
	other := uint8(len(LatencyCommands) - 1)
	for i := range idx {
		idx[i] = other
	}
	for i, name := range LatencyCommands[:len(LatencyCommands)-1] {
		for c := text.Command(0); c < 255; c++ {
			if c.String() == name {
				idx[c] = uint8(i)
			}
		}
	}
	return idx
}()

// batchStart returns the clock reading that the first request of a batch
// is timed from, or 0 when latency is not measured.
func (h *Handler) batchStart() int64 {
	if h.cfg.Instruments.Latency == nil {
		return 0
	}
	return metrics.Now()
}

// observe records request r, executed since start (a batchStart or the
// previous observe's result), whose reply began at c.Out[mark:], and
// returns the clock reading that ends it.
func (s *session) observe(c *server.Conn, r *text.Request, start int64, mark int) int64 {
	ins := &s.h.cfg.Instruments
	if ins.HotKeys != nil && !r.Cmd.IsRetrieval() && len(r.Key) > 0 {
		// Retrievals record each key as they answer it (recordGet).
		n := len(r.Data)
		if r.Cmd == text.CmdMetaGet && len(c.Out) > mark {
			n = len(c.Out) - mark // the reply: the value and its header
		}
		ins.HotKeys.Record(r.Key, n)
	}
	if ins.Latency == nil || r.Cmd == text.CmdNone {
		return start
	}
	now := metrics.Now()
	ins.Latency.Observe(int(latencyIndex[r.Cmd]), now-start)
	return now
}

// recordGet records one key of a retrieval, and the bytes of its value
// (0 on a miss), for the hot keys.
func (h *Handler) recordGet(key []byte, n int) {
	if hk := h.cfg.Instruments.HotKeys; hk != nil {
		hk.Record(key, n)
	}
}

// hotKeysStats answers "stats hotkeys" and reports true; for any other
// request it does nothing and reports false. The reply, with --hotkeys N:
//
//	STAT hotkeys_top <N>
//	STAT hotkeys_window_seconds <window>
//	STAT hotkeys_sample <1 in how many requests are counted>
//	STAT requests:<rank>:key <key>
//	STAT requests:<rank>:count <estimated requests in the window>
//	STAT requests:<rank>:error <how much count may overestimate>
//	...
//	STAT bytes:<rank>:key <key>
//	STAT bytes:<rank>:count <estimated value bytes moved in the window>
//	STAT bytes:<rank>:error <how much count may overestimate>
//	...
//	END
//
// ranks from 1, at most N of each. A key that is not printable text is
// shown as "base64:" and its base64. Without --hotkeys the reply is a
// CLIENT_ERROR that says how to turn the report on.
func (s *session) hotKeysStats(c *server.Conn, r *text.Request) bool {
	if len(r.Args) != 1 || string(r.Args[0]) != "hotkeys" {
		return false
	}
	hk := s.h.cfg.Instruments.HotKeys
	if hk == nil {
		c.Out = append(c.Out, "CLIENT_ERROR hot keys are not tracked: start mnemo with --hotkeys N\r\n"...)
		return true
	}
	cfg := hk.Config()
	add := func(name, value string) { c.Out = text.AppendStat(c.Out, name, value) }
	add("hotkeys_top", strconv.Itoa(cfg.Top))
	add("hotkeys_window_seconds", strconv.FormatInt(int64(cfg.Window/time.Second), 10))
	add("hotkeys_sample", strconv.FormatUint(uint64(cfg.Sample), 10))
	rep := hk.Report()
	for _, list := range []struct {
		name    string
		entries []hotkeys.Entry
	}{{"requests", rep.Requests}, {"bytes", rep.Bytes}} {
		for i, e := range list.entries {
			p := list.name + ":" + strconv.Itoa(i+1) + ":"
			add(p+"key", metrics.KeyLabel(e.Key))
			add(p+"count", strconv.FormatUint(e.Count, 10))
			add(p+"error", strconv.FormatUint(e.Error, 10))
		}
	}
	c.Out = append(c.Out, text.End...)
	return true
}

// binaryLatency maps a binary opcode (its loud form) to its index in
// LatencyCommands: the text command it matches.
var binaryLatency = func() [256]uint8 {
	var idx [256]uint8
	index := func(name string) uint8 {
		for i, n := range LatencyCommands {
			if n == name {
				return uint8(i)
			}
		}
		panic("memcache: no latency command " + name)
	}
	for i := range idx {
		idx[i] = index("other")
	}
	for op, name := range map[binary.Opcode]string{
		binary.OpGet: "get", binary.OpGetK: "get",
		binary.OpSet: "set", binary.OpAdd: "add", binary.OpReplace: "replace",
		binary.OpAppend: "append", binary.OpPrepend: "prepend",
		binary.OpDelete: "delete", binary.OpIncrement: "incr", binary.OpDecrement: "decr",
		binary.OpTouch: "touch", binary.OpGAT: "gat", binary.OpGATK: "gat",
		binary.OpFlush: "flush_all", binary.OpStat: "stats",
	} {
		idx[op] = index(name)
	}
	return idx
}()

// observeBinary is observe for a binary request. A retrieval's bytes are
// its reply's, less the response header, the flags and any key.
func (h *Handler) observeBinary(c *server.Conn, r *binary.Request, start int64, mark int) int64 {
	ins := &h.cfg.Instruments
	base := r.Opcode.Base()
	if ins.HotKeys != nil && len(r.Key) > 0 && base != binary.OpStat && base != binary.OpSASLAuth && base != binary.OpSASLStep {
		n := len(r.Value)
		switch base {
		case binary.OpGet, binary.OpGetK, binary.OpGAT, binary.OpGATK:
			n = len(c.Out) - mark - binary.HeaderLen - 4
			if base == binary.OpGetK || base == binary.OpGATK {
				n -= len(r.Key)
			}
		}
		ins.HotKeys.Record(r.Key, max(n, 0))
	}
	if ins.Latency == nil {
		return start
	}
	now := metrics.Now()
	ins.Latency.Observe(int(binaryLatency[base]), now-start)
	return now
}
