#!/usr/bin/env bash
# sweep.sh measures the persistent engine's expiry sweep (issue 14): LIVE
# items without a TTL, then EXP items that all expire in the same second
# (an absolute exptime), then readers of the live items at a fixed rate:
# a steady run before the expiry and a run from the expiry second on. It
# reports the readers' p99.9 in both runs and how long the store's size on
# disk (persistent_disk_bytes, polled every 0.5 s with the sweep's
# figures) takes to come back to its live size: the size it has at the
# end (60 s after the expiry, with only the live items), within 10%.
# The same load runs against Debian's memcached (-m 1024, its LRU
# crawler reclaiming the expired items) for the readers' latency.
# Servers run on SERVER_CPUS (default 0), the load generator on
# CLIENT_CPUS (default 1).
#
# With PPROF=HOST:PORT, mnemo serves pprof there and the poller saves a
# goroutine dump when stats takes over 2 s to answer (stall-*.txt), and
# 3 s and 8 s after the expiry (expiry+*-goroutines.txt). With PPROF and
# TRACE=SECONDS, it also saves two runtime traces of that many seconds
# (go tool trace): one ending 2 s before the expiry (steady.trace) and one
# from 1 s after it (expiry.trace).
#
# With SLOW=US, the steady and expiry runs of the readers list every
# request slower than US µs, with its send time (unix µs), in
# NAME-steady-slow.txt and NAME-expiry-slow.txt (mnemo-bench -slow-log; a
# third column: how late the client itself wrote the request, in µs):
# set beside the poll file, they show what the server was doing then.
#
# mnemo runs with -v, so that its log (mnemo.log) lists Pebble's
# flushes and compactions with their reasons, levels, bytes and times
# (set beside the slow requests' send times); VV=0 leaves it out (-vv would log every command).
#
# Usage: bench/sweep.sh [-n EXP] [-l LIVE] [-r RATE] [-m MB] [-c CONFIG] [-o OUTDIR]
#
# Defaults: 2,000,000 expiring and 200,000 live items of 100 B values,
# readers at 20,000 gets/s from 20 connections, -m 64, no extra engine
# config. Results go to OUTDIR, default /tmp/mnemo-bench-results/sweep-<date>.
set -euo pipefail
cd "$(dirname "$0")/.."

EXP=2000000
LIVE=200000
RATE=20000
MEM=64
CONFIG=""
OUT=""
MEMCACHED=1
while getopts "n:l:r:m:c:o:Mh" opt; do
	case $opt in
	n) EXP=$OPTARG ;;
	l) LIVE=$OPTARG ;;
	r) RATE=$OPTARG ;;
	m) MEM=$OPTARG ;;
	c) CONFIG=",$OPTARG" ;;
	o) OUT=$OPTARG ;;
	M) MEMCACHED=0 ;;
	*) sed -n "2,35p" "$0"; exit 2 ;;
	esac
done
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}
BIN=${BIN:-/tmp/mnemo-bench-bin}
OUT=${OUT:-/tmp/mnemo-bench-results/sweep-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
. bench/lib.sh
build_bins "$BIN" mnemo-bench

PID=""
PORT=""
POLLER=""
DIR=""
cleanup() {
	[ -n "$POLLER" ] && kill "$POLLER" 2>/dev/null || true
	stop_server
	[ -n "$DIR" ] && rm -rf "$DIR"
	DIR=""
}
trap cleanup EXIT

# slow RUN: mnemo-bench's flags for the slow-request log of RUN (SLOW).
slow() { [ -n "${SLOW:-}" ] && echo "-slow-log $OUT/$1-slow.txt -slow-us $SLOW" || true; }

bench() { taskset -c "$CLIENT_CPUS" "$BIN/mnemo-bench" -server "127.0.0.1:$PORT" -json "$@"; }

# poll FILE: every 0.5 s, a line of stats figures (t is unix seconds).
poll() {
	# nice: the poller (and the trace it writes) must not take the
	# server's core from it: unniced, writing a trace took 8.6 ms of
	# CPU 0 at once while mnemo's threads waited (round six).
	nice -n 19 $PY - "$PORT" "${PPROF:-}" "$OUT" "$2" >"$1" <<'EOF' &
import os, socket, sys, threading, time, urllib.request
pprof, out, dumps, exp_at, timed = sys.argv[2], sys.argv[3], 0, float(sys.argv[4]), [3, 8]
tsecs = int(os.environ.get("TRACE", "0") or 0)
def trace(name, at):
    time.sleep(max(0, at - time.time()))
    try:
        d = urllib.request.urlopen(f"http://{pprof}/debug/pprof/trace?seconds={tsecs}", timeout=tsecs + 30).read()
        open(f"{out}/{name}.trace", "wb").write(d)
    except Exception as e:
        print("# trace:", e, flush=True)
if pprof and tsecs:
    for name, at in (("steady", exp_at - 2 - tsecs), ("expiry", exp_at + 1)):
        threading.Thread(target=trace, args=(name, at), daemon=True).start()
names = ["persistent_disk_bytes", "persistent_disk_table_bytes", "persistent_sweep_compactions", "persistent_sweep_covers", "persistent_sweep_removed", "persistent_sweep_scanned", "persistent_sweep_pace",
         "persistent_sweep_backoffs", "persistent_disk_items", "persistent_queue_lag_us", "persistent_queue_lag_max_us",
         "persistent_queue_items", "persistent_commits", "curr_items", "rusage_user", "rusage_system"]
print("t " + " ".join(names), flush=True)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
while True:
    s.sendall(b"stats\r\n")
    buf = b""
    s.settimeout(2)
    while not buf.endswith(b"END\r\n"):
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            # stats has not answered for 2 s: with PPROF, dump the
            # server's goroutines (at most 3 times).
            if pprof and dumps < 3:
                dumps += 1
                try:
                    d = urllib.request.urlopen(f"http://{pprof}/debug/pprof/goroutine?debug=2", timeout=10).read()
                    open(f"{out}/stall-{dumps}-{time.time():.0f}.txt", "wb").write(d)
                except Exception as e:
                    print("# pprof:", e, flush=True)
            continue
        if not chunk:
            sys.exit(0)
        buf += chunk
    st = {}
    for line in buf.decode().split("\r\n"):
        p = line.split(" ")
        if len(p) == 3:
            st[p[1]] = p[2]
    print("%.1f " % time.time() + " ".join(st.get(n, "-") for n in names), flush=True)
    # With PPROF: goroutine dumps 3 s and 8 s after the expiry.
    if pprof and timed and time.time() >= exp_at + timed[0]:
        at = timed.pop(0)
        try:
            d = urllib.request.urlopen(f"http://{pprof}/debug/pprof/goroutine?debug=2", timeout=10).read()
            open(f"{out}/expiry+{at}s-goroutines.txt", "wb").write(d)
        except Exception as e:
            print("# pprof:", e, flush=True)
    time.sleep(0.5)
EOF
	POLLER=$!
}

stat() { server_stat "$PORT" "$1"; }

# scenario NAME CMD...: the whole scenario against one server.
scenario() {
	local name=$1
	shift
	start_server "$name" "$@"
	bench -keys "$LIVE" -key-prefix live: -value-size 100 -fill -requests 1 -ratio 0:1 -conns 16 >"$OUT/$name-fill-live.json"
	local live_bytes=""
	if [ "$name" = mnemo ]; then
		sleep 3 # the first commits and flushes settle
		live_bytes=$(stat persistent_disk_bytes)
	fi
	# Every expiring item gets the same absolute exptime, far enough
	# ahead for the fill and the steady run.
	local t0 exp_at
	t0=$(date +%s)
	exp_at=$((t0 + 60 + EXP / 20000))
	bench -keys "$EXP" -key-prefix exp: -value-size 100 -fill -requests 1 -ratio 0:1 -conns 16 -ttl "$exp_at" >"$OUT/$name-fill-exp.json"
	local now
	now=$(date +%s)
	if [ $((exp_at - now)) -lt 25 ]; then
		echo "sweep.sh: the fill of $EXP items ended $((exp_at - now)) s before their expiry; raise the margin" >&2
		exit 1
	fi
	[ "$name" = mnemo ] && poll "$OUT/$name-poll.txt" "$exp_at"
	# Readers: warm memory up, then the steady run just before the expiry.
	bench -keys "$LIVE" -key-prefix live: -value-size 100 -ratio 0:1 -conns 20 -rate "$RATE" -duration $((exp_at - now - 22))s >"$OUT/$name-warm.json"
	now=$(date +%s)
	bench -keys "$LIVE" -key-prefix live: -value-size 100 -ratio 0:1 -conns 20 -rate "$RATE" -duration $((exp_at - now - 1))s $(slow "$name-steady") >"$OUT/$name-steady.json"
	now=$(date +%s)
	[ "$now" -lt "$exp_at" ] && sleep $((exp_at - now))
	bench -keys "$LIVE" -key-prefix live: -value-size 100 -ratio 0:1 -conns 20 -rate "$RATE" -duration 30s $(slow "$name-expiry") >"$OUT/$name-expiry.json"
	if [ "$name" = mnemo ]; then
		# The disk's final size: 60 s after the expiry.
		now=$(date +%s)
		[ "$now" -lt $((exp_at + 60)) ] && sleep $((exp_at + 60 - now))
		kill "$POLLER" 2>/dev/null || true
		POLLER=""
		echo "live_bytes=$live_bytes exp_at=$exp_at" >"$OUT/$name-meta.txt"
	fi
	cleanup
}

DIR=$(mktemp -d)
PPROFFLAG=()
[ -n "${PPROF:-}" ] && PPROFFLAG=(--pprof "$PPROF")
VVFLAG=()
[ "${VV:-1}" = 1 ] && VVFLAG=(-v)
scenario mnemo "$BIN/mnemo" "${USER_FLAG[@]}" "${PPROFFLAG[@]}" "${VVFLAG[@]}" -m "$MEM" --engine persistent --engine-config "path=$DIR$CONFIG"
if [ "$MEMCACHED" = 1 ]; then
	scenario memcached memcached -U 0 -l 127.0.0.1 -m 1024 "${USER_FLAG[@]}"
fi

$PY - "$OUT" <<'EOF' | tee "$OUT/results.md"
import json, os, sys
out = sys.argv[1]
def lat(name, run):
    p = os.path.join(out, f"{name}-{run}.json")
    if not os.path.exists(p):
        return None
    return json.load(open(p))
meta = dict(kv.split("=") for kv in open(os.path.join(out, "mnemo-meta.txt")).read().split())
live, exp_at = int(meta["live_bytes"]), int(meta["exp_at"])
rows = [l.split() for l in open(os.path.join(out, "mnemo-poll.txt"))]
head, rows = rows[0], rows[1:]
col = {n: i for i, n in enumerate(head)}
final = None
for r in reversed(rows):
    if r[col["persistent_disk_bytes"]] != "-":
        final = (int(r[col["persistent_disk_bytes"]]), int(r[col["persistent_disk_table_bytes"]]))
        break
back = None
peak = (0, 0)
for r in rows:
    t = float(r[0])
    if r[col["persistent_disk_bytes"]] == "-":
        continue
    b, tb = int(r[col["persistent_disk_bytes"]]), int(r[col["persistent_disk_table_bytes"]])
    peak = max(peak, (b, tb))
    if t >= exp_at and back is None and b <= final[0] * 1.1:
        back = t - exp_at
    if back is not None and b > final[0] * 1.1:
        back = None
pace = max((int(r[col["persistent_sweep_pace"]]) for r in rows if r[col["persistent_sweep_pace"]] != "-"), default=0)
removed = [(float(r[0]), int(r[col["persistent_sweep_removed"]])) for r in rows]
done = next((t - exp_at for t, n in removed if n >= removed[-1][1] * 0.999 and t >= exp_at), None)
print("| server | steady p99.9 µs | expiry p99.9 µs | ratio | steady p99 | expiry p99 | gets/s (expiry) |")
print("|---|---|---|---|---|---|---|")
for name in ("mnemo", "memcached"):
    s, e = lat(name, "steady"), lat(name, "expiry")
    if not s or not e:
        continue
    sl, el = s["latency_us"], e["latency_us"]
    print(f"| {name} | {sl['p99_9']} | {el['p99_9']} | {el['p99_9']/max(sl['p99_9'],1):.2f}x | {sl['p99']} | {el['p99']} | {e['ops_per_sec']:,.0f} |")
print()
mib = lambda x: f"{x/2**20:.1f} MiB"
print(f"mnemo disk (persistent_disk_bytes, tables in brackets): after the live fill {mib(live)}; peak {mib(peak[0])} ({mib(peak[1])}); "
      f"final {mib(final[0])} ({mib(final[1])}); within 10% of final {back:.1f} s after the expiry" if back is not None else
      f"mnemo disk: peak {mib(peak[0])}, final {mib(final[0])}: never within 10% of final")
print(f"sweep: removed {removed[-1][1]:,} items, 99.9% of them {done:.1f} s after the expiry; highest pace {pace:,} items/s" if done is not None else "sweep: did not finish")
EOF
