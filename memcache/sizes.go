package memcache

import (
	"slices"
	"strconv"
	"sync"

	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/internal/number"
	"github.com/mnemo-cache/mnemo/protocol/text"
	"github.com/mnemo-cache/mnemo/server"
)

// Item size histogram: "stats sizes", "stats sizes_enable",
// "stats sizes_disable" and -o track_sizes.
//
// memcached keeps the histogram up to date as items are linked and
// unlinked, from -o track_sizes or from the "stats sizes_enable" that
// turned it on, counting only items stored since (their CAS is above the
// CAS handed out last when it was turned on). mnemo computes the same
// histogram when "stats sizes" asks for it, over the engine's iterator:
// every live item whose CAS is above that mark, in buckets of 32 bytes of
// memcached's item size (engine.ItemSize). The cost is a walk of the
// cache on each "stats sizes" while it is on, in the asking connection's
// goroutine only; nothing on the request path.

// sizesState is whether the histogram is on, and the CAS mark.
type sizesState struct {
	mu     sync.Mutex
	on     bool
	casMin uint64
}

// statsSizes answers "stats sizes", "stats sizes_enable" and
// "stats sizes_disable" as memcached 1.6.18 does: enable and disable
// answer one line and no END.
func (s *session) statsSizes(c *server.Conn, group string) error {
	h := s.h
	st := &h.sizes
	st.mu.Lock()
	if st.on || h.setting("track_sizes") == "yes" {
		st.on = true
	}
	switch group {
	case "sizes_enable":
		switch {
		case s.cs.Cache().Options().DisableCAS:
			// memcached tells items stored since by their CAS.
			c.Out = text.AppendStat(c.Out, "sizes_status", "error")
			c.Out = text.AppendStat(c.Out, "sizes_error", "cas_support_disabled")
		case st.on:
			c.Out = text.AppendStat(c.Out, "sizes_status", "enabled")
		default:
			st.on = true
			st.casMin = lastCAS(s.cs.Cache().Engine())
			h.st.tune("track_sizes", "yes")
			c.Out = text.AppendStat(c.Out, "sizes_status", "enabled")
		}
		st.mu.Unlock()
		return nil
	case "sizes_disable":
		st.on, st.casMin = false, 0
		h.st.tune("track_sizes", "no")
		st.mu.Unlock()
		c.Out = text.AppendStat(c.Out, "sizes_status", "disabled")
		return nil
	}
	on, casMin := st.on, st.casMin
	st.mu.Unlock()
	if !on {
		c.Out = text.AppendStat(c.Out, "sizes_status", "disabled")
		c.Out = append(c.Out, text.End...)
		return nil
	}
	noCAS := s.cs.Cache().Options().DisableCAS
	hist := map[int]uint64{}
	err := s.cs.Cache().Engine().Iterate(func(key []byte, it *engine.Item) bool {
		if it.CAS > casMin || casMin == 0 {
			n := engine.ItemSize(len(key), len(it.Value), it.Flags, noCAS)
			hist[(n+31)/32]++
		}
		return true
	})
	if err != nil {
		return err
	}
	buckets := make([]int, 0, len(hist))
	for b := range hist {
		buckets = append(buckets, b)
	}
	slices.Sort(buckets)
	for _, b := range buckets {
		c.Out = text.AppendStat(c.Out, strconv.Itoa(b*32), strconv.FormatUint(hist[b], 10))
	}
	c.Out = append(c.Out, text.End...)
	return nil
}

// lastCAS is the engine's CAS mark (engine.CASCounter), 0 when it has
// none: then every item counts.
func lastCAS(e engine.Engine) uint64 {
	if cc, ok := e.(engine.CASCounter); ok {
		return cc.LastCAS()
	}
	return 0
}

// extSettings are memcached's extstore settings that "extstore" sets,
// by their "stats settings" names, and how their values parse.
var extSettings = map[string]struct {
	name  string
	float bool
	flag  bool
}{
	"item_size":     {name: "ext_item_size"},
	"item_age":      {name: "ext_item_age"},
	"low_ttl":       {name: "ext_low_ttl"},
	"recache_rate":  {name: "ext_recache_rate"},
	"compact_under": {name: "ext_compact_under"},
	"drop_under":    {name: "ext_drop_under"},
	"max_frag":      {name: "ext_max_frag", float: true},
	"drop_unread":   {name: "ext_drop_unread", flag: true},
}

// extstore answers "extstore <setting> <value>" as memcached 1.6.18 does
// when it runs without an external store (no -o ext_path): OK for a
// setting it knows with a value that parses, which "stats settings" then
// shows, ERROR otherwise; "free_memchunks <class> <limit>" is accepted
// and ignored (memcached too: deprecated). mnemo has no extstore (its disk
// tier is the persistent engine), so the settings change nothing else,
// as in such a memcached.
func (s *session) extstore(c *server.Conn, r *text.Request) {
	args := r.Args
	ok := false
	switch {
	case len(args) < 2:
	case string(args[0]) == "free_memchunks" && len(args) >= 3:
		class, ok1 := number.ParseUint32(args[1])
		_, ok2 := number.ParseUint32(args[2])
		ok = ok1 && ok2 && class < 64
	default:
		e, known := extSettings[string(args[0])]
		if !known {
			break
		}
		switch {
		case e.float:
			var v float64
			if v, ok = parseDouble(args[1]); ok {
				s.h.st.tune(e.name, strconv.FormatFloat(v, 'f', 2, 64))
			}
		case e.flag:
			var v uint32
			if v, ok = number.ParseUint32(args[1]); ok {
				s.h.st.tune(e.name, map[bool]string{true: "yes", false: "no"}[v != 0])
			}
		default:
			var v uint32
			if v, ok = number.ParseUint32(args[1]); ok {
				s.h.st.tune(e.name, strconv.FormatUint(uint64(v), 10))
			}
		}
	}
	if ok {
		s.reply(c, r, text.OK)
	} else {
		s.reply(c, r, text.ErrorReply)
	}
}
