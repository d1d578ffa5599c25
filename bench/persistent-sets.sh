#!/usr/bin/env bash
# persistent-sets.sh compares the set throughput of two mnemo builds'
# persistent engine (async and sync) with the memory engine (issue 15):
# 50 connections, pipeline 1, 100k keys of 15 B, 100 B values, -m 64,
# the server on SERVER_CPUS (default 0), mnemo-bench on CLIENT_CPUS
# (default 1). Each round runs every server once, in alternation, on a
# fresh directory; the table gives medians of ops/s and of the server's
# CPU time per set.
#
# Usage: bench/persistent-sets.sh OLD_BIN_DIR NEW_BIN_DIR [-r RUNS] [-d DURATION] [-o OUTDIR]
# (each BIN_DIR holds a mnemo; NEW_BIN_DIR also mnemo-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$1 NEW=$2
shift 2
RUNS=3 DUR=10s OUT=""
while getopts "r:d:o:" opt; do
	case $opt in
	r) RUNS=$OPTARG ;; d) DUR=$OPTARG ;; o) OUT=$OPTARG ;;
	*) sed -n '2,11p' "$0"; exit 2 ;;
	esac
done
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}
OUT=${OUT:-/tmp/mnemo-bench-results/persistent-sets-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
. bench/lib.sh
PID=""
trap stop_server EXIT

# one FILE BIN ENGINEARGS...
one() {
	local file=$1 bin=$2 port dir
	shift 2
	port=$(free_port)
	dir=$(mktemp -d)
	taskset -c "$SERVER_CPUS" "$bin/mnemo" "${USER_FLAG[@]}" -U 0 -l 127.0.0.1 -m 64 -p "$port" "${@//DIR/$dir}" >"$OUT/$file.log" 2>&1 &
	PID=$!
	wait_port "$port"
	taskset -c "$CLIENT_CPUS" "$NEW/mnemo-bench" -server "127.0.0.1:$port" -server-pid "$PID" -json -conns 50 -pipeline 1 \
		-keys 100000 -value-size 100 -duration "$DUR" -ratio 1:0 >"$OUT/$file.json"
	stop_server
	rm -rf "$dir"
}

for run in $(seq "$RUNS"); do
	one "memory-$run" "$NEW"
	one "async-old-$run" "$OLD" --engine persistent --engine-config path=DIR,durability=async
	one "async-new-$run" "$NEW" --engine persistent --engine-config path=DIR,durability=async
	one "sync-old-$run" "$OLD" --engine persistent --engine-config path=DIR,durability=sync
	one "sync-new-$run" "$NEW" --engine persistent --engine-config path=DIR,durability=sync
done

$PY - "$OUT" "$RUNS" >"$OUT/results.md" <<'PYEOF'
import json, statistics, sys, os
out, runs = sys.argv[1], int(sys.argv[2])
def vals(name, f):
    v = []
    for r in range(1, runs + 1):
        p = os.path.join(out, f"{name}-{r}.json")
        if os.path.exists(p):
            v.append(f(json.load(open(p))))
    return v
ops = lambda d: d["ops_per_sec"]
cpu = lambda d: (d.get("server_process") or {}).get("cpu_us_per_op", float("nan"))
mem = statistics.median(vals("memory", ops))
print("| server | ops/s (median) | runs | server CPU µs per set (median) | vs memory engine |")
print("|---|---|---|---|---|")
for name in ("memory", "async-old", "async-new", "sync-old", "sync-new"):
    o = vals(name, ops)
    print(f"| {name} | {statistics.median(o):,.0f} | {', '.join(f'{x:,.0f}' for x in o)} | {statistics.median(vals(name, cpu)):.2f} | {statistics.median(o)/mem:.2f}x |")
PYEOF
cat "$OUT/results.md"
