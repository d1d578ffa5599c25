#!/usr/bin/env bash
# persistent.sh measures the persistent engine side by side with the memory
# engine and Debian's memcached (issue 5): get-hit and set throughput of all
# three, sync-write throughput, warm-up time for 1M items, and read-through
# throughput for a data set four times larger than -m. Servers run on
# SERVER_CPUS (default 0), the load generator on CLIENT_CPUS (default 1).
#
# Usage: bench/persistent.sh [-r RUNS] [-d DURATION] [-o OUTDIR]
#
# Each throughput load runs RUNS times per server, the servers in
# alternation; the table gives the median. Results (JSON per run, logs,
# results.md) go to OUTDIR, default /tmp/mnemo-bench-results/persistent-<date>.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=3
DUR=10s
OUT=""
while getopts "r:d:o:h" opt; do
	case $opt in
	r) RUNS=$OPTARG ;;
	d) DUR=$OPTARG ;;
	o) OUT=$OPTARG ;;
	*) sed -n '2,13p' "$0"; exit 2 ;;
	esac
done
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}
BIN=${BIN:-/tmp/mnemo-bench-bin}
OUT=${OUT:-/tmp/mnemo-bench-results/persistent-$(date +%Y%m%d-%H%M%S)}
. bench/lib.sh
mkdir -p "$OUT"
build_bins "$BIN" mnemo-bench

PID=""
PORT=""
trap stop_server EXIT

# load FILE ARGS...: runs the load generator against the current server.
load() {
	local file=$1
	shift
	taskset -c "$CLIENT_CPUS" "$BIN/mnemo-bench" -server "127.0.0.1:$PORT" -json "$@" >"$OUT/$file.json"
}

# stat NAME: one value of the current server's stats.
stat() { server_stat "$PORT" "$1"; }

COMMON=(-conns 50 -pipeline 1 -keys 100000 -value-size 100 -duration "$DUR")
declare -A SERVERS=(
	[memcached]="memcached -U 0 -l 127.0.0.1 -m 64 ${USER_FLAG[*]}"
	[memory]="$BIN/mnemo -U 0 -l 127.0.0.1 -m 64 ${USER_FLAG[*]}"
	[async]="$BIN/mnemo -U 0 -l 127.0.0.1 -m 64 ${USER_FLAG[*]} --engine persistent --engine-config path=DIR,durability=async"
	[sync]="$BIN/mnemo -U 0 -l 127.0.0.1 -m 64 ${USER_FLAG[*]} --engine persistent --engine-config path=DIR,durability=sync"
)

# Throughput: get hits (all keys stored first) and sets, per server.
for run in $(seq "$RUNS"); do
	for srv in memcached memory async; do
		dir=$(mktemp -d)
		start_server "$srv" ${SERVERS[$srv]//DIR/$dir}
		load "get-$srv-$run" "${COMMON[@]}" -fill -ratio 0:1
		load "set-$srv-$run" "${COMMON[@]}" -ratio 1:0
		stop_server
		rm -rf "$dir"
	done
	dir=$(mktemp -d)
	start_server sync ${SERVERS[sync]//DIR/$dir}
	load "set-sync-$run" "${COMMON[@]}" -ratio 1:0
	stop_server
	rm -rf "$dir"
done

# Warm-up: 1M items (15 B keys, 100 B values) stored, graceful stop, start
# again, and the time until memory holds them all.
dir=$(mktemp -d)
start_server warm-fill "$BIN/mnemo" "${USER_FLAG[@]}" -U 0 -l 127.0.0.1 -m 512 --engine persistent --engine-config "path=$dir"
load warm-fill -conns 16 -keys 1000000 -value-size 100 -fill -fill-pipeline 64 -requests 1 -ratio 0:1
stop_server
start_server warm "$BIN/mnemo" "${USER_FLAG[@]}" -U 0 -l 127.0.0.1 -m 512 --engine persistent --engine-config "path=$dir"
for _ in $(seq 600); do
	state=$(stat persistent_warmup_state)
	[ "$state" = running ] || break
	sleep 0.1
done
{
	echo "state=$(stat persistent_warmup_state)"
	echo "items=$(stat persistent_warmup_items)"
	echo "seconds=$(stat persistent_warmup_seconds)"
} >"$OUT/warmup.txt"
stop_server
rm -rf "$dir"

# Read-through: a 64 MB data set (450k items of 100 B) behind -m 16.
dir=$(mktemp -d)
start_server readthrough "$BIN/mnemo" "${USER_FLAG[@]}" -U 0 -l 127.0.0.1 -m 16 --engine persistent --engine-config "path=$dir,warmup=false"
load rt-fill -conns 16 -keys 450000 -value-size 100 -fill -requests 1 -ratio 0:1
for run in $(seq "$RUNS"); do
	load "rt-$run" -conns 50 -pipeline 1 -keys 450000 -value-size 100 -ratio 0:1 -duration "$DUR"
done
echo "disk_reads=$(stat persistent_disk_reads) disk_hits=$(stat persistent_disk_hits)" >>"$OUT/warmup.txt"
stop_server
rm -rf "$dir"

$PY - "$OUT" "$RUNS" >"$OUT/results.md" <<'EOF'
import json, statistics, sys, os
out, runs = sys.argv[1], int(sys.argv[2])
def med(prefix, key):
    vals = []
    for r in range(1, runs + 1):
        p = os.path.join(out, f"{prefix}-{r}.json")
        if os.path.exists(p):
            d = json.load(open(p))
            vals.append(d["ops_per_sec"] if key == "ops" else d["latency_us"][key])
    return statistics.median(vals) if vals else float("nan")
print("| load | server | ops/s | p99 µs | vs memcached |")
print("|---|---|---|---|---|")
for load in ("get", "set"):
    base = med(f"{load}-memcached", "ops")
    for srv in ("memcached", "memory", "async", "sync"):
        ops = med(f"{load}-{srv}", "ops")
        if ops != ops:
            continue
        print(f"| {load} | {srv} | {ops:,.0f} | {med(f'{load}-{srv}', 'p99'):,.0f} | {ops/base:.2f}x |")
print()
print(f"| read-through, 64 MB behind -m 16 | persistent | {med('rt', 'ops'):,.0f} | {med('rt', 'p99'):,.0f} | |")
print()
print("```")
print(open(os.path.join(out, "warmup.txt")).read().strip())
print("```")
EOF
cat "$OUT/results.md"
