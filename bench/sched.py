#!/usr/bin/env python3
# Usage: go tool trace -d=parsed TRACE | bench/sched.py  (a trace from bench/sweep.sh with PPROF and TRACE)
# Reads `go tool trace -d=parsed` on stdin; reports, per kind of
# goroutine, how long it waited runnable, and for the connection goroutines'
# waits over 1 ms, which kinds of goroutine held the P meanwhile.
import sys, re, collections, signal
signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # piped into head: stop quietly
tr = re.compile(r'^M=(-?\d+) P=(-?\d+) G=(-?\d+) StateTransition Time=(\d+) GoID=(\d+) (\w+)->(\w+)')
def kind(stack):
    if 'mnemo/server.' in stack or 'mnemo/protocol' in stack: return 'conn'
    if 'persistent.(*Engine).sweepLoop' in stack: return 'psweep'
    if 'memory.(*Engine).sweepLoop' in stack: return 'msweep'
    if 'persistent.(*queue).run' in stack: return 'flusher'
    if 'pebble' in stack and ('compact' in stack or 'Compact' in stack): return 'compaction'
    if 'pebble' in stack and 'flush' in stack: return 'pflush'
    if 'pebble' in stack: return 'pebble-other'
    if 'gcBgMarkWorker' in stack or 'bgsweep' in stack or 'bgscavenge' in stack: return 'gc'
    if 'net/http' in stack or 'runtime/trace' in stack: return 'trace'
    return None
label = {}
runnable_at = {}
waits = collections.defaultdict(list)   # kind-less: goid -> [(t0, t1)]
running = {}   # P -> (goid, start)
segs = []      # (start, end, goid)
cur = None     # (goid_for_stack, which)
stackbuf = []
def flush_stack():
    global cur, stackbuf
    if cur and stackbuf:
        k = kind(''.join(stackbuf))
        if k and cur not in label: label[cur] = k
    cur, stackbuf = None, []
t_first = t_last = None
for line in sys.stdin:
    if line.startswith('\t'):
        if cur is not None: stackbuf.append(line)
        continue
    if line.startswith('Stack=') or line.startswith('TransitionStack='):
        flush_stack()
        if line.startswith('Stack='): cur = pending_g
        else: cur = pending_go
        continue
    flush_stack()
    m = tr.match(line)
    if not m:
        mm = re.match(r'^M=\S+ P=\S+ G=(-?\d+) ', line)
        pending_g = int(mm.group(1)) if mm else None
        pending_go = None
        continue
    M, P, G, t, goid, a, b = m.groups()
    P, G, t, goid = int(P), int(G), int(t), int(goid)
    pending_g, pending_go = G, goid
    t_first = t_first or t; t_last = t
    if b == 'Runnable':
        runnable_at[goid] = t
    if a == 'Runnable' and b == 'Running':
        t0 = runnable_at.pop(goid, None)
        if t0 is not None: waits[goid].append((t0, t))
        running[P] = (goid, t)
    if a == 'Running' and b != 'Running':
        r = running.get(P)
        if r and r[0] == goid:
            segs.append((r[1], t, goid)); del running[P]
flush_stack()
K = lambda g: label.get(g, 'other')
if t_first is None:
    sys.exit("sched.py: no state transitions on stdin (is it `go tool trace -d=parsed TRACE`?)")
print(f"trace {(t_last-t_first)/1e9:.2f} s")
byk = collections.defaultdict(list)
for g, ws in waits.items():
    for t0, t1 in ws: byk[K(g)].append(t1 - t0)
print("kind        waits   p50 µs   p99 µs  p99.9 µs   max µs  total ms")
for k, v in sorted(byk.items(), key=lambda kv: -sum(kv[1])):
    v.sort(); n = len(v)
    q = lambda f: v[min(n-1, int(f*n))]/1e3
    print(f"{k:11s} {n:6d} {q(.5):8.0f} {q(.99):8.0f} {q(.999):9.0f} {v[-1]/1e3:8.0f} {sum(v)/1e6:9.1f}")
# running time by kind
run = collections.Counter()
for s, e, g in segs: run[K(g)] += e - s
print("P time by kind (ms):", {k: round(v/1e6, 1) for k, v in run.most_common()})
# who ran while conn goroutines waited > 1 ms
segs.sort()
import bisect
starts = [s for s, e, g in segs]
held = collections.Counter(); nlong = 0; longest = collections.Counter()
for g, ws in waits.items():
    if K(g) != 'conn': continue
    for t0, t1 in ws:
        if t1 - t0 < 1_000_000: continue
        nlong += 1
        i = max(0, bisect.bisect_left(starts, t0) - 1)
        per = collections.Counter()
        while i < len(segs) and segs[i][0] < t1:
            s, e, h = segs[i]
            ov = min(e, t1) - max(s, t0)
            if ov > 0: per[K(h)] += ov
            i += 1
        held.update(per)
        # the longest single run segment overlapping, by kind
print(f"conn waits over 1 ms: {nlong}; P time during them by kind (ms):", {k: round(v/1e6, 1) for k, v in held.most_common()})
# longest run segments per kind (non-preempted stretches)
longseg = collections.defaultdict(list)
for s, e, g in segs: longseg[K(g)].append(e - s)
print("run segments per kind: n, p99 µs, max µs")
for k, v in longseg.items():
    v.sort(); print(f"  {k:11s} {len(v):7d} {v[int(.99*len(v))]/1e3:8.0f} {v[-1]/1e3:8.0f}")
