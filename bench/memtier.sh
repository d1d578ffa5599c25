#!/usr/bin/env bash
# memtier.sh measures mnemo and Debian's memcached side by side with an
# independent load generator, memtier_benchmark (Redis Labs), the way
# compare.sh does with mnemo-bench: both servers started once with the
# same flags on loopback ports, filled once, then RUNS timed runs in
# alternation (memcached, mnemo, memcached, mnemo, ...); the table gives
# the medians and the ratios mnemo/memcached, with each server's CPU time
# per request read from /proc/PID/stat over the run.
#
# Usage: bench/memtier.sh [-r RUNS] [-d SECONDS] [-o OUTDIR] [PIPELINE...]
#   (default: pipelines 1 and 16)
#
# memtier_benchmark is not a Debian package: build it from its source
# (github.com/RedisLabs/memtier_benchmark: autoreconf -ivf; ./configure
# --disable-tls; make; it needs libevent-dev, zlib1g-dev, libpcre3-dev or
# libpcre2-dev, autoconf, automake, libtool, pkg-config) and point MEMTIER
# at the binary.
#
# Load: 50 connections (-t 1 -c 50), 1:10 set:get, 100-byte values, keys
# memtier-1 .. memtier-100000 drawn uniformly (-key-pattern R:R), text
# protocol; servers -t 1 -m 1024 -c 4096.
#
# Environment: MEMTIER (default memtier_benchmark), SERVER_CPUS (0),
# CLIENT_CPUS (1), MEMCACHED (memcached), BIN (/tmp/mnemo-bench-bin),
# NOBUILD=1 to use the mnemo already in $BIN, THREADS (server -t, 1),
# VALUE_SIZE (bytes, 100), KEYS (100000), MEM (the servers' -m, 1024):
# VALUE_SIZE=16384 KEYS=20000 MEM=2048 is compare.sh's tput16k load.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=3
DUR=10
OUT=""
while getopts "r:d:o:h" opt; do
	case $opt in
	r) RUNS=$OPTARG ;;
	d) DUR=$OPTARG ;;
	o) OUT=$OPTARG ;;
	*) sed -n '2,26p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
PIPES=("$@")
[ ${#PIPES[@]} -gt 0 ] || PIPES=(1 16)

MEMTIER=${MEMTIER:-memtier_benchmark}
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}
MEMCACHED=${MEMCACHED:-memcached}
BIN=${BIN:-/tmp/mnemo-bench-bin}
THREADS=${THREADS:-1}
VALUE_SIZE=${VALUE_SIZE:-100}
KEYS=${KEYS:-100000}
MEM=${MEM:-1024}
OUT=${OUT:-/tmp/mnemo-memtier/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
command -v "$MEMTIER" >/dev/null || { echo "memtier.sh: $MEMTIER not found (see the header)" >&2; exit 1; }
. bench/lib.sh
build_bins "$BIN"
{
	echo "date: $(date -u +%FT%TZ)"
	echo "host: $(uname -srm), $(nproc) CPUs"
	echo "memcached: $($MEMCACHED -V 2>&1 | head -1)"
	echo "mnemo: $(git rev-parse --short HEAD)$(git diff --quiet || echo +dirty), $(go version | cut -d' ' -f3)"
	echo "memtier: $($MEMTIER --version 2>&1 | head -1)"
	echo "servers on CPUs $SERVER_CPUS (-t $THREADS -m $MEM), memtier on CPUs $CLIENT_CPUS; runs $RUNS of ${DUR}s; values of $VALUE_SIZE bytes, $KEYS keys"
} | tee "$OUT/env.txt"

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
# cpu PID: the process's user+system CPU time in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

declare -A port pid
for s in memcached mnemo; do
	port[$s]=$(free_port)
	bin=$MEMCACHED
	[ $s = mnemo ] && bin=$BIN/mnemo
	cmd=("$bin" "${USER_FLAG[@]}" -U 0 -l 127.0.0.1 -p "${port[$s]}" -t "$THREADS" -m "$MEM" -c 4096)
	echo "start: taskset -c $SERVER_CPUS ${cmd[*]}" >>"$OUT/commands.txt"
	taskset -c "$SERVER_CPUS" "${cmd[@]}" >>"$OUT/$s.log" 2>&1 &
	pid[$s]=$!
	PIDS+=("${pid[$s]}")
	wait_port "${port[$s]}"
	fill=("$MEMTIER" -s 127.0.0.1 -p "${port[$s]}" -P memcache_text -t 1 -c 50 --pipeline 16
		--ratio 1:0 -d "$VALUE_SIZE" --key-minimum 1 --key-maximum "$KEYS" --key-pattern P:P
		--requests allkeys --hide-histogram)
	echo "fill: taskset -c $CLIENT_CPUS ${fill[*]}" >>"$OUT/commands.txt"
	# --requests allkeys splits the key range among the 50 clients.
	taskset -c "$CLIENT_CPUS" "${fill[@]}" >"$OUT/$s-fill.txt" 2>&1
done

CLK=$(getconf CLK_TCK)
for p in "${PIPES[@]}"; do
	for i in $(seq 1 "$RUNS"); do
		for s in memcached mnemo; do
			f=$OUT/p$p-$s-$i.json
			run=("$MEMTIER" -s 127.0.0.1 -p "${port[$s]}" -P memcache_text -t 1 -c 50
				--pipeline "$p" --ratio 1:10 -d "$VALUE_SIZE" --key-minimum 1 --key-maximum "$KEYS"
				--key-pattern R:R --test-time "$DUR" --distinct-client-seed --randomize
				--hide-histogram --json-out-file "$f")
			echo "run: taskset -c $CLIENT_CPUS ${run[*]}" >>"$OUT/commands.txt"
			c0=$(cpu "${pid[$s]}")
			taskset -c "$CLIENT_CPUS" "${run[@]}" >"$OUT/p$p-$s-$i.txt" 2>&1
			c1=$(cpu "${pid[$s]}")
			echo "$(( (c1 - c0) ))" >"$OUT/p$p-$s-$i.cpu"
		done
	done
done

python3 - "$OUT" "$CLK" "${PIPES[@]}" <<'EOF' | tee "$OUT/results.md"
import json, statistics, sys, os
out, clk, pipes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def runs(p, s):
    i = 1
    while os.path.exists(f"{out}/p{p}-{s}-{i}.json"):
        d = json.load(open(f"{out}/p{p}-{s}-{i}.json"))
        tot = d["ALL STATS"]["Totals"]
        ops = tot["Ops/sec"]
        pct = tot.get("Percentile Latencies", {})
        p50 = pct.get("p50.00", 0.0)
        p99 = pct.get("p99.00", 0.0)
        p999 = pct.get("p99.90", 0.0)
        secs = d["ALL STATS"]["Runtime"]["Total duration"] / 1000.0
        cpu = int(open(f"{out}/p{p}-{s}-{i}.cpu").read()) / clk
        yield ops, p50, p99, p999, cpu / max(ops * secs, 1) * 1e6
        i += 1
print("| pipeline | figure | memcached | mnemo | ratio | runs |")
print("|---|---|---|---|---|---|")
names = ["throughput (ops/s)", "p50 latency (ms)", "p99 latency (ms)", "p99.9 latency (ms)", "server CPU per request (µs)"]
for p in pipes:
    mc, mn = list(runs(p, "memcached")), list(runs(p, "mnemo"))
    for k, name in enumerate(names):
        a = statistics.median(r[k] for r in mc)
        b = statistics.median(r[k] for r in mn)
        fmt = "{:,.0f}" if k == 0 else "{:.3f}" if k < 4 else "{:.2f}"
        print(f"| {p} | {name} | {fmt.format(a)} | {fmt.format(b)} | {b / a if a else float('nan'):.2f}x | {len(mc)}+{len(mn)} |")
EOF
